"""What a node offers and uses: catalog pins, licences, the denylist.

* A provider advertising a catalog model with a file that is not the catalog's is never
  chosen (real nodes; the squatter's store is edited the way a squatter would).
* A yellow-licence import is refused for split inference, naming its licence.
* A file the denylist blocks (here: a denylist that lists it after it was installed) is
  neither loaded, listed, advertised nor served to peers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from aria.catalog import DeniedHash, Denylist, load_catalog, load_denylist
from aria.config import AriaPaths
from aria.consent import Ask, Contract, LendTerms
from aria.convert.synthetic import write_llama_gguf
from aria.errors import DeniedFile
from aria.p2p.inference import admit
from aria.p2p.local import shareable_models
from aria.store import ModelStore
from tests.p2p.procs import NodeProc, _env, start_node, wait_for

CATALOG_ID = "BitNet-b1.58-2B-4T"  # pinned in the catalog (sha256 4221b252…)
HONEST_ID = "tiny-offer"


def _store(home: Path, denylist: Denylist | None = None) -> ModelStore:
    return ModelStore(AriaPaths(home), load_catalog(), denylist or load_denylist())


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _squat(home: Path, model_id: str, as_id: str) -> None:
    """Re-label an installed model as ``as_id`` in the store, as a squatter would."""
    models = AriaPaths(home).models
    shutil.copytree(models / model_id, models / as_id)
    manifest = json.loads((models / as_id / "manifest.json").read_text())
    manifest["model_id"] = as_id
    (models / as_id / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.slow
def test_a_provider_offering_a_catalog_id_with_another_file_is_never_chosen(
    tmp_path: Path,
) -> None:
    squatter_home = tmp_path / "squatter"
    _store(squatter_home).import_file(
        write_llama_gguf(tmp_path / "tiny.gguf", n_ctx=512), model_id=HONEST_ID
    )
    _squat(squatter_home, HONEST_ID, CATALOG_ID)
    offered = {
        o.id
        for o in shareable_models(
            ModelStore(AriaPaths(squatter_home), load_catalog(), load_denylist())
        )
    }
    assert offered == {HONEST_ID, CATALOG_ID}  # its advert does claim the catalog model
    assert _cli(squatter_home, "node", "share", "--inference", "on").returncode == 0
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    started: list[NodeProc] = []
    try:
        squatter = start_node(squatter_home, *common)
        started.append(squatter)
        status = squatter.status()
        assert status is not None
        asker = start_node(tmp_path / "asker", *common, "--bootstrap", status["listen_addrs"][0])
        started.append(asker)
        s_id = str(status["peer_id"])
        wait_for(lambda: (asker.peer(s_id) or {}).get("verified"), 60, "the asker to verify S")
        honest = wait_for(lambda: asker.query("find", HONEST_ID), 60, "the honest offer")
        assert [p["peer_id"] for p in honest] == [s_id]  # the same peer, for a non-catalog id
        assert asker.query("find", CATALOG_ID) == []
        view = asker.peer(s_id)
        assert view is not None and view["score"] < 100  # scored down (false_offer)
        assert f"ignoring {s_id}'s offer of {CATALOG_ID}" in asker.log()
    finally:
        for node in reversed(started):
            node.stop()


def test_a_yellow_licence_import_is_refused_for_split(tmp_path: Path) -> None:
    home = tmp_path / "home"
    gguf = write_llama_gguf(tmp_path / "llama.gguf", n_ctx=512, license="llama3")
    _store(home).import_file(gguf, model_id="meta-style", accept_license=True)
    refused = _cli(home, "model", "run", "meta-style", "hello", "--distributed")
    assert refused.returncode != 0
    assert "cannot be split over other machines" in refused.stderr
    assert "'llama3' is yellow" in refused.stderr
    local = _cli(home, "model", "run", "meta-style", "hello", "--max-tokens", "4")
    assert local.returncode == 0, local.stderr  # this machine may still run it


def test_a_denylisted_file_is_not_loaded_listed_advertised_or_served(tmp_path: Path) -> None:
    home = tmp_path / "home"
    installed = _store(home).import_file(
        write_llama_gguf(tmp_path / "tiny.gguf", n_ctx=512), model_id=HONEST_ID
    )
    later = Denylist(entries=(DeniedHash(sha256=installed.sha256, reason="test: revoked"),))
    store = _store(home, later)
    with pytest.raises(DeniedFile, match="denylist"):
        store.get(HONEST_ID)
    assert store.installed() == []
    assert shareable_models(ModelStore(AriaPaths(home), load_catalog(), later)) == ()
    body = {"model": HONEST_ID, "messages": [{"role": "user", "content": "hi"}]}
    shared = {o.id for o in shareable_models(ModelStore(AriaPaths(home), load_catalog(), later))}
    lending = Contract(lend=LendTerms(tasks=("inference",)))
    admission = admit(lending, Ask("inference", "12D3KooWpeer"), body, shared, datetime.now())
    assert admission.reject is not None and admission.reject.reason == "no_model"
    assert shareable_models(
        ModelStore(AriaPaths(home), load_catalog(), load_denylist())
    )  # unblocked: listed
