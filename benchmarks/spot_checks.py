"""Proof of useful work, measured: spot-check error rates and what a check costs.

Three real ARIA homes on loopback, each a node and an API process, all with the same model
file: A sends greedy requests to B (honest) and to C (a real node whose API runs with the
test-only switch ARIA_TEST_ONLY_PERTURB_PEER_ANSWERS=<q>, so it alters that share of the
answers it generates for peers and logs which), and re-executes every answer it gets
(``ledger.spot_check_rate = 1``). The ground truth (which answers C altered, from C's log)
is compared with A's verdicts in its ledger:

* false positive: an unaltered answer (B's, or C's honest ones) found ``mismatch``;
* false negative: an altered answer found ``match``.

Cost: each check is a generation of the same request on A (its receipt has
``origin: spotcheck``); compared with the original generation on the serving peer (its
``served`` receipt), by duration and energy.

    python benchmarks/spot_checks.py [--model PATH] [--honest 100] [--cheater 60] [--cheat 0.3]

Prints a summary and writes ``benchmarks/results/spot_checks.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aria.catalog import load_catalog, load_denylist
from aria.cheat import CHEAT_ENV
from aria.config import AriaPaths, update_settings
from aria.ledger import Ledger
from aria.p2p.control import NodeClient
from aria.p2p.identity import load_identity
from aria.store import ModelStore

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from api_vs_inprocess import find_model  # the same model lookup  # noqa: E402

from tests.p2p.procs import (  # real node and API processes, as the tests run them  # noqa: E402
    ApiProc,
    NodeProc,
    aria_cli,
    start_api,
    start_node,
    wait_for,
)

RESULTS = Path(__file__).resolve().parent / "results" / "spot_checks.json"
_ALTERED = re.compile(r"TEST-ONLY CHEAT: altering the answer of receipt ([0-9a-f]{32})")


def _home(root: Path, name: str, model: Path, consent: dict[str, Any]) -> Path:
    home = root / name
    home.mkdir()
    store = ModelStore(AriaPaths(home), load_catalog(), load_denylist())
    model_id = store.import_file(model).model_id
    update_settings(AriaPaths(home), {"consent": consent, "ledger": {"spot_check_rate": 1.0}})
    (root / "model_id").write_text(model_id)
    return home


def _ledger(home: Path) -> Ledger:
    paths = AriaPaths(home)
    return Ledger.open(paths.ledger, signer=load_identity(paths).peer_id)


def _ask(a: NodeProc, model: str, peer: str, prompt: str, max_tokens: int) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    items = list(NodeClient.require(a.paths).stream("infer", body=body, peer_id=peer))
    assert items and items[0]["peer"] == peer


def _served(home: Path) -> dict[str, dict[str, Any]]:
    """The serving node's receipts by id."""
    with _ledger(home) as ledger:
        bodies = [e.decoded()["body"] for e in ledger.entries(kind="inference")]
    return {b["id"]: b for b in bodies if b["role"] == "served"}


def _verdicts(a_home: Path) -> list[dict[str, Any]]:
    """A's spot checks, each with the server's receipt id it checked."""
    with _ledger(a_home) as ledger:
        consumed = {
            e.decoded()["body"]["id"]: e.decoded()["body"]
            for e in ledger.entries(kind="inference")
            if e.decoded()["body"]["role"] == "consumed"
        }
        checks = [e.decoded()["body"] for e in ledger.entries(kind="spotcheck")]
        local = {
            e.decoded()["body"]["id"]: e.decoded()["body"]
            for e in ledger.entries(kind="inference")
            if e.decoded()["body"].get("origin") == "spotcheck"
        }
    rows = []
    for check in checks:
        mine = consumed.get(check["receipt_id"])
        if mine is None or "work" not in mine:
            continue
        served_id = json.loads(mine["work"]["entry"])["body"]["id"]
        rows.append(
            {
                "peer": check["peer"],
                "verdict": check["verdict"],
                "served_id": served_id,
                "check": local.get(check.get("check_receipt_id") or ""),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the installed SmolLM2)")
    parser.add_argument("--honest", type=int, default=100, help="requests to the honest peer")
    parser.add_argument("--cheater", type=int, default=60, help="requests to the cheater")
    parser.add_argument("--cheat", type=float, default=0.3, help="share the cheater alters")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    model = find_model(args.model)
    load_before = os.getloadavg()
    stoppers: list[NodeProc | ApiProc] = []
    with tempfile.TemporaryDirectory(prefix="aria-spot-") as scratch:
        root = Path(scratch)
        a_home = _home(root, "a", model, {"use_peers": True})
        b_home = _home(root, "b", model, {"share_inference": True})
        c_home = _home(root, "c", model, {"share_inference": True})
        model_id = (root / "model_id").read_text()
        for home in (b_home, c_home):  # long enough answers need a higher limit
            aria_cli(home, "node", "consent", "set", "lend.max_tokens", "4096")
        # A keeps asking C after catching it: this measures the checks, not the ranking
        aria_cli(a_home, "node", "consent", "set", "use.min_reputation", "0")
        common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
        try:
            a = start_node(a_home, *common)
            stoppers.append(a)
            boot = a.status()["listen_addrs"][0]  # type: ignore[index]
            b = start_node(b_home, *common, "--bootstrap", boot)
            c = start_node(c_home, *common, "--bootstrap", boot)
            stoppers += [b, c]
            stoppers += [
                start_api(a_home),
                start_api(b_home),
                start_api(c_home, extra_env={CHEAT_ENV: str(args.cheat)}),
            ]
            b_id, c_id = b.status()["peer_id"], c.status()["peer_id"]  # type: ignore[index]
            for peer in (b_id, c_id):
                wait_for(lambda p=peer: (a.peer(p) or {}).get("verified"), 90, "A to verify")
            started = time.monotonic()
            plan = [(b_id, i) for i in range(args.honest)] + [
                (c_id, i) for i in range(args.cheater)
            ]
            plan.sort(key=lambda item: item[1])  # interleave the two peers
            for peer, number in plan:
                prompt = f"Question {number}: tell me one fact about the number {number}."
                _ask(a, model_id, peer, prompt, args.max_tokens)
            total = args.honest + args.cheater

            def checked() -> bool:
                return len(_verdicts(a_home)) >= total

            wait_for(checked, 1800, "A to check every answer", every_s=5)
            elapsed = time.monotonic() - started
            altered = set(_ALTERED.findall((c_home / "api.log").read_text(errors="replace")))
            served = {**_served(b_home), **_served(c_home)}
            rows = _verdicts(a_home)
        finally:
            for item in reversed(stoppers):
                item.stop()
    counts = {"tp": 0, "fn": 0, "fp": 0, "tn": 0}
    ratios_time, ratios_energy = [], []
    for row in rows:
        was_altered = row["served_id"] in altered
        flagged = row["verdict"] != "match"
        counts[("tp" if flagged else "fn") if was_altered else ("fp" if flagged else "tn")] += 1
        original, check = served.get(row["served_id"]), row["check"]
        if original and check and original["duration_ms"] > 0:
            ratios_time.append(check["duration_ms"] / original["duration_ms"])
            if original["energy"]["millijoules"] > 0:
                ratios_energy.append(
                    check["energy"]["millijoules"] / original["energy"]["millijoules"]
                )
    honest_total = counts["fp"] + counts["tn"]
    altered_total = counts["tp"] + counts["fn"]
    report = {
        "benchmark": "spot_checks",
        "model": str(model),
        "requests": {"honest_peer": args.honest, "cheater": args.cheater},
        "cheat_share": args.cheat,
        "checked": len(rows),
        "altered_answers": altered_total,
        "confusion": counts,
        "false_positive_rate": counts["fp"] / honest_total if honest_total else None,
        "false_negative_rate": counts["fn"] / altered_total if altered_total else None,
        "check_vs_original": {
            "duration_median": statistics.median(ratios_time) if ratios_time else None,
            "energy_median": statistics.median(ratios_energy) if ratios_energy else None,
            "pairs": len(ratios_time),
        },
        "wall_s": elapsed,
        "machine": {
            "cpu": next(
                (
                    line.split(":", 1)[1].strip()
                    for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")
                ),
                "unknown",
            ),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(rows)} answers checked ({altered_total} altered by the cheater)")
    print(
        f"false positives {counts['fp']}/{honest_total}, false negatives "
        f"{counts['fn']}/{altered_total}"
    )
    cost = report["check_vs_original"]
    print(
        f"a check costs {cost['duration_median']} x the original's time (median), "
        f"{cost['energy_median']} x its energy"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
