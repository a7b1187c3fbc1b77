"""DHT scale benchmark: N ARIA DHT nodes IN ONE PROCESS on loopback (a simulation).

Every node is a real py-libp2p host (TCP on 127.0.0.1, Noise, yamux) running ARIA's
Kademlia DHT with the advert validator; they share one trio loop, one Python process
and this machine's cores, so latencies include that contention and are not network
latencies. Steps:

1. join: node 0 is the bootstrap; each other node connects to it and runs a Kademlia
   self-lookup (FIND_NODE of its own key), as a joining node does;
2. publish: every node stores its signed advert under ``/aria/<peer id>``;
3. lookups: a random node fetches a random other node's advert, sequentially, through
   ``AriaDht.fetch_advert`` (local copy dropped first, so every lookup uses the network),
   and verifies it (signature, expiry, key).

Reported: lookup success rate, hops (the discovery depth of the peer that returned the
record: peers from the source's routing table are 1 hop, peers learnt from their
answers 2, ...) against log2(N), lookup latency p50/p99, and memory per node (RSS
growth / N). Run: ``.venv/bin/python benchmarks/dht_scale.py --nodes 50 --lookups 200``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aria.p2p.adverts import build_advert, encode_advert  # noqa: E402
from aria.p2p.keys import NodeKey  # noqa: E402
from aria.p2p.spec import load_spec  # noqa: E402
from aria.p2p.transport.dht import AriaDht  # noqa: E402
from aria.p2p.transport.host import build_host, quiet_libp2p_logs  # noqa: E402

SPEC = load_spec()


class HopTracker:
    """Discovery depth of each peer queried during one lookup on one node."""

    def __init__(self) -> None:
        self.depth: dict[str, int] = {}
        self.record_hops: list[int] = []

    def reset(self) -> None:
        self.depth.clear()
        self.record_hops.clear()

    def learnt(self, source: Any, peers: list[Any]) -> None:
        d = self.depth.setdefault(str(source), 1)
        for peer in peers:
            self.depth.setdefault(str(peer), d + 1)


def instrument(dht: AriaDht, tracker: HopTracker) -> None:
    """Wrap the two per-peer queries the iterative lookups make (instance attributes)."""
    routing, store = dht.kad.peer_routing, dht.kad.value_store
    find_closest, get_from = routing._query_peer_for_closest, store._get_from_peer

    async def query_closest(peer: Any, key: bytes) -> list[Any]:
        found = await find_closest(peer, key)
        tracker.learnt(peer, found)
        return list(found)

    async def query_value(peer: Any, key: bytes, *args: Any, **kwargs: Any) -> Any:
        result = await get_from(peer, key, *args, **kwargs)
        if isinstance(result, tuple):
            record, closer = result
            tracker.learnt(peer, closer)
            if record is not None:
                tracker.record_hops.append(tracker.depth.setdefault(str(peer), 1))
        return result

    routing._query_peer_for_closest = query_closest
    store._get_from_peer = query_value


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


async def run(nodes: int, lookups: int, seed: int) -> dict[str, Any]:
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.tools.anyio_service import background_trio_service

    quiet_libp2p_logs()
    rng = random.Random(seed)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    keys = [NodeKey.generate() for _ in range(nodes)]
    hosts = [build_host(k) for k in keys]
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    trackers = [HopTracker() for _ in range(nodes)]
    result: dict[str, Any] = {}

    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        dhts: list[AriaDht] = []

        async def serve(i: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            async with hosts[i].run(listen):
                dht = AriaDht(hosts[i], SPEC, time.time)
                instrument(dht, trackers[i])
                async with background_trio_service(dht.kad):
                    task_status.started(dht)
                    await stop.wait()

        for i in range(nodes):
            dhts.append(await nursery.start(serve, i))

        started = time.perf_counter()
        bootstrap = info_from_p2p_addr(hosts[0].get_addrs()[0])
        for i in range(1, nodes):
            await hosts[i].connect(bootstrap)
            await dhts[i].add_peer(bootstrap.peer_id)
            await dhts[0].add_peer(hosts[i].get_id())
        for i in range(nodes):
            for peer in await dhts[i].kad.peer_routing.find_closest_peers_network(
                hosts[i].get_id().to_bytes()
            ):
                await dhts[i].add_peer(peer)
        join_s = time.perf_counter() - started

        started = time.perf_counter()
        now = time.time()
        for i in range(nodes):
            advert = build_advert(keys[i], SPEC, now=now, seq=1)
            await dhts[i].publish_advert(encode_advert(advert, keys[i], SPEC))
        publish_s = time.perf_counter() - started
        rss_after = process.memory_info().rss

        latencies: list[float] = []
        hops: list[int] = []
        failures: list[str] = []
        for _ in range(lookups):
            source, target = rng.sample(range(nodes), 2)
            tracker = trackers[source]
            tracker.reset()
            t0 = time.perf_counter()
            advert = await dhts[source].fetch_advert(keys[target].peer_id)
            latencies.append((time.perf_counter() - t0) * 1000)
            if advert is None or advert.peer_id != keys[target].peer_id:
                failures.append(f"{source}->{target}")
                continue
            # 0 hops: the source was itself among the record's holders (re-stored locally)
            hops.append(min(tracker.record_hops) if tracker.record_hops else 0)

        table_sizes = [d.routing_table_size for d in dhts]
        connections = [len(h.get_connected_peers()) for h in hosts]
        result = {
            "label": "in-process simulation: all nodes in ONE Python process on 127.0.0.1 "
            "(py-libp2p TCP+Noise+yamux, shared trio loop and CPU cores)",
            "nodes": nodes,
            "lookups": lookups,
            "seed": seed,
            "success_rate": (lookups - len(failures)) / lookups,
            "failures": failures,
            "hops_mean": statistics.fmean(hops) if hops else None,
            "hops_max": max(hops) if hops else None,
            "log2_nodes": math.log2(nodes),
            "latency_ms_p50": percentile(latencies, 0.50),
            "latency_ms_p99": percentile(latencies, 0.99),
            "latency_ms_mean": statistics.fmean(latencies),
            "memory_per_node_mib": (rss_after - rss_before) / nodes / 2**20,
            "rss_total_mib": rss_after / 2**20,
            "routing_table_mean": statistics.fmean(table_sizes),
            "connections_per_node_mean": statistics.fmean(connections),
            "join_s": join_s,
            "publish_s": publish_s,
            "machine": {
                "cpus": psutil.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
        }
        stop.set()
        nursery.cancel_scope.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/dht_scale.json")
    args = parser.parse_args()
    if args.nodes < 2 or args.lookups < 1:
        parser.error("need at least 2 nodes and 1 lookup")
    result = trio.run(run, args.nodes, args.lookups, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(result["label"])
    print(
        f"{result['nodes']} nodes, {result['lookups']} lookups: "
        f"success {result['success_rate']:.1%}, hops mean {result['hops_mean']:.2f} "
        f"(max {result['hops_max']}) vs log2(N) {result['log2_nodes']:.2f}, "
        f"latency p50 {result['latency_ms_p50']:.1f} ms p99 {result['latency_ms_p99']:.1f} ms, "
        f"memory {result['memory_per_node_mib']:.2f} MiB/node"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
