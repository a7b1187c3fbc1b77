"""The public surface of aria.router is deliberate, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import aria.router


def test_every_name_in_all_is_importable() -> None:
    for name in aria.router.__all__:
        assert hasattr(aria.router, name), name


def test_the_names_the_node_and_the_cli_use_are_exported() -> None:
    relied_on = {
        "route",
        "RouteRequest",
        "RoutingDecision",
        "RoutingTable",
        "Availability",
        "load_routing_table",
        "Category",
        "classify_query",
    }
    assert relied_on <= set(aria.router.__all__)


def test_run_time_never_imports_scikit_learn() -> None:
    code = (
        "import sys, aria.router as r; r.load_routing_table(); "
        "r.classify_query('hello', r.load_classifier()); "
        "print(any(m.split('.')[0] in ('sklearn', 'scipy') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
