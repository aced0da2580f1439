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


def image_for(image_id: str) -> dict[str, Any]:
    """The catalogue entry, or a plausible DEDICATED (user-built) image for unknown ids."""
    known = IMAGES.get(image_id)
    if known is not None:
        return dict(known)
    return {
        "id": image_id,
        "name": f"custom-{image_id[:8]}",
        "swr_path": f"swr.example.com/custom/{image_id[:8]}:latest",
        "tag": "latest",
        "type": "DEDICATED",
        "arch": "x86_64",
    }
