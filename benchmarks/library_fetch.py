"""Library fetch throughput on loopback: 1, 2 and 3 providers vs a plain copy vs the hub.

Real node processes (``aria node start``, py-libp2p: TCP + Noise + yamux) on 127.0.0.1:
three providers publish one generated model (a catalog id pinning it, through
tests/helpers/patched_aria.py) and a fourth node fetches it through ``library_fetch``,
the control op ``aria model download --peers-only`` uses. Measured in the same run, in
alternation (``--repeats`` rounds; medians):

* **plain copy**: the same file over one plain TCP connection on loopback, from a sender
  process (``socket.sendfile``) to a receiver process that writes it and hashes it (the
  least a verified copy costs);
* **hub mirror**: ARIA's hub download (``huggingface_hub`` resolve + ARIA's resumable
  transfer + sha256 + publish) from a local server speaking the hub protocol
  (tests/helpers/hubserver.py) in its own process;
* **peers 1/2/3**: the library fetch with 1, 2 or 3 providers sharing (the others stop
  lending ``library`` in their consent contract, live: ``aria node share --library off``),
  from the op's start to the installed, verified file (provider lookup, manifests, chunks,
  whole-file sha256, atomic rename); the node's own transfer time (manifest chosen ->
  verified) is reported besides.

``--chunk-sizes`` repeats the 3-provider fetch (``--sweep-repeats`` times) with other chunk
sizes (every node restarted with that size), to choose the protocol's fixed chunk size.
The defaults keep one run to a few minutes on a 2-core machine.

    python benchmarks/library_fetch.py [--size-mib 64] [--repeats 2] [--chunk-sizes 1,2,4,8]

Prints a table and writes ``benchmarks/results/library_fetch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aria.catalog import load_denylist  # noqa: E402
from aria.config import AriaPaths, update_settings  # noqa: E402
from aria.convert.synthetic import write_llama_gguf  # noqa: E402
from aria.p2p.control import NodeClient  # noqa: E402
from aria.store import HubConfig, ModelStore  # noqa: E402
from tests.p2p.procs import NodeProc, start_node, wait_for  # noqa: E402
from tests.store.support import FAST_RETRY, catalog_of, hub_entry, sha256  # noqa: E402

MODEL, REPO, FILE = "Bench-Model", "aria-bench/model", "model.gguf"
COMMON = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
MIB = 2**20

_RECEIVER = """
import hashlib, socket, sys, time
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
started = time.perf_counter()
hasher = hashlib.sha256()
buffer = bytearray(1 << 20)
view = memoryview(buffer)
with open(sys.argv[1], "wb") as sink:
    while n := conn.recv_into(buffer):
        sink.write(view[:n])
        hasher.update(view[:n])
print(time.perf_counter() - started, hasher.hexdigest(), flush=True)
"""

_SENDER = """
import socket, sys
address = ("127.0.0.1", int(sys.argv[2]))
with socket.create_connection(address) as conn, open(sys.argv[1], "rb") as f:
    conn.sendfile(f)
"""

_HUB = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.helpers.hubserver import HubServer
with HubServer() as hub:
    hub.add(sys.argv[2], sys.argv[3], Path(sys.argv[4]).read_bytes())
    print(hub.url, flush=True)
    sys.stdin.read()
"""


def plain_copy(model: Path, scratch: Path) -> float:
    """Seconds for one plain loopback copy (written and hashed on the receiving side)."""
    target = scratch / "plain.out"
    receiver = subprocess.Popen(
        [sys.executable, "-c", _RECEIVER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert receiver.stdout is not None
    port = receiver.stdout.readline().strip()
    subprocess.run([sys.executable, "-c", _SENDER, str(model), port], check=True)
    seconds, digest = receiver.stdout.readline().split()
    receiver.wait(timeout=60)
    assert digest == sha256(model.read_bytes())
    target.unlink()
    return float(seconds)


def hub_download(store: ModelStore) -> float:
    started = time.perf_counter()
    store.download(MODEL)
    elapsed = time.perf_counter() - started
    store.remove(MODEL)
    return elapsed


def peer_fetch(fetcher: NodeProc) -> tuple[float, float, dict[str, int]]:
    """(seconds from the op's start to the verified install, the node's transfer seconds,
    the bytes each provider sent)."""
    client = NodeClient.connect(fetcher.paths, timeout_s=600)
    assert client is not None
    started = time.perf_counter()
    last: dict[str, Any] = {}
    for item in client.stream("library_fetch", model_id=MODEL):
        last = item
    elapsed = time.perf_counter() - started
    assert last.get("event") == "done", last
    assert fetcher.cli("model", "rm", MODEL, "--yes").returncode == 0
    shares = {source["peer_id"][-8:]: int(source["bytes"]) for source in last["sources"]}
    return elapsed, float(last["elapsed_s"]), shares


class Bench:
    """Three providers and a fetcher, restartable with another chunk size."""

    def __init__(self, root: Path, model: Path, env: dict[str, str]) -> None:
        self.root, self.model, self.env = root, model, env
        self.providers: list[NodeProc] = []
        self.fetcher: NodeProc | None = None

    def start(self, chunk_mib: int) -> None:
        env = {**self.env, "ARIA_TEST_CHUNK_SIZE": str(chunk_mib * MIB)}
        bootstrap: list[str] = []
        for n in range(3):
            home = self.root / f"p{n}"
            if not home.exists():
                self._settings(home, share_library=True)
                ModelStore(AriaPaths(home), self.catalog, load_denylist()).import_file(self.model)
            node = start_node(home, *COMMON, *bootstrap, env=env, timeout_s=120)
            if not bootstrap:
                status = node.status()
                assert status is not None
                bootstrap = ["--bootstrap", status["listen_addrs"][0]]
            assert node.cli("library", "publish", MODEL, timeout_s=300).returncode == 0
            self.providers.append(node)
        home = self.root / "fetcher"
        if not home.exists():
            self._settings(home, share_library=False)
        self.fetcher = start_node(home, *COMMON, *bootstrap, env=env, timeout_s=120)
        self.sharing(3)

    @property
    def catalog(self) -> Any:
        data = self.model.read_bytes()
        return catalog_of(hub_entry(MODEL, repo=REPO, file=FILE, sha=sha256(data), size=len(data)))

    def _settings(self, home: Path, **consent: Any) -> None:
        p2p = {"max_per_ip": 64, "max_per_subnet": 64}
        update_settings(AriaPaths(home), {"p2p": p2p, "consent": consent})

    def sharing(self, count: int) -> None:
        """The first ``count`` providers share; wait until the fetcher finds exactly them."""
        for index, node in enumerate(self.providers):
            switch = "on" if index < count else "off"  # the contract's library clause, live
            done = node.cli("node", "share", "--library", switch, timeout_s=60)
            assert done.returncode == 0, done.stderr
        assert self.fetcher is not None
        fetcher = self.fetcher
        ids = {str((p.status() or {})["peer_id"]) for p in self.providers[:count]}

        def found() -> bool:
            answered = fetcher.query("find", MODEL, "--library") or []
            complete = {p["peer_id"] for p in answered if p["state"] == "complete"}
            return complete == ids

        wait_for(found, 120, f"{count} provider(s) sharing", every_s=2)

    def stop(self) -> None:
        for node in [*self.providers, *([self.fetcher] if self.fetcher else [])]:
            node.stop()
        self.providers, self.fetcher = [], None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk-sizes", default="1,2,4,8", help="MiB, comma-separated")
    parser.add_argument("--sweep-repeats", type=int, default=1)
    parser.add_argument("--chunk-mib", type=int, default=4, help="the size for the main runs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/library_fetch.json")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="aria-library-bench-"))
    try:
        results = run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    layers = max(1, round(args.size_mib / 14))  # ~14 MiB per F16 layer at this shape
    model = write_llama_gguf(root / FILE, quant="F16", n_embd=1024, n_layers=layers, n_ff=1024)
    size = model.stat().st_size
    load_before = os.getloadavg()
    hub_proc = subprocess.Popen(
        [sys.executable, "-c", _HUB, str(ROOT), REPO, FILE, str(model)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hub_proc.stdout is not None
    hub_url = hub_proc.stdout.readline().strip()
    bench = Bench(root / "nodes", model, {})
    catalog = bench.catalog
    catalog_file = root / "catalog.toml"
    entries = [e.model_dump(mode="json", exclude_none=True) for e in catalog]
    catalog_file.write_text(tomli_w.dumps({"default_model": MODEL, "models": entries}))
    bench.env = {"ARIA_TEST_CATALOG": str(catalog_file)}
    hub_store = ModelStore(
        AriaPaths(root / "hub-client"),
        catalog,
        load_denylist(),
        hub_config=HubConfig(endpoint=hub_url, token=None),
        retry=FAST_RETRY,
    )
    os.environ["HF_HOME"] = str(root / "hf_home")
    runs: dict[str, list[float]] = {}
    transfer: dict[str, list[float]] = {}
    sent: dict[str, list[dict[str, int]]] = {}  # bytes per provider, each fetch
    try:
        bench.start(args.chunk_mib)
        for round_ in range(args.repeats):
            runs.setdefault("plain_copy", []).append(plain_copy(model, root))
            runs.setdefault("hub_mirror", []).append(hub_download(hub_store))
            for count in (1, 2, 3):
                bench.sharing(count)
                assert bench.fetcher is not None
                total, moved, shares = peer_fetch(bench.fetcher)
                runs.setdefault(f"peers_{count}", []).append(total)
                transfer.setdefault(f"peers_{count}", []).append(moved)
                sent.setdefault(f"peers_{count}", []).append(shares)
            print(f"round {round_ + 1}/{args.repeats}: " + _line(runs, size))
        bench.stop()
        sweep: dict[str, list[float]] = {}
        for chunk_mib in (int(c) for c in args.chunk_sizes.split(",") if c):
            bench.start(chunk_mib)
            for _ in range(args.sweep_repeats):
                assert bench.fetcher is not None
                total, moved, shares = peer_fetch(bench.fetcher)
                sweep.setdefault(f"{chunk_mib}_MiB", []).append(total)
                transfer.setdefault(f"chunks_{chunk_mib}_MiB", []).append(moved)
                sent.setdefault(f"chunks_{chunk_mib}_MiB", []).append(shares)
            bench.stop()
    finally:
        bench.stop()
        assert hub_proc.stdin is not None
        hub_proc.stdin.close()
        hub_proc.wait(timeout=30)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    rates = {name: size / seconds / 1e6 for name, seconds in medians.items()}
    sweep_rates = {name: size / statistics.median(values) / 1e6 for name, values in sweep.items()}
    result = {
        "benchmark": "library_fetch",
        "file_bytes": size,
        "chunk_mib": args.chunk_mib,
        "repeats": args.repeats,
        "sweep_repeats": args.sweep_repeats,
        "seconds": runs,
        "node_transfer_seconds": transfer,
        "bytes_per_provider": sent,
        "rate_mb_s": rates,
        "ratio_3_providers_to_plain_copy": rates["peers_3"] / rates["plain_copy"],
        "ratio_3_providers_to_hub_mirror": rates["peers_3"] / rates["hub_mirror"],
        "chunk_size_sweep_3_providers_mb_s": sweep_rates,
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    }
    print("\n" + _line(runs, size))
    print(f"3 providers / plain copy = {result['ratio_3_providers_to_plain_copy']:.2f}")
    print(
        "chunk sizes (3 providers): "
        + ", ".join(f"{k} {v:.1f} MB/s" for k, v in sweep_rates.items())
    )
    return result


def _line(runs: dict[str, list[float]], size: int) -> str:
    return ", ".join(
        f"{name} {size / statistics.median(values) / 1e6:.1f} MB/s" for name, values in runs.items()
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
