"""The public surface of aria.split is deliberate, and resolves lazily to the real objects."""

from __future__ import annotations

import sys

import pytest

import aria.split


def test_the_public_surface_is_exactly_this() -> None:
    assert sorted(aria.split.__all__) == [
        "Candidate", "LocalNode", "ModelLayout", "NetworkCandidates", "PeerShare", "Placement",
        "PlanPolicy", "Skipped", "SplitLease", "SplitModel", "WorkerSpec",
        "candidate_from_worker", "candidates_from_peers", "describe_split", "lenders",
        "network_candidates", "placement_of", "plan_placement", "probe_candidates",
        "read_layout", "split_lease", "split_model_for",
    ]  # fmt: skip


def test_every_exported_name_comes_from_its_module() -> None:
    for name in aria.split.__all__:
        exported = getattr(aria.split, name)
        home = sys.modules[f"aria.split.{aria.split._HOMES[name]}"]
        assert getattr(home, name) is exported, name
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = aria.split.no_such_name
