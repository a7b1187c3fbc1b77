"""SIMULATION: 50 nodes swarming one model with ARIA's chunk planner (no network, no files).

A labelled scale simulation, not a measurement: one seeder holds a model, ``--liars`` other
nodes claim to hold it but corrupt every chunk they send, and the other nodes fetch it at
once. Each fetcher runs the library's real :class:`aria.library.planner.SwarmPlan` (the
code ``library_fetch`` runs: pull windows, rarest first, bans, end game) over the seeder,
the liars and ``--peers`` other fetchers, which serve the chunks they already hold (as
``have`` announcements make them do). What is simulated is the network: every node
uploads one chunk at a time at ``--upload-mbit`` (a FIFO queue per uploader), a chunk takes
``--latency-ms`` more to arrive, downloads are not limited, and a cancelled end-game copy
still costs its sender the upload. Chunk payloads are small stand-ins (32 bytes named by the
chunk, wrong bytes from a liar) whose sha256 is really computed and handed to the planner,
so "no chunk is ever accepted unverified" is checked on what each fetcher finally stores.

Compared in the same run: the swarm, and every fetcher pulling from the one seeder alone.

    python benchmarks/library_swarm.py [--nodes 50] [--size-mib 512] [--peers 6]

Prints a table and writes ``benchmarks/results/library_swarm.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aria.library.bitmap import Bitmap  # noqa: E402
from aria.library.planner import Accepted, Corrupt, SwarmPlan  # noqa: E402

MIB = 2**20
SEEDER = "seeder"


def payload(index: int) -> bytes:
    return hashlib.sha256(f"chunk {index}".encode()).digest()


@dataclass
class Fetcher:
    name: str
    plan: SwarmPlan
    held: dict[int, bytes] = field(default_factory=dict)
    finished_at: float | None = None


@dataclass
class Swarm:
    """Who uploads what when: one FIFO upload queue per node, a heap of arrivals."""

    chunk_s: float
    latency_s: float
    liars: set[str]
    fetchers: dict[str, Fetcher]
    serves: dict[str, list[str]]  # uploader -> the fetchers that list it as a source
    busy_until: dict[str, float] = field(default_factory=dict)
    arrivals: list[tuple[float, int, str, str, int]] = field(default_factory=list)
    corrupt_seen: int = 0
    _order: int = 0

    def ask(self, fetcher: Fetcher, source: str, now: float) -> None:
        for index in fetcher.plan.assign(source, now):
            start = max(self.busy_until.get(source, 0.0), now)
            self.busy_until[source] = start + self.chunk_s
            self._order += 1
            arrival = (
                start + self.chunk_s + self.latency_s,
                self._order,
                source,
                fetcher.name,
                index,
            )
            heapq.heappush(self.arrivals, arrival)

    def run(self) -> float:
        for fetcher in self.fetchers.values():
            for source in fetcher.plan.active_sources:
                self.ask(fetcher, source, 0.0)
        now = 0.0
        while self.arrivals:
            now, _, source, name, index = heapq.heappop(self.arrivals)
            fetcher = self.fetchers[name]
            if fetcher.finished_at is not None or fetcher.plan.is_banned(source):
                continue  # done, or the stream to a banned provider is closed
            data = b"\x00" * 32 if source in self.liars else payload(index)
            verdict = fetcher.plan.arrived(source, index, hashlib.sha256(data).hexdigest(), now)
            if isinstance(verdict, Corrupt):
                self.corrupt_seen += 1
                for other in fetcher.plan.active_sources:
                    self.ask(fetcher, other, now)
                continue
            if isinstance(verdict, Accepted):
                fetcher.held[index] = data
                if fetcher.plan.complete:
                    fetcher.finished_at = now
                for downstream in self.serves.get(name, []):  # ``have``: serve what it holds
                    other = self.fetchers[downstream]
                    if other.finished_at is None:
                        other.plan.gained(name, (index,))
                        self.ask(other, name, now)
            if fetcher.finished_at is None:
                self.ask(fetcher, source, now)
        missing = [f.name for f in self.fetchers.values() if f.finished_at is None]
        if missing:
            raise RuntimeError(f"{len(missing)} fetchers never finished (stuck swarm)")
        return max(f.finished_at or 0.0 for f in self.fetchers.values())


def build(args: argparse.Namespace, count: int, swarming: bool, seed: int) -> Swarm:
    rng = random.Random(seed)
    digests = tuple(hashlib.sha256(payload(i)).hexdigest() for i in range(count))
    lengths = [args.chunk_mib * MIB] * count
    liars = {f"liar-{n}" for n in range(args.liars)}
    names = [f"node-{n}" for n in range(args.nodes - 1 - args.liars)]
    fetchers: dict[str, Fetcher] = {}
    serves: dict[str, list[str]] = {}
    for name in names:
        plan = SwarmPlan(lengths, digests, Bitmap(count), start=rng.randrange(count))
        plan.add_source(SEEDER, None)
        if swarming:
            for liar in liars:
                plan.add_source(liar, None)
            for peer in rng.sample([n for n in names if n != name], args.peers):
                plan.add_source(peer, Bitmap(count))
                serves.setdefault(peer, []).append(name)
        fetchers[name] = Fetcher(name, plan)
    chunk_s = args.chunk_mib * MIB * 8 / (args.upload_mbit * 1e6)
    return Swarm(chunk_s, args.latency_ms / 1000, liars, fetchers, serves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=50, help="seeder + liars + fetchers")
    parser.add_argument("--liars", type=int, default=2)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=4)
    parser.add_argument("--peers", type=int, default=6, help="other fetchers each one knows")
    parser.add_argument("--upload-mbit", type=float, default=100.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/library_swarm.json")
    args = parser.parse_args()
    count = -(-args.size_mib // args.chunk_mib)

    started = time.perf_counter()
    alone = build(args, count, swarming=False, seed=args.seed)
    seeder_only_s = alone.run()
    swarm = build(args, count, swarming=True, seed=args.seed)
    swarm_s = swarm.run()
    good = {i: payload(i) for i in range(count)}
    unverified = sum(
        1
        for run in (alone, swarm)
        for fetcher in run.fetchers.values()
        for index, data in fetcher.held.items()
        if data != good[index]
    )
    finish = [f.finished_at or 0.0 for f in swarm.fetchers.values()]
    result: dict[str, Any] = {
        "benchmark": "library_swarm",
        "simulation": True,
        "model": "upload-limited FIFO per node, fixed latency, unlimited download",
        "nodes": args.nodes,
        "fetchers": len(swarm.fetchers),
        "liars": args.liars,
        "peers_per_fetcher": args.peers,
        "file_mib": args.size_mib,
        "chunk_mib": args.chunk_mib,
        "upload_mbit": args.upload_mbit,
        "latency_ms": args.latency_ms,
        "one_seeder_completion_s": seeder_only_s,
        "swarm_completion_s": swarm_s,
        "swarm_median_fetcher_s": statistics.median(finish),
        "speedup": seeder_only_s / swarm_s,
        "one_copy_at_upload_rate_s": count * alone.chunk_s,
        "corrupt_chunks_refused": swarm.corrupt_seen,
        "chunks_stored_unverified": unverified,
        "simulated_in_s": time.perf_counter() - started,
    }
    print("SIMULATION (labelled): " + result["model"])
    print(
        f"{len(swarm.fetchers)} fetchers, {args.size_mib} MiB in {args.chunk_mib} MiB chunks, "
        f"{args.upload_mbit:g} Mbit/s up per node, {args.liars} corrupting nodes"
    )
    print(f"one seeder only : last fetcher done at {seeder_only_s:8.1f} s")
    print(
        f"swarm           : last fetcher done at {swarm_s:8.1f} s "
        f"(median {result['swarm_median_fetcher_s']:.1f} s), {result['speedup']:.1f}x faster"
    )
    print(f"corrupt chunks refused {swarm.corrupt_seen}, chunks stored unverified {unverified}")
    if unverified:
        raise SystemExit("a chunk was stored unverified")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
