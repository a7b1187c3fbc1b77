"""Fetching from several providers over in-memory streams: real stores, real services.

The multi-process proof with real libp2p nodes is ``test_library_nodes.py``; these run
the same fetcher and server in one process, fast, with faults injected where a peer
would cause them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from aria.catalog import DeniedHash, Denylist
from aria.errors import DeniedFile, LicenceRejected, PeerError
from aria.library.manifest import seal_manifest
from aria.library.shelf import LIBRARY_FILE
from aria.p2p.keys import NodeKey
from aria.p2p.records import seal
from aria.store.manifest import HashSource
from tests.library.memnet import (
    SPEC,
    ForgedOffer,
    MemNode,
    Network,
    fetch,
    forge,
    install,
    model_file,
    publish,
    set_consent,
)
from tests.store.support import catalog_of, hub_entry, sha256

Scenario = Callable[[Network, Path], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **network: Any) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            net = Network(tmp_path / "nodes", nursery, **network)
            with trio.fail_after(60):
                await scenario(net, tmp_path)
            nursery.cancel_scope.cancel()

    trio.run(main)


async def providers(net: Network, tmp_path: Path, count: int, **consent: Any) -> list[MemNode]:
    source = model_file(tmp_path)
    nodes = []
    for n in range(count):
        node = await net.add(f"p{n}", **consent)
        install(node, source, "tiny-lib")
        await publish(node, "tiny-lib")
        nodes.append(node)
    return nodes


def served(node: MemNode) -> int:
    return node.service.server.totals.chunks


def test_a_file_comes_from_three_providers_at_once_verified(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        sources = await providers(net, tmp, 3)
        fetcher = await net.add("f", sharing=False)
        reports = await fetch(fetcher, "tiny-lib")
        assert [r["event"] for r in reports][0] == "start" and reports[-1]["event"] == "done"
        model = fetcher.store.get("tiny-lib")
        original = sources[0].store.get("tiny-lib")
        assert model.path.read_bytes() == original.path.read_bytes()
        assert model.manifest.hash_source is HashSource.PEERS and model.manifest.imported
        chunks = reports[-1]["chunks"]
        assert chunks == -(-model.size_bytes // SPEC.chunk_size)
        # Every chunk once, plus at most one end-game copy per provider.
        assert chunks <= sum(served(s) for s in sources) <= chunks + len(sources)
        assert all(served(s) > 0 for s in sources)  # all three took part
        assert {s["state"] for s in reports[-1]["sources"]} <= {"active", "gone"}
        # Nothing but the verified file and the records beside it is left in the store.
        left = sorted(p.name for p in model.path.parent.iterdir())
        assert left == sorted([model.path.name, "manifest.json", LIBRARY_FILE])
        # The fetcher now serves it too, under its own signature.
        entries = await fetcher.service.control_ops()["library_list"]({})
        assert entries[0]["published"] and entries[0]["chunks"] == chunks

    run(tmp_path, scenario)


def test_a_corrupting_provider_is_banned_after_its_first_bad_chunk(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        honest, liar = await providers(net, tmp, 2)
        path = liar.store.get("tiny-lib").path
        data = bytearray(path.read_bytes())
        for offset in range(100, len(data), SPEC.chunk_size):
            data[offset] ^= 0xFF  # every chunk damaged on the provider's disk, same size
        path.write_bytes(bytes(data))
        fetcher = await net.add("f", sharing=False)
        reports = await fetch(fetcher, "tiny-lib")
        model = fetcher.store.get("tiny-lib")
        assert model.path.read_bytes() == honest.store.get("tiny-lib").path.read_bytes()
        states = {s["peer_id"]: s for s in reports[-1]["sources"]}
        assert states[liar.peer_id]["state"] == "banned"
        assert states[liar.peer_id]["chunks"] == 0
        # Banned at its first chunk (a second one was already on its way: the window).
        assert served(liar) <= 2
        assert fetcher.penalties.count((liar.peer_id, "bad_chunk")) == 1
        # Banned for this file: the next fetch of it does not even ask the liar.
        assert liar.peer_id in fetcher.service._bans.banned(model.sha256, time.time())

    run(tmp_path, scenario)


def test_a_provider_that_dies_mid_transfer_is_replaced(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        sources = await providers(net, tmp, 3)
        fetcher = await net.add("f", sharing=False)
        victim = sources[0]
        killed = False

        def on_item(item: dict[str, Any]) -> None:
            nonlocal killed
            if not killed and item["chunks_done"] >= 5:
                killed = True
                net.nursery.start_soon(victim.kill)

        await set_consent(victim, library_upload_mbps=3.2)  # caught mid-transfer
        reports = await fetch(fetcher, "tiny-lib", on_item)
        assert killed and reports[-1]["event"] == "done"
        assert fetcher.store.get("tiny-lib").sha256 == sources[1].store.get("tiny-lib").sha256
        gone = {s["peer_id"]: s["state"] for s in reports[-1]["sources"]}
        assert gone[victim.peer_id] == "gone"

    run(tmp_path, scenario)


def test_a_cancelled_fetch_resumes_without_fetching_verified_chunks_again(
    tmp_path: Path,
) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        (source,) = await providers(net, tmp, 1, library_upload_mbps=2.0)
        fetcher = await net.add("f", sharing=False)
        with trio.move_on_after(60) as scope:
            await fetch(
                fetcher,
                "tiny-lib",
                lambda item: scope.cancel() if item["chunks_done"] >= 8 else None,
            )
        assert scope.cancelled_caught
        await trio.sleep(0.5)  # the fetch task notices and closes its streams
        first = served(source)
        assert 8 <= first < 20
        await set_consent(source, library_upload_mbps=0.0)
        reports = await fetch(fetcher, "tiny-lib")
        resumed, chunks = reports[0]["chunks_resumed"], reports[0]["chunks"]
        assert resumed >= 8
        assert served(source) - first == chunks - resumed  # only what was missing

    run(tmp_path, scenario)


def test_a_manifest_signed_by_another_peer_is_refused(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        honest, forger = await providers(net, tmp, 2)
        model = forger.store.get("tiny-lib")
        manifest = forger.service.shelf.shared()[0].manifest
        # The forger offers a manifest naming itself, signed by a stranger.
        forged = seal("manifest", manifest, NodeKey.generate())
        forge(forger, ForgedOffer("tiny-lib", model.sha256, forged, manifest, model.path))
        fetcher = await net.add("f", sharing=False)
        await fetch(fetcher, "tiny-lib")
        assert (forger.peer_id, "false_manifest") in fetcher.penalties
        assert served(forger) == 0 and served(honest) >= 25

    run(tmp_path, scenario)


def _pinned_network(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A catalog id pinning a generated file, and the catalog to use."""
    source = model_file(tmp_path, seed=5)
    entry = hub_entry(
        "Pinned-Model",
        file=source.name,
        sha=sha256(source.read_bytes()),
        size=source.stat().st_size,
    )
    return source, {"catalog": catalog_of(entry)}


def test_a_chunk_list_that_does_not_make_the_pinned_file_is_refused(tmp_path: Path) -> None:
    source, network = _pinned_network(tmp_path)
    other = model_file(tmp_path, seed=6)

    async def scenario(net: Network, tmp: Path) -> None:
        forger = await net.add("forger")
        install(forger, other, "tiny-other")
        await publish(forger, "tiny-other")
        pin = net.catalog.get("Pinned-Model").sha256
        assert pin is not None
        # The forger claims the pinned file but lists the chunks of its own file.
        own = forger.service.shelf.shared()[0]
        claim = own.manifest.model_copy(update={"model_id": "Pinned-Model", "sha256": pin})
        lie = seal_manifest(claim, forger.key)
        forge(forger, ForgedOffer("Pinned-Model", pin, lie, claim, own.model.path))
        fetcher = await net.add("f", sharing=False)
        with pytest.raises(PeerError):
            await fetch(fetcher, "Pinned-Model")
        assert (forger.peer_id, "false_manifest") in fetcher.penalties
        assert not fetcher.store.is_installed("Pinned-Model")
        assert list((fetcher.home / "models" / "Pinned-Model").glob("*.part*")) == []
        # With honest providers about, the forger's list is outvoted and never used.
        for name in ("h1", "h2"):
            honest = await net.add(name)
            install(honest, source, "Pinned-Model")
            await publish(honest, "Pinned-Model")
        fetcher2 = await net.add("f2", sharing=False)
        forger.service.server.totals.chunks = 0
        await fetch(fetcher2, "Pinned-Model")
        assert fetcher2.store.get("Pinned-Model").manifest.hash_source is HashSource.CATALOG
        assert served(forger) == 0

    run(tmp_path, scenario, **network)


def test_yellow_and_denylisted_files_are_never_served(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        owner = await net.add("owner")
        yellow = install(
            owner, model_file(tmp, seed=7, license="llama3"), "yellow-lib", accept_license=True
        )
        with pytest.raises(LicenceRejected, match="yellow"):
            await publish(owner, "yellow-lib")
        green = install(owner, model_file(tmp, seed=8), "green-lib")
        await publish(owner, "green-lib")
        # A record written behind the node's back does not publish a yellow file either.
        record = (green.path.parent / LIBRARY_FILE).read_text()
        (yellow.path.parent / LIBRARY_FILE).write_text(record)
        # A release then puts the green file on the denylist; the node restarts with it.
        revoked = Denylist(entries=(DeniedHash(sha256=green.sha256, reason="test: revoked"),))
        await net.restart(owner, denylist=revoked)
        assert owner.service._published == {}
        with pytest.raises(DeniedFile):
            await publish(owner, "green-lib")
        fetcher = await net.add("f", sharing=False)
        for model_id, sha in (("yellow-lib", yellow.sha256), ("green-lib", green.sha256)):
            net.providers.setdefault(sha, set()).add(owner.peer_id)  # a stale record
            with pytest.raises(PeerError, match="not_shared"):
                await fetch(fetcher, model_id, sha256=sha)
        assert served(owner) == 0

    run(tmp_path, scenario)


def test_library_not_lent_and_quota_are_refusals_not_failures(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        (source,) = await providers(net, tmp, 1, library_peer_gb_per_day=0.0005)
        fetcher = await net.add("f", sharing=False)
        with pytest.raises(PeerError, match="quota|allowance"):
            await fetch(fetcher, "tiny-lib")  # 500 kB a day: stopped after a few chunks
        await set_consent(source, library=False)
        with pytest.raises(PeerError, match="task_not_allowed"):
            await fetch(fetcher, "tiny-lib")

    run(tmp_path, scenario)


def test_the_contracts_clauses_decide_who_may_fetch_what(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        (source,) = await providers(net, tmp, 1)
        fetcher = await net.add("f", sharing=False)
        lend = source.contract.lend
        denied = source.contract.model_copy(
            update={"lend": lend.model_copy(update={"deny": (fetcher.peer_id,)})}
        )
        await set_consent(source, denied)
        with pytest.raises(PeerError, match="peer_denied"):
            await fetch(fetcher, "tiny-lib")
        other_models = source.contract.model_copy(
            update={"lend": lend.model_copy(update={"models": ("some-other-model",)})}
        )
        await set_consent(source, other_models)
        with pytest.raises(PeerError, match="model_not_allowed"):
            await fetch(fetcher, "tiny-lib")
        await set_consent(source, denied.model_copy(update={"lend": lend}))
        await set_consent(source, library_max_uploads=1)
        assert source.service.server.serving == 0
        reports = await fetch(fetcher, "tiny-lib")
        assert reports[-1]["event"] == "done"
        assert served(source) == reports[-1]["chunks"]  # the whole file, from the one provider

    run(tmp_path, scenario)


def test_consent_withdrawn_mid_transfer_cuts_the_upload(tmp_path: Path) -> None:
    async def scenario(net: Network, tmp: Path) -> None:
        (source,) = await providers(net, tmp, 1, library_upload_mbps=4.0)
        fetcher = await net.add("f", sharing=False)

        def on_item(item: dict[str, Any]) -> None:
            if item["chunks_done"] >= 2 and source.contract.lends("library"):
                net.nursery.start_soon(lambda: set_consent(source, library=False))

        with pytest.raises(PeerError, match="stopped before the file was complete"):
            await fetch(fetcher, "tiny-lib", on_item)
        assert served(source) < 25

    run(tmp_path, scenario)
