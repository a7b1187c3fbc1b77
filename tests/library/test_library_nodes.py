"""The model library with real node processes on loopback (``aria node start``, py-libp2p).

The proof of issue 13, each step through the real CLI: a catalog id pinning a generated
72 MiB model (the test catalog, see tests/helpers/patched_aria.py), three providers
publishing it, and fetchers that

1. fetch it with ``--peers-only`` from all three at once (the hub is never asked);
2. meet a provider whose disk file is corrupted: banned after its first bad chunk;
3. are killed mid-way and resume without fetching verified chunks again;
4. lose a provider mid-transfer: the others finish it;
5. are never served a yellow import or a denylisted file, and refuse a manifest signed
   by another peer than its provider, or one whose chunks do not make the pinned file;
6. follow the download order with a local hub mirror and peers both available.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomli_w

from aria.catalog import load_denylist
from aria.catalog.loader import Catalog
from aria.config import AriaPaths, update_settings
from aria.convert.synthetic import write_llama_gguf
from aria.store import ModelStore
from tests.helpers.hubserver import HubServer
from tests.p2p.procs import NodeProc, _env, aria_command, start_node, wait_for
from tests.store.support import catalog_of, hub_entry, sha256

pytestmark = pytest.mark.slow

MODEL = "Big-Model"
REPO, FILE = "aria-test/big", "big.gguf"
CHUNK = 4 * 2**20
COMMON = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
SERVED = re.compile(r"library: served (\S+) \(\w+…\) to (\S+): (\d+) chunks.*; (\S+)")


@dataclass
class Cluster:
    root: Path
    model: Path
    sha: str
    catalog: Catalog
    env: dict[str, str]
    hub: HubServer
    nodes: dict[str, NodeProc] = field(default_factory=dict)

    def home(self, name: str, **consent: object) -> Path:
        home = self.root / name
        settings: dict[str, dict[str, object]] = {
            "p2p": {"max_per_ip": 64, "max_per_subnet": 64},
            "consent": {"share_library": True, **consent},
        }
        update_settings(AriaPaths(home), settings)
        return home

    def install(self, home: Path, source: Path, **kwargs: object) -> str:
        store = ModelStore(AriaPaths(home), self.catalog, load_denylist())
        return store.import_file(source, **kwargs).model_id  # type: ignore[arg-type]

    def start(self, name: str, home: Path, *, bootstrap: str | None = None, **env: str) -> NodeProc:
        args = [*COMMON]
        via = self.bootstrap() if bootstrap is None else bootstrap
        if via:
            args += ["--bootstrap", via]
        node = start_node(home, *args, env={**self.env, **env}, timeout_s=90)
        self.nodes[name] = node
        return node

    def bootstrap(self) -> str:
        """A running node's address (a node restarted by a test listens on a new port)."""
        for node in self.nodes.values():
            status = node.status() if node.proc.poll() is None else None
            if status is not None:
                return str(status["listen_addrs"][0])
        return ""

    def provider(self, name: str, *, corrupt: bool = False) -> NodeProc:
        home = self.home(name)
        assert self.install(home, self.model) == MODEL
        node = self.start(name, home)
        assert node.cli("library", "publish", MODEL).returncode == 0
        if corrupt:  # same size, one byte wrong in every chunk: as a failing disk would
            path = AriaPaths(home).models / MODEL / FILE
            data = bytearray(path.read_bytes())
            for offset in range(1000, len(data), CHUNK):
                data[offset] ^= 0xFF
            path.write_bytes(bytes(data))
        return node

    def fetcher(self, name: str, **consent: object) -> NodeProc:
        home = self.home(name, share_library=False, **consent)
        return self.start(name, home)

    def stop(self, name: str) -> None:
        node = self.nodes.pop(name, None)
        if node is not None:
            node.stop()


def peer_id(node: NodeProc) -> str:
    status = node.status()
    assert status is not None
    return str(status["peer_id"])


def library_providers(node: NodeProc) -> list[dict[str, object]]:
    return node.query("find", MODEL, "--library") or []


def wait_for_providers(fetcher: NodeProc, expected: set[str]) -> None:
    def complete() -> bool:
        found = {str(p["peer_id"]) for p in library_providers(fetcher) if p["state"] == "complete"}
        return expected <= found

    wait_for(complete, 90, f"the fetcher to find {len(expected)} library providers", every_s=2)


def wait_for_sharing(fetcher: NodeProc, peer: str) -> None:
    """Until ``fetcher`` holds ``peer``'s advert saying it shares a library."""

    def sharing() -> bool:
        view = fetcher.peer(peer) or {}
        return bool(view.get("verified") and view.get("consent", {}).get("share_library"))

    wait_for(sharing, 90, f"the advert of {peer}", every_s=2)


def served_to(provider: NodeProc, fetcher: str, *, completed_only: bool = False) -> int:
    """Chunks of MODEL the provider's log says it served to ``fetcher`` (one line per
    transfer; ``completed_only``: transfers the fetcher ended with ``end``, not cut)."""
    total = 0
    for match in map(SERVED.search, provider.log().splitlines()):
        ours = match and match.group(1) == MODEL and match.group(2) == fetcher
        if match and ours and (not completed_only or match.group(4) == "closed"):
            total += int(match.group(3))
    return total


def cap_upload(node: NodeProc, mbps: float | None) -> None:
    """Cap the node's upload live (the contract's ``lend.upload_mbps``; None: no cap)."""
    done = node.cli(
        "node", "consent", "set", "lend.upload_mbps", "none" if mbps is None else f"{mbps:g}"
    )
    assert done.returncode == 0, done.stderr


def chunks_logged(home: Path) -> int:
    log = AriaPaths(home).models / MODEL / f"{FILE}.part.chunks"
    return log.stat().st_size // 4 if log.exists() else 0


def installed_sha(home: Path, catalog: Catalog) -> str | None:
    store = ModelStore(AriaPaths(home), catalog, load_denylist())
    return store.get(MODEL).sha256 if store.is_installed(MODEL) else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("library")
    model = write_llama_gguf(root / FILE, quant="F16", n_embd=1024, n_layers=5, n_ff=1024, seed=13)
    assert model.stat().st_size >= 64 * 2**20
    data = model.read_bytes()
    sha = sha256(data)
    catalog = catalog_of(hub_entry(MODEL, repo=REPO, file=FILE, sha=sha, size=len(data)))
    catalog_file = root / "catalog.toml"
    entries = [e.model_dump(mode="json", exclude_none=True) for e in catalog]
    catalog_file.write_text(tomli_w.dumps({"default_model": MODEL, "models": entries}))
    with HubServer() as hub:
        hub.add(REPO, FILE, data)
        env = {
            "ARIA_TEST_CATALOG": str(catalog_file),
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(root / "hf_home"),
        }
        built = Cluster(root, model, sha, catalog, env, hub)
        try:
            for name in ("p0", "p1", "p2"):
                built.provider(name)
            yield built
        finally:
            for name in list(built.nodes):
                built.stop(name)


def test_three_providers_serve_a_peers_only_fetch_in_parallel(cluster: Cluster) -> None:
    fetcher = cluster.fetcher("f1")
    me = peer_id(fetcher)
    providers = [cluster.nodes[n] for n in ("p0", "p1", "p2")]
    wait_for_providers(fetcher, {peer_id(p) for p in providers})
    hub_hits = len(cluster.hub.hits)
    done = fetcher.cli("model", "download", MODEL, "--peers-only", timeout_s=300)
    assert done.returncode == 0, done.stderr
    assert "(from peers)" in done.stdout
    assert installed_sha(fetcher.home, cluster.catalog) == cluster.sha
    chunks = -(-cluster.model.stat().st_size // CHUNK)
    shares = [served_to(p, me) for p in providers]
    assert all(share > 0 for share in shares), shares  # all three at once
    assert chunks <= sum(shares) <= chunks + len(providers)  # + end-game copies
    assert len(cluster.hub.hits) == hub_hits  # --peers-only never asks the hub
    listed = fetcher.cli("library", "list", "--json")
    assert '"published": true' in listed.stdout  # a finished fetcher can serve it
    cluster.stop("f1")


def test_a_corrupting_provider_is_banned_after_its_first_bad_chunk(cluster: Cluster) -> None:
    liar = cluster.provider("liar", corrupt=True)
    fetcher = cluster.fetcher("f2")
    liar_id = peer_id(liar)
    wait_for_providers(fetcher, {liar_id, peer_id(cluster.nodes["p0"])})
    done = fetcher.cli("model", "download", MODEL, "--peers-only", timeout_s=300)
    assert done.returncode == 0, done.stderr
    assert installed_sha(fetcher.home, cluster.catalog) == cluster.sha
    bans = re.findall(rf"banned {liar_id} from {MODEL}: chunk \d+ did not match", fetcher.log())
    assert len(bans) == 1
    assert 1 <= served_to(liar, peer_id(fetcher)) <= 2  # its first chunk (+ one in flight)
    cluster.stop("liar")
    cluster.stop("f2")


def test_a_killed_fetcher_resumes_without_fetching_verified_chunks_again(
    cluster: Cluster,
) -> None:
    providers = [cluster.nodes[n] for n in ("p0", "p1", "p2")]
    for provider in providers:
        cap_upload(provider, 24.0)  # ~9 MB/s together: time to kill
    try:
        fetcher = cluster.fetcher("f3")
        me = peer_id(fetcher)
        wait_for_providers(fetcher, {peer_id(p) for p in providers})
        download = subprocess.Popen(
            [*fetcher_command(fetcher), "model", "download", MODEL, "--peers-only"],
            env=fetcher_env(fetcher),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for(lambda: chunks_logged(fetcher.home) >= 4, 120, "4 verified chunks", 0.1)
        fetcher.proc.send_signal(signal.SIGKILL)
        fetcher.proc.wait(timeout=10)
        download.communicate(timeout=60)  # reads and closes its pipes
        assert download.returncode != 0
        kept = chunks_logged(fetcher.home)
        assert kept >= 4 and installed_sha(fetcher.home, cluster.catalog) is None
        assert sum(served_to(p, me, completed_only=True) for p in providers) == 0
        fetcher = cluster.start("f3", fetcher.home)
        wait_for_providers(fetcher, {peer_id(p) for p in providers})
        done = fetcher.cli("model", "download", MODEL, "--peers-only", timeout_s=300)
        assert done.returncode == 0, done.stderr
        resumed = re.search(r"resuming Big-Model: (\d+) of (\d+) chunks", done.stderr)
        assert resumed is not None, done.stderr
        held, chunks = int(resumed.group(1)), int(resumed.group(2))
        assert held >= kept
        second = sum(served_to(p, me, completed_only=True) for p in providers)
        assert chunks - held <= second <= chunks - held + len(providers)
        assert installed_sha(fetcher.home, cluster.catalog) == cluster.sha
    finally:
        for provider in providers:
            cap_upload(provider, None)
        cluster.stop("f3")


def fetcher_command(node: NodeProc) -> list[str]:
    return aria_command(bool(node.env))


def fetcher_env(node: NodeProc) -> dict[str, str]:
    return {**_env(node.home), **node.env}


def test_a_provider_dying_mid_transfer_leaves_the_others_to_finish(cluster: Cluster) -> None:
    providers = [cluster.nodes[n] for n in ("p0", "p1", "p2")]
    for provider in providers:
        cap_upload(provider, 24.0)
    victim = providers[0]
    try:
        fetcher = cluster.fetcher("f4")
        me = peer_id(fetcher)
        wait_for_providers(fetcher, {peer_id(p) for p in providers})
        download = subprocess.Popen(
            [*fetcher_command(fetcher), "model", "download", MODEL, "--peers-only"],
            env=fetcher_env(fetcher),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: chunks_logged(fetcher.home) >= 4, 120, "4 verified chunks", 0.1)
        victim.proc.send_signal(signal.SIGKILL)  # no goodbye: its streams just stop
        victim.proc.wait(timeout=10)
        out, err = download.communicate(timeout=300)
        assert download.returncode == 0, err
        assert installed_sha(fetcher.home, cluster.catalog) == cluster.sha
        assert all(served_to(p, me) > 0 for p in providers[1:])
    finally:
        cluster.nodes.pop("p0", None)
        for provider in providers[1:]:
            cap_upload(provider, None)
        cluster.stop("f4")
        cluster.nodes["p0"] = cluster.start("p0", victim.home)  # back for the next tests


def test_yellow_and_denylisted_files_are_never_served(cluster: Cluster) -> None:
    yellow = write_llama_gguf(cluster.root / "yellow.gguf", seed=21, license="llama3")
    revoked = write_llama_gguf(cluster.root / "revoked.gguf", seed=22)
    denylist = cluster.root / "denylist.toml"
    entry = {"sha256": sha256(revoked.read_bytes()), "reason": "test: revoked", "reference": "-"}
    denylist.write_text(tomli_w.dumps({"denied": [entry]}))
    home = cluster.home("owner")
    cluster.install(home, yellow, model_id="yellow-lib", accept_license=True)
    cluster.install(home, revoked, model_id="revoked-lib")  # installed before the release
    owner = cluster.start("owner", home, ARIA_TEST_DENYLIST=str(denylist))
    refused = owner.cli("library", "publish", "yellow-lib")
    assert refused.returncode != 0 and "is yellow" in refused.stderr
    listed = owner.cli("library", "list", "--json")
    assert "revoked-lib" not in listed.stdout  # the store no longer shows it at all
    fetcher = cluster.fetcher("f5")
    wait_for_sharing(fetcher, peer_id(owner))
    for source in (yellow, revoked):
        model_id = "yellow-lib" if source is yellow else "revoked-lib"
        sha = sha256(source.read_bytes())
        done = fetcher.cli("model", "download", model_id, "--peers-only", "--sha256", sha)
        assert done.returncode != 0
        assert "not_shared" in done.stderr or "no peer" in done.stderr
    assert served_to(owner, peer_id(fetcher)) == 0
    assert "served yellow-lib" not in owner.log() and "served revoked-lib" not in owner.log()
    cluster.stop("owner")
    cluster.stop("f5")


def test_forged_manifests_are_refused(cluster: Cluster) -> None:
    # A provider whose manifest a stranger signed: refused; the others serve the file.
    home = cluster.home("signer")
    cluster.install(home, cluster.model)
    forger = cluster.start("signer", home, ARIA_TEST_FORGE="signer")
    assert forger.cli("library", "publish", MODEL).returncode == 0
    fetcher = cluster.fetcher("f6")
    forger_id = peer_id(forger)
    wait_for_providers(fetcher, {forger_id, peer_id(cluster.nodes["p0"])})
    done = fetcher.cli("model", "download", MODEL, "--peers-only", timeout_s=300)
    assert done.returncode == 0, done.stderr
    assert installed_sha(fetcher.home, cluster.catalog) == cluster.sha
    assert f"refused the manifest of {forger_id} for {MODEL}: peer_mismatch" in fetcher.log()
    assert served_to(forger, peer_id(fetcher)) == 0
    cluster.stop("signer")
    cluster.stop("f6")
    # A provider listing another file's chunks under the pinned sha256, alone on its
    # network: every chunk matches its list, the whole file does not match the pin.
    other = write_llama_gguf(cluster.root / "other.gguf", quant="F16", n_embd=1024, n_layers=1)
    home = cluster.home("lister")
    cluster.install(home, other, model_id="other-model")
    lister = cluster.start(
        "lister",
        home,
        bootstrap="",
        ARIA_TEST_FORGE="chunks",
        ARIA_TEST_FORGE_AS=f"{MODEL}:{cluster.sha}",
    )
    assert lister.cli("library", "publish", "other-model").returncode == 0
    status = lister.status()
    assert status is not None
    alone = cluster.home("f7", share_library=False)
    fetcher = start_node(alone, *COMMON, "--bootstrap", status["listen_addrs"][0], env=cluster.env)
    cluster.nodes["f7"] = fetcher
    wait_for_sharing(fetcher, peer_id(lister))
    done = fetcher.cli("model", "download", MODEL, "--peers-only", timeout_s=300)
    assert done.returncode != 0
    assert "chunk list that does not make its file" in done.stderr
    assert f"banned {peer_id(lister)} from {MODEL}: its chunk list" in fetcher.log()
    assert installed_sha(fetcher.home, cluster.catalog) is None
    assert not list((AriaPaths(alone).models / MODEL).glob("*.part*"))  # nothing kept
    cluster.stop("lister")
    cluster.stop("f7")


def test_the_download_order_with_a_hub_mirror_and_peers(cluster: Cluster) -> None:
    providers = [cluster.nodes[n] for n in ("p0", "p1", "p2")]
    fetcher = cluster.fetcher("f8")
    me = peer_id(fetcher)
    wait_for_providers(fetcher, {peer_id(p) for p in providers})

    def download(*flags: str) -> tuple[str, int, int]:
        """(where it came from, hub GETs, chunks peers served) for one download."""
        gets = len([h for h in cluster.hub.hits if h.method == "GET"])
        chunks = sum(served_to(p, me) for p in providers)
        done = fetcher.cli("model", "download", MODEL, *flags, timeout_s=300)
        assert done.returncode == 0, done.stderr
        assert installed_sha(fetcher.home, cluster.catalog) == cluster.sha
        assert fetcher.cli("model", "rm", MODEL, "--yes").returncode == 0
        where = re.search(r"\(from (\w+)\)", done.stdout)
        assert where is not None, done.stdout
        new_gets = len([h for h in cluster.hub.hits if h.method == "GET"]) - gets
        return where.group(1), new_gets, sum(served_to(p, me) for p in providers) - chunks

    source, gets, chunks = download()  # use_peers off: the hub only
    assert (source, chunks) == ("hub", 0) and gets > 0
    source, gets, chunks = download("--from-peers")
    assert (source, gets) == ("peers", 0) and chunks > 0
    assert fetcher.cli("node", "share", "--use-peers", "on").returncode == 0
    source, gets, chunks = download()  # use_peers on: peers first
    assert (source, gets) == ("peers", 0) and chunks > 0
    source, gets, chunks = download("--prefer-hub")
    assert (source, chunks) == ("hub", 0) and gets > 0
    cluster.stop("f8")  # peers are reached through the node: without one, the hub is next
    done = fetcher.cli("model", "download", MODEL, timeout_s=300)
    assert done.returncode == 0, done.stderr
    assert "peers:" in done.stderr and "trying hub" in done.stderr and "(from hub)" in done.stdout
