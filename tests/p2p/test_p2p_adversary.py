"""A hostile peer against a lender: raw ggml-rpc through an accepted tunnel, a foreign DHT,
and live revocation. Everything is real: node processes, libp2p, the confined worker.

L lends compute (``--rpc on --rpc-peer '*'``, a short idle limit). A is an ARIA node whose
operator is hostile: it opens the tunnel with its own control channel, then speaks raw
ggml-rpc on the local port (``tests/rpc/rpcwire.py``), or llama.cpp's own RPC client
through ctypes (the cache-flag write). After every attack L's worker must still be the
same live process and L's disk unchanged; A's reputation on L falls with each cut session
(soon a ban), and an honest borrower B's split through its own tunnel to L still gives the
local greedy text.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import multiaddr
import psutil
import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr

from aria.config import AriaPaths, update_settings
from aria.convert.synthetic import write_llama_gguf
from aria.errors import ConsentRefused, PeerError
from aria.p2p.control import NodeClient
from aria.p2p.keys import NodeKey
from aria.p2p.spec import load_spec
from aria.p2p.transport.host import build_host, quiet_libp2p_logs
from aria.rpc.ggml_rpc import library_dir
from aria.split import Candidate, PlanPolicy
from tests.p2p.procs import NodeProc, _env, start_node, verified, wait_for
from tests.rpc import rpcwire as w
from tests.split.test_split_inference import dispatcher, generate, local_reference, split_model

pytestmark = pytest.mark.slow

GIB = 1024**3
IDLE_S = 6.0


@dataclass
class Pair:
    lender: NodeProc
    attacker: NodeProc
    honest: NodeProc
    lender_id: str

    def port(self, node: NodeProc | None = None) -> int:
        """A's (or ``node``'s) local tunnel port to L, opened by its own control channel."""
        control = NodeClient.require((node or self.attacker).paths)
        return int(control.request("tunnel", peer_id=self.lender_id)["port"])

    def worker(self) -> psutil.Process | None:
        children = psutil.Process(self.lender.proc.pid).children()
        return children[0] if children else None

    def lender_log(self) -> str:
        return self.lender.log()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("adversary")
    lender_home = root / "lender"
    update_settings(
        AriaPaths(lender_home),
        {
            "consent": {
                "share_rpc": True,
                "rpc_peers": ["*"],
                "rpc_memory_gb": 0.25,
                "rpc_idle_timeout_s": IDLE_S,
                "share_inference": True,
            }
        },
    )
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    started: list[NodeProc] = []
    try:
        lender = start_node(lender_home, *common)
        started.append(lender)
        status = lender.status()
        assert status is not None
        boot = status["listen_addrs"][0]
        attacker = start_node(root / "attacker", *common, "--bootstrap", boot)
        started.append(attacker)
        # the honest borrower lets its prompts reach peers (its contract's use clause)
        update_settings(AriaPaths(root / "honest"), {"consent": {"use_peers": True}})
        honest = start_node(root / "honest", *common, "--bootstrap", boot)
        started.append(honest)
        lender_id = str(status["peer_id"])
        for node in (attacker, honest):
            wait_for(partial(verified, node, lender_id), 60, "L verified")
        yield Pair(lender, attacker, honest, lender_id)
    finally:
        for node in reversed(started):
            node.stop()


def _files(home: Path) -> set[str]:
    return {
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and "logs" not in p.parts
    }


def _opened(pair: Pair) -> tuple[w.RawClient, int]:
    client = w.RawClient.connect(pair.port(), timeout_s=30)
    assert client.hello() == (7, 0, 0)  # the real worker, through the tunnel and filter
    worker = pair.worker()
    assert worker is not None
    return client, worker.pid


def _assert_cut(pair: Pair, client: w.RawClient, worker_pid: int, reason: str) -> None:
    try:
        assert client.closed(wait_s=10), "the lender kept a hostile session open"
    finally:
        client.close()
    wait_for(lambda: f"cut: {reason}" in pair.lender_log(), 10, f"L to log a {reason} cut")
    worker = pair.worker()
    assert worker is not None and worker.pid == worker_pid and worker.is_running()


def test_an_out_of_bounds_tensor_is_cut_before_the_worker_sees_it(pair: Pair) -> None:
    client, pid = _opened(pair)
    pointer, base = client.alloc(4096)
    header = w.tensor(buffer=pointer, data=base + 4000, ne=(64, 1, 1, 1))  # 256 bytes past 4096
    client.send(w.set_tensor(header, bytes(256)))
    _assert_cut(pair, client, pid, "bounds")


def test_an_allocation_beyond_the_offer_is_cut(pair: Pair) -> None:
    client, pid = _opened(pair)
    client.send(w.alloc(8 * GIB))  # the offer is 0.25 GB
    _assert_cut(pair, client, pid, "allocation")


def test_an_unknown_command_is_cut(pair: Pair) -> None:
    client, pid = _opened(pair)
    client.send(w.request(99, b"\x00" * 16))
    _assert_cut(pair, client, pid, "protocol")


def test_a_custom_op_graph_is_cut(pair: Pair) -> None:
    """GGML_OP_CUSTOM carries a function pointer the worker would call."""
    client, pid = _opened(pair)
    pointer, base = client.alloc(4096)
    a = w.tensor(id=1, buffer=pointer, data=base, ne=(8, 1, 1, 1))
    evil = w.tensor(id=2, buffer=pointer, data=base + 64, ne=(8, 1, 1, 1), op=95, src=(1,))
    client.send(w.graph([2], [a, evil]))
    _assert_cut(pair, client, pid, "graph")


def test_an_idle_session_is_cut_and_frees_the_worker(pair: Pair) -> None:
    client, pid = _opened(pair)
    started = time.monotonic()
    _assert_cut(pair, client, pid, "idle")
    assert time.monotonic() - started < IDLE_S + 8


_CACHE_WRITER = textwrap.dedent(
    """
    import ctypes, os, sys
    lib = sys.argv[1]; endpoint = sys.argv[2].encode()
    ctypes.CDLL(os.path.join(lib, "libggml-base.so.0"))
    ggml = ctypes.CDLL(os.path.join(lib, "libggml.so.0"))
    base = ctypes.CDLL(os.path.join(lib, "libggml-base.so.0"))
    rpc = ctypes.CDLL(os.path.join(lib, "libggml-rpc.so.0"))
    P, S = ctypes.c_void_p, ctypes.c_size_t
    class Params(ctypes.Structure):
        _fields_ = [("mem_size", S), ("mem_buffer", P), ("no_alloc", ctypes.c_bool)]
    rpc.ggml_backend_rpc_buffer_type.restype = P
    rpc.ggml_backend_rpc_buffer_type.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    base.ggml_backend_buft_alloc_buffer.restype = P
    base.ggml_backend_buft_alloc_buffer.argtypes = [P, S]
    base.ggml_backend_buffer_set_usage.argtypes = [P, ctypes.c_int]
    base.ggml_backend_buffer_get_base.restype = P
    base.ggml_backend_buffer_get_base.argtypes = [P]
    base.ggml_init.restype = P
    base.ggml_init.argtypes = [Params]
    base.ggml_new_tensor_1d.restype = P
    base.ggml_new_tensor_1d.argtypes = [P, ctypes.c_int, ctypes.c_int64]
    base.ggml_backend_tensor_alloc.argtypes = [P, P, P]
    base.ggml_backend_tensor_set.argtypes = [P, P, S, S]
    size = 12 * 1024 * 1024
    buft = rpc.ggml_backend_rpc_buffer_type(endpoint, 0)
    buf = base.ggml_backend_buft_alloc_buffer(buft, size + 4096)
    base.ggml_backend_buffer_set_usage(buf, 1)  # GGML_BACKEND_BUFFER_USAGE_WEIGHTS
    ctx = base.ggml_init(Params(1 << 20, None, True))
    for round in range(3):  # each call would have written a new 12 MiB cache file
        t = base.ggml_new_tensor_1d(ctx, 24, size)  # GGML_TYPE_I8
        base.ggml_backend_tensor_alloc(buf, t, base.ggml_backend_buffer_get_base(buf))
        data = os.urandom(size)
        base.ggml_backend_tensor_set(t, data, 0, size)
    print("sent", 3 * size)
    """
)


def test_cache_flag_writes_leave_the_lenders_disk_unchanged(pair: Pair, tmp_path: Path) -> None:
    """The review's attack: llama.cpp's own client, WEIGHTS buffer, 12 MiB tensor_set."""
    before = _files(pair.lender.home)
    script = tmp_path / "cache_writer.py"
    script.write_text(_CACHE_WRITER)
    endpoint = f"127.0.0.1:{pair.port()}"
    done = subprocess.run(
        [sys.executable, str(script), str(library_dir()), endpoint],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "sent" in done.stdout, done.stderr[-2000:]
    assert _files(pair.lender.home) == before  # no cache directory, no file anywhere
    worker = pair.worker()
    assert worker is not None
    workdir = Path(worker.cwd()) if os.geteuid() == 0 else None
    if workdir is not None:
        assert list(workdir.iterdir()) == []
    log = pair.lender_log()
    assert "saved to" not in (pair.lender.home / "logs" / "rpc-worker.log").read_text()
    assert "RPC tunnel from" in log and "closed after" in log


def test_foreign_dht_and_unverified_streams_get_nothing(pair: Pair) -> None:
    """A plain libp2p host (no ARIA handshake) asks for L's routing table and advert."""
    quiet_libp2p_logs()
    spec = load_spec()
    status = pair.lender.status()
    assert status is not None
    target = info_from_p2p_addr(multiaddr.Multiaddr(status["listen_addrs"][0]))
    stranger = build_host(NodeKey.generate())
    outcomes: dict[str, str] = {}

    async def main() -> None:
        async with stranger.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            await stranger.connect(target)
            for name, protocol in (("ipfs", "/ipfs/kad/1.0.0"), ("aria", spec.dht_id)):
                try:
                    with trio.fail_after(20):
                        stream = await stranger.new_stream(target.peer_id, [TProtocol(protocol)])
                        await stream.write(b"\x08\x04")  # a FIND_NODE-ish request
                        data = await stream.read(1024)
                    outcomes[name] = "answered" if data else "closed"
                except Exception as exc:  # refused negotiation or reset
                    outcomes[name] = f"refused ({type(exc).__name__})"
            with trio.fail_after(spec.handshake_timeout_s + 10):
                while target.peer_id in stranger.get_connected_peers():
                    await trio.sleep(0.2)
            outcomes["dropped"] = "yes"

    trio.run(main)
    assert outcomes["ipfs"].startswith("refused")  # no /ipfs/kad handler at all
    assert outcomes["aria"] != "answered"
    assert outcomes["dropped"] == "yes"  # no handshake: disconnected at the deadline
    status = pair.lender.status()
    assert status is not None and status["dht_routing_table"] <= 2  # A and B, never the stranger
    assert str(stranger.get_id()) not in {p["peer_id"] for p in pair.lender.peers()}


def test_the_attacker_lost_its_standing_and_an_honest_split_still_works(
    pair: Pair, tmp_path: Path
) -> None:
    a_id = str(pair.attacker.status()["peer_id"])  # type: ignore[index]
    standing = next((p for p in pair.lender.peers() if p["peer_id"] == a_id), None)
    banned = a_id in (pair.lender.status() or {}).get("banned_peers", [])
    assert banned or (standing is not None and standing["score"] < 50)
    gguf = write_llama_gguf(tmp_path / "tiny.gguf", quant="Q8_0", n_layers=4, n_ctx=1024)
    worker = pair.worker()
    peer = Candidate(pair.lender_id, f"127.0.0.1:{pair.port(pair.honest)}", GIB // 4, 1, 0.001)

    async def run() -> tuple[str, str]:
        d = dispatcher(tmp_path)
        async with d.running():
            expected = await local_reference(d, gguf)
            every_block_on_l = PlanPolicy(min_peers=1, max_local_layers=0)
            async with split_model(gguf, [peer], every_block_on_l).lease(d) as lease:
                text, _ = await generate(lease)
        return expected, text

    expected, text = anyio.run(run, backend="trio")
    assert text == expected and len(text) > 50
    if worker is not None:
        assert worker.is_running() and pair.worker() is not None


def test_revoking_consent_takes_effect_within_two_seconds(pair: Pair) -> None:
    """Last: it turns lending and inference off on L, live (seen by the honest borrower)."""
    control = NodeClient.require(pair.honest.paths)
    client = w.RawClient.connect(pair.port(pair.honest), timeout_s=30)
    assert client.hello() == (7, 0, 0)  # a session in progress when the operator changes their mind
    body = {"model": "anything", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(PeerError) as before:
        list(control.stream("infer", body=body, peer_id=pair.lender_id))
    assert "task_not_allowed" not in before.value.message  # admitted (no model here)

    started = time.monotonic()
    changed = _cli(pair.lender.home, "node", "share", "--rpc", "off", "--inference", "off")
    assert changed.returncode == 0, changed.stderr
    assert "the running node applied it" in changed.stdout
    assert client.closed(wait_s=2.0), "the session in progress outlived the revocation"
    client.close()
    control.request("tunnel_close", peer_id=pair.lender_id)
    with pytest.raises(PeerError) as refused:
        control.request("tunnel", peer_id=pair.lender_id)
    assert refused.value.code == ConsentRefused.code, refused.value.message
    assert "task_not_allowed" in refused.value.message
    with pytest.raises(PeerError) as no_inference:
        list(control.stream("infer", body=body, peer_id=pair.lender_id))
    assert "task_not_allowed" in no_inference.value.message
    assert time.monotonic() - started < 2.0 + 3.0  # the CLI run itself takes ~1-2 s here
    wait_for(lambda: pair.worker() is None, 5, "L to stop its RPC worker")
    control.ping(pair.lender_id)  # refetches L's advert
    view = pair.honest.peer(pair.lender_id)
    assert view is not None and view["consent"]["share_rpc"] is False
    assert view["consent"]["share_inference"] is False
