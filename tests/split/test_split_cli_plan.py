"""``aria model plan``: the placement of an installed model, as a table or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aria.cli.model import app as model_app
from aria.config import AriaPaths
from tests.helpers.rpc_workers import StartWorker

runner = CliRunner()
MODEL = "tiny-split"


def _install(model: Path) -> None:
    result = runner.invoke(model_app, ["import", str(model)])
    assert result.exit_code == 0, result.output


def test_a_model_that_fits_is_not_split(aria_paths: AriaPaths, split_gguf: Path) -> None:
    _install(split_gguf)
    result = runner.invoke(model_app, ["plan", MODEL, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["peers"], plan["n_gpu_layers"], plan["local_layers"]) == ([], 0, 4)
    assert "not split" in plan["explanation"][-1]
    table = runner.invoke(model_app, ["plan", MODEL])
    assert "this node" in table.stdout and "not split" in table.stdout


def test_plan_over_a_probed_worker(
    aria_paths: AriaPaths, split_gguf: Path, rpc_workers: StartWorker
) -> None:
    _install(split_gguf)
    worker = rpc_workers(memory_gb=0.5)
    args = ["plan", MODEL, "--worker", f"{worker.endpoint}@0.25", "--worker", "127.0.0.1:1"]
    result = runner.invoke(model_app, [*args, "--max-local-layers", "0", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [p["endpoint"] for p in plan["peers"]] == [worker.endpoint]
    assert plan["peers"][0]["offered_bytes"] == 1024**3 // 4
    assert (plan["n_gpu_layers"], plan["tensor_split"]) == (5, [5.0])  # 4 blocks + the head
    assert plan["round_trips_per_token"] == 1
    assert list(plan["unreachable"]) == ["127.0.0.1:1"]
    shown = runner.invoke(model_app, [*args, "--max-local-layers", "0"])
    assert "n_gpu_layers=5, tensor_split=[5]" in shown.stdout
    assert "127.0.0.1:1 unreachable" in shown.stdout


def test_refusal_is_one_line_with_an_exit_code(aria_paths: AriaPaths, split_gguf: Path) -> None:
    _install(split_gguf)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIA_")}
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "aria",
            "model",
            "plan",
            MODEL,
            "--worker",
            "127.0.0.1:1",
            "--max-local-layers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env | {"ARIA_HOME": str(aria_paths.home)},
    )
    assert child.returncode == 5, child.stderr
    errors = child.stderr.replace("\n", " ").split("error: ")
    assert errors[1].startswith("worker 127.0.0.1:1 unreachable")
    assert errors[2].startswith("no set of peers can hold tiny-split: 4 layers")
    assert "Traceback" not in child.stderr
