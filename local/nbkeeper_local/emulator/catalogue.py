"""Static flavor and image catalogues (a small, plausible subset of a real region)."""

from __future__ import annotations

from typing import Any

FLAVORS: list[dict[str, Any]] = [
    {
        "id": "modelarts.vm.cpu.2u",
        "name": "modelarts.vm.cpu.2u",
        "arch": "x86",
        "category": "CPU",
        "description": "CPU: 2 vCPUs | 8 GB",
        "feature": "NOTEBOOK",
        "free": False,
        "sold_out": False,
        "vcpus": 2,
        "memory": 8192,
        "storages": ["EVS", "EFS"],
        "billing": {"code": "modelarts.vm.cpu.2u", "unit_num": 1},
    },
    {
        "id": "modelarts.vm.cpu.8u",
        "name": "modelarts.vm.cpu.8u",
        "arch": "x86",
        "category": "CPU",
        "description": "CPU: 8 vCPUs | 32 GB",
        "feature": "NOTEBOOK",
        "free": False,
        "sold_out": False,
        "vcpus": 8,
        "memory": 32768,
        "storages": ["EVS", "EFS"],
        "billing": {"code": "modelarts.vm.cpu.8u", "unit_num": 1},
    },
    {
        "id": "modelarts.vm.cpu.free",
        "name": "modelarts.vm.cpu.free",
        "arch": "x86",
        "category": "CPU",
        "description": "CPU: 1 vCPU | 4 GB (CodeLab, free)",
        "feature": "DEFAULT",
        "free": True,
        "sold_out": False,
        "vcpus": 1,
        "memory": 4096,
        "storages": ["EVS"],
    },
    {
        "id": "modelarts.vm.gpu.t4",
        "name": "modelarts.vm.gpu.t4",
        "arch": "x86",
        "category": "GPU",
        "description": "GPU: 1*T4(16GB) | CPU: 8 vCPUs 32 GB",
        "feature": "NOTEBOOK",
        "free": False,
        "sold_out": False,
        "vcpus": 8,
        "memory": 32768,
        "gpu": {"gpu": 1, "gpu_memory": "16GB", "type": "T4"},
        "storages": ["EVS", "EFS"],
        "billing": {"code": "modelarts.vm.gpu.t4", "unit_num": 1},
    },
    {
        "id": "modelarts.vm.gpu.v100",
        "name": "modelarts.vm.gpu.v100",
        "arch": "x86",
        "category": "GPU",
        "description": "GPU: 1*V100(32GB) | CPU: 8 vCPUs 64 GB",
        "feature": "NOTEBOOK",
        "free": False,
        "sold_out": False,
        "vcpus": 8,
        "memory": 65536,
        "gpu": {"gpu": 1, "gpu_memory": "32GB", "type": "V100"},
        "storages": ["EVS", "EFS"],
        "billing": {"code": "modelarts.vm.gpu.v100", "unit_num": 1},
    },
    {
        "id": "modelarts.vm.gpu.a100.sold",
        "name": "modelarts.vm.gpu.a100.sold",
        "arch": "x86",
        "category": "GPU",
        "description": "GPU: 1*A100(80GB) | CPU: 12 vCPUs 96 GB (sold out)",
        "feature": "NOTEBOOK",
        "free": False,
        "sold_out": True,
        "vcpus": 12,
        "memory": 98304,
        "gpu": {"gpu": 1, "gpu_memory": "80GB", "type": "A100"},
        "storages": ["EVS", "EFS"],
        "billing": {"code": "modelarts.vm.gpu.a100", "unit_num": 1},
    },
    {
        "id": "modelarts.vm.arm.d910",
        "name": "modelarts.vm.arm.d910",
        "arch": "arm",
        "category": "ASCEND",
        "description": "Ascend: 1*Ascend910(32GB) | ARM: 24 vCPUs 192 GB",
        "feature": "NOTEBOOK",
        "free": False,
        "sold_out": False,
        "vcpus": 24,
        "memory": 196608,
        "ascend": {"npu": 1, "npu_memory": "32GB", "type": "Ascend910"},
        "storages": ["EVS"],
        "billing": {"code": "modelarts.vm.arm.d910", "unit_num": 1},
    },
]

FLAVORS_BY_ID = {flavor["id"]: flavor for flavor in FLAVORS}

IMAGES: dict[str, dict[str, Any]] = {
    "e1a07296-22a8-4f05-8bc8-e936c8e54090": {
        "id": "e1a07296-22a8-4f05-8bc8-e936c8e54090",
        "name": "notebook2.0-mul-kernel-cpu-cp36",
        "swr_path": "swr.example.com/atelier/notebook2.0-mul-kernel-cpu-cp36:3.3.2-release_v1",
        "tag": "3.3.2-release_v1",
        "type": "BUILD_IN",
        "arch": "x86_64",
        "description": "multi-kernel CPU image",
    },
    "278e88d1-5b71-4766-8502-b3ba72e824d9": {
        "id": "278e88d1-5b71-4766-8502-b3ba72e824d9",
        "name": "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
        "swr_path": "swr.example.com/atelier/pytorch_1_8:pytorch_1.8.0-cuda_10.2-py_3.7",
        "tag": "pytorch_1.8.0-cuda_10.2-py_3.7",
        "type": "BUILD_IN",
        "arch": "x86_64",
        "description": "PyTorch 1.8 with CUDA 10.2",
    },
    "a3b5c1f0-7d7e-4f1a-9d5b-2f6e8c0d4a11": {
        "id": "a3b5c1f0-7d7e-4f1a-9d5b-2f6e8c0d4a11",
        "name": "mindspore1.7.0-cann5.1.0-py3.7-euler2.8.3",
        "swr_path": "swr.example.com/atelier/mindspore_1_7_0:mindspore_1.7.0-cann_5.1.0-py_3.7",
        "tag": "mindspore_1.7.0-cann_5.1.0-py_3.7",
        "type": "BUILD_IN",
        "arch": "aarch64",
        "description": "MindSpore on Ascend",
    },
}
DEFAULT_IMAGE_ID = "e1a07296-22a8-4f05-8bc8-e936c8e54090"
# The public CPU image template.yaml names as `/nb create`'s default (NotebookDefaultImage).
DEFAULT_IMAGE_NAME = "notebook2.0-mul-kernel-cpu-cp36"


def image_for(image_id: str, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """A notebook's `image`: the image `saved` in its project (by its own name and tag), the
    catalogue entry, or a plausible DEDICATED (user-built) image for unknown ids."""
    if saved is not None and saved.get("type") == "DEDICATED":
        fields = ("id", "name", "swr_path", "tag", "type", "arch", "description")
        return {key: saved[key] for key in fields if key in saved}
    known = IMAGES.get(image_id)
    if known is not None:
        return dict(known)
    public = PUBLIC_IMAGES_BY_ID.get(image_id)
    if public is not None:
        fields = ("id", "name", "swr_path", "tag", "type", "arch", "description")
        return {key: public[key] for key in fields}
    return {
        "id": image_id,
        "name": f"custom-{image_id[:8]}",
        "swr_path": f"swr.example.com/custom/{image_id[:8]}:latest",
        "tag": "latest",
        "type": "DEDICATED",
        "arch": "x86_64",
    }


# ---------------------------------------------------------------- the image service's catalogue

_CREATED_MS = 1_700_000_000_000  # a fixed past moment: replies never depend on the wall clock


def _public(
    image_id: str,
    name: str,
    tag: str,
    arch: str,
    categories: list[str],
    description: str,
    age_days: int,
) -> dict[str, Any]:
    """A BUILD_IN image as `GET /images` shows it (the fields of the SDK's ImageResponse)."""
    created = _CREATED_MS - age_days * 86_400_000
    return {
        "id": image_id,
        "name": name,
        "tag": tag,
        "swr_path": f"swr.example.com/atelier/{name}:{tag}",
        "type": "BUILD_IN",
        "status": "ACTIVE",
        "status_message": "",
        "arch": arch,
        "description": description,
        "namespace": "atelier",
        "origin": "CUSTOMIZE",
        "service_type": "COMMON",
        "visibility": "PUBLIC",
        "workspace_id": "0",
        "size": 6_000_000_000 + age_days * 1_000_000,
        "create_at": created,
        "update_at": created,
        "dev_services": ["NOTEBOOK", "SSH"],
        "resource_categories": categories,
        "support_res_categories": categories,
        "flavor_type": None,
        "show_name": None,
        "show_tag": None,
        "tags": None,
    }


# Frameworks and versions as a region offers them: CPU and GPU on x86_64, Ascend on aarch64.
# Two tags of one image name (pytorch1.8) and shared prefixes (pytorch, mindspore, tensorflow)
# are deliberate: people type partial names.
PUBLIC_IMAGES: list[dict[str, Any]] = [
    _public(
        "e1a07296-22a8-4f05-8bc8-e936c8e54090",
        "notebook2.0-mul-kernel-cpu-cp36",
        "3.3.2-release_v1",
        "X86_64",
        ["CPU"],
        "multi-kernel CPU image",
        400,
    ),
    _public(
        "278e88d1-5b71-4766-8502-b3ba72e824d9",
        "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
        "pytorch_1.8.0-cuda_10.2-py_3.7",
        "X86_64",
        ["GPU"],
        "PyTorch 1.8 with CUDA 10.2",
        380,
    ),
    _public(
        "5d3c7f2e-0a4b-4c4e-9b1f-6a8e2d7c9b30",
        "pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
        "pytorch_1.8.0-cuda_10.2-py_3.7-v2",
        "X86_64",
        ["GPU"],
        "PyTorch 1.8 with CUDA 10.2 (rebuilt)",
        200,
    ),
    _public(
        "0c6f1e43-9d2a-4b7e-8f35-2e4a6b1d8c57",
        "pytorch2.1.0-cuda11.8-cudnn8-ubuntu20.04",
        "pytorch_2.1.0-cuda_11.8-py_3.10",
        "X86_64",
        ["CPU", "GPU"],
        "PyTorch 2.1 with CUDA 11.8",
        90,
    ),
    _public(
        "7b2e9c14-3f6d-4a8b-b0c2-91d5e7f3a624",
        "tensorflow2.6.0-cuda11.2-cudnn8-ubuntu18.04",
        "tensorflow_2.6.0-cuda_11.2-py_3.7",
        "X86_64",
        ["GPU"],
        "TensorFlow 2.6 with CUDA 11.2",
        300,
    ),
    _public(
        "9e4a1d7f-6c2b-48e3-a5f0-3b7c8d2e1f96",
        "tensorflow2.1-cpu-ubuntu18.04",
        "tensorflow_2.1.0-cpu-py_3.7",
        "X86_64",
        ["CPU"],
        "TensorFlow 2.1 for CPU",
        500,
    ),
    _public(
        "a3b5c1f0-7d7e-4f1a-9d5b-2f6e8c0d4a11",
        "mindspore1.7.0-cann5.1.0-py3.7-euler2.8.3",
        "mindspore_1.7.0-cann_5.1.0-py_3.7",
        "AARCH64",
        ["ASCEND"],
        "MindSpore on Ascend",
        350,
    ),
    _public(
        "c8d2f5a1-4e7b-4d39-8a6c-0f1e2b3c4d58",
        "mindspore2.2.0-cann7.0.0-py3.9-euler2.10.7",
        "mindspore_2.2.0-cann_7.0.0-py_3.9",
        "AARCH64",
        ["ASCEND"],
        "MindSpore 2.2 on Ascend",
        60,
    ),
    _public(
        "f1e2d3c4-b5a6-4978-8c9d-0e1f2a3b4c5d",
        "conda3-cuda10.2-cudnn7-ubuntu18.04",
        "conda3-cuda_10.2-py_3.7",
        "X86_64",
        ["GPU"],
        "Conda with CUDA 10.2, bring your own framework",
        450,
    ),
    _public(
        "2a4c6e8f-1b3d-4f5a-9c7e-8d6b4a2c0e1f",
        "mlstudio-pyspark2.3.2-ubuntu16.04",
        "mlstudio-pyspark_2.3.2",
        "X86_64",
        ["CPU"],
        "PySpark 2.3 for CPU",
        700,
    ),
]
PUBLIC_IMAGES_BY_ID = {image["id"]: image for image in PUBLIC_IMAGES}


class ImageCatalogue:
    """The public images plus each project's own (DEDICATED) ones, as the image service has them.

    Not locked itself: the notebook store changes it under its lock (a save settles on the
    store's clock) and reads go through the store (`NotebookStore.images_listed`)."""

    def __init__(self) -> None:
        self._own: dict[str, dict[str, dict[str, Any]]] = {}

    def add_own(
        self,
        project_id: str,
        image_id: str,
        name: str,
        tag: str = "latest",
        *,
        status: str = "ACTIVE",
        arch: str = "X86_64",
        categories: tuple[str, ...] = ("CPU",),
        created_ms: int = _CREATED_MS,
        namespace: str | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        organization = namespace or project_id[:8]
        record = {
            **_public(image_id, name, tag, arch, list(categories), description, 0),
            "swr_path": f"swr.example.com/{organization}/{name}:{tag}",
            "type": "DEDICATED",
            "status": status,
            "namespace": organization,
            "origin": "IMAGE_SAVE",
            "visibility": "PRIVATE",
            "create_at": created_ms,
            "update_at": created_ms,
        }
        self._own.setdefault(project_id, {})[image_id] = record
        return dict(record)

    def find_own(
        self, project_id: str, namespace: str, name: str, tag: str
    ) -> dict[str, Any] | None:
        """The project's image at `namespace/name:tag` (one SWR path holds one image)."""
        for record in self._own.get(project_id, {}).values():
            if (record["namespace"], record["name"], record["tag"]) == (namespace, name, tag):
                return dict(record)
        return None

    def settle(
        self, project_id: str, image_id: str, status: str, at_ms: int, message: str | None = None
    ) -> None:
        """A save ended: ACTIVE, or CREATE_FAILED with the reason in `status_message`."""
        record = self._own.get(project_id, {}).get(image_id)
        if record is None:
            return
        record.update(status=status, update_at=at_ms)
        if message is not None:
            record["status_message"] = message

    def listed(self, project_id: str, image_type: str) -> list[dict[str, Any]]:
        """`type=BUILD_IN` (the default): the public images; `DEDICATED`: the project's own."""
        if image_type == "DEDICATED":
            return [dict(r) for r in self._own.get(project_id, {}).values()]
        return [dict(r) for r in PUBLIC_IMAGES]

    def get(self, project_id: str, image_id: str) -> dict[str, Any] | None:
        found = PUBLIC_IMAGES_BY_ID.get(image_id) or self._own.get(project_id, {}).get(image_id)
        return None if found is None else dict(found)

    def notebook_image(self, project_id: str, image_id: str) -> dict[str, Any]:
        """What a notebook created or updated with `image_id` shows as its `image`."""
        return image_for(image_id, self.get(project_id, image_id))
