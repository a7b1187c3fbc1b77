"""Upload limits and the download order: pure decisions, table-driven."""

from __future__ import annotations

from datetime import datetime

import pytest

from aria.config import ConsentSettings
from aria.consent import Admit, Ask, Refuse, evaluate, from_settings
from aria.errors import (
    DeniedFile,
    DownloadError,
    IntegrityError,
    InvalidRequest,
    LicenceRejected,
    NodeNotRunning,
    PeerError,
    RoutingError,
    StoreBusy,
)
from aria.library.limits import (
    LimitTerms,
    TokenBucket,
    UploadLimits,
    terms_from_consent,
    upload_cap_mbps,
)
from aria.library.sources import download_order, falls_back


def test_consent_becomes_bytes_per_second() -> None:
    consent = ConsentSettings(
        library_upload_mbps=80, library_peer_mbps=8, library_peer_gb_per_day=2
    )
    assert terms_from_consent(consent, from_settings(consent)) == LimitTerms(
        10e6, 1e6, 2_000_000_000
    )


def test_a_bucket_paces_to_its_rate_after_a_one_second_burst() -> None:
    bucket = TokenBucket(1000.0, now=0.0)
    assert bucket.reserve(1000, 0.0) == 0.0  # the burst
    assert bucket.reserve(500, 0.0) == pytest.approx(0.5)
    assert bucket.reserve(500, 1.0) == pytest.approx(0.0)
    assert TokenBucket(0.0, 0.0).reserve(10**9, 0.0) == 0.0  # no cap


def test_total_and_per_peer_rates_and_daily_bytes() -> None:
    limits = UploadLimits(LimitTerms(upload_bps=2000, peer_bps=1000, peer_bytes_per_day=5000), 0.0)
    assert limits.reserve("a", 1000, 0.0) == 0.0
    assert limits.reserve("a", 1000, 0.0) == pytest.approx(1.0)  # a's own cap
    assert limits.reserve("b", 1000, 0.0) == pytest.approx(0.5)  # the library's cap
    assert limits.allowance("a", 0.0) == 3000
    limits.reserve("a", 3000, 10.0)
    assert limits.allowance("a", 10.0) == 0 and limits.allowance("b", 10.0) == 4000
    assert limits.allowance("a", 86_400.0) == 5000  # a new day
    limits.update(LimitTerms(0, 0, 5000), 20.0)
    assert limits.reserve("b", 10**6, 20.0) == 0.0
    limits.forget_idle(200_000.0)
    assert limits.allowance("b", 200_000.0) == 5000


def test_library_consent_is_a_clause_of_the_contract() -> None:
    now = datetime(2026, 12, 5, 12, 0)
    off = from_settings(ConsentSettings())  # a first contract: nothing lent
    refused = evaluate(off, Ask("library", "p"), now)
    assert isinstance(refused, Refuse) and refused.reason == "task_not_allowed"
    on = from_settings(ConsentSettings(share_library=True))  # the switch seeds the clause
    assert on.lend.tasks == ("library",)
    assert isinstance(evaluate(on, Ask("library", "p", model="m"), now), Admit)
    assert isinstance(evaluate(on, Ask("inference", "p"), now), Refuse)  # inference stays off


def test_the_upload_cap_is_the_lower_of_the_setting_and_the_contract() -> None:
    contract = from_settings(ConsentSettings(share_library=True))
    assert upload_cap_mbps(ConsentSettings(), contract) == 0.0  # no cap
    assert upload_cap_mbps(ConsentSettings(library_upload_mbps=40.0), contract) == 40.0
    capped = contract.model_copy(
        update={"lend": contract.lend.model_copy(update={"upload_mbps": 24.0})}
    )
    assert upload_cap_mbps(ConsentSettings(), capped) == 24.0
    assert upload_cap_mbps(ConsentSettings(library_upload_mbps=8.0), capped) == 8.0
    terms = terms_from_consent(ConsentSettings(library_peer_mbps=8.0), capped)
    assert terms.upload_bps == 3_000_000 and terms.peer_bps == 1_000_000


@pytest.mark.parametrize(
    ("flags", "catalog", "order"),
    [
        ({}, True, ("hub",)),
        ({"use_peers": True}, True, ("peers", "hub")),
        ({"from_peers": True}, True, ("peers", "hub")),
        ({"prefer_hub": True}, True, ("hub", "peers")),
        ({"use_peers": True, "prefer_hub": True}, True, ("hub", "peers")),
        ({"peers_only": True}, True, ("peers",)),
        ({}, False, ()),
        ({"use_peers": True}, False, ("peers",)),
        ({"prefer_hub": True}, False, ("peers",)),
    ],
)
def test_download_order(flags: dict[str, bool], catalog: bool, order: tuple[str, ...]) -> None:
    kwargs = {"use_peers": False, **flags}
    assert download_order(in_catalog=catalog, **kwargs) == order


def test_contradicting_flags_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="contradict"):
        download_order(in_catalog=True, use_peers=False, peers_only=True, prefer_hub=True)


@pytest.mark.parametrize(
    ("error", "next_source"),
    [
        (RoutingError("nobody"), True),
        (PeerError("gone"), True),
        (NodeNotRunning("no node"), True),
        (DownloadError("hub down"), True),
        (IntegrityError("bad file"), True),
        (LicenceRejected("yellow"), False),
        (DeniedFile("denied"), False),
        (StoreBusy("busy"), False),
    ],
)
def test_which_failures_try_the_next_source(error: Exception, next_source: bool) -> None:
    assert falls_back(error) is next_source  # type: ignore[arg-type]
