"""Everything the savings benchmark takes from nbkeeper, in one place.

A move inside the shared package is then a change to these imports only. The simulator uses nothing of nbkeeper but what is
re-exported here: the real `decide()`, the real `Policy` and the objects `decide()` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nbkeeper.keeper.activity import Activity
from nbkeeper.keeper.decide import Action, Decision, decide
from nbkeeper.keeper.policy import Policy, merge_overlay, parse_policy_data
from nbkeeper.modelarts.schemas import LEASE_MAX_MS, Notebook
from nbkeeper.records import PendingWarning, Reservation
from nbkeeper.settings import DEFAULT_POLICY_PATH

__all__ = [
    "LEASE_MAX_MS",
    "SHIPPED_POLICY",
    "Action",
    "Activity",
    "Decision",
    "Notebook",
    "PendingWarning",
    "Policy",
    "Reservation",
    "decide",
    "policy_with",
]

# The policy file nbkeeper ships in its layer (what a team gets without changing anything).
SHIPPED_POLICY: Path = DEFAULT_POLICY_PATH


def policy_with(overlay: dict[str, Any]) -> Policy:
    """The shipped policy file with `overlay` merged over it, as an SSM overlay would be."""
    base = yaml.safe_load(SHIPPED_POLICY.read_text(encoding="utf-8")) or {}
    return parse_policy_data(merge_overlay(base, overlay), f"{SHIPPED_POLICY} + {overlay}")
