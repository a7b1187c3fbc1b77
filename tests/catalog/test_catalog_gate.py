"""The licence gate, table-driven: licence class x intended use x acceptance -> verdict."""

from __future__ import annotations

import pytest

from aria.catalog import Allowed, Forbidden, NeedsAcceptance, Use, Verdict, evaluate, require
from aria.errors import LicenceNotAccepted, LicenceRejected

A, N, F = Allowed, NeedsAcceptance, Forbidden

# (licence, use, accepted, expected verdict type)
TABLE: list[tuple[str, Use, bool, type[Verdict]]] = [
    # green: allowed for every use, accepted or not
    ("MIT", Use.CATALOG, False, A),
    ("apache-2.0", Use.LOCAL_IMPORT, False, A),
    ("Apache-2.0", Use.SHARE, False, A),
    ("BSD-3-Clause", Use.SHARE, True, A),
    ("falcon-llm-license", Use.CATALOG, False, A),
    # yellow: never in the catalog, local only after acceptance, never shared
    ("llama3.1", Use.CATALOG, False, F),
    ("llama3.1", Use.CATALOG, True, F),
    ("llama3.2", Use.LOCAL_IMPORT, False, N),
    ("llama3.2", Use.LOCAL_IMPORT, True, A),
    ("gemma", Use.LOCAL_IMPORT, False, N),
    ("gemma", Use.LOCAL_IMPORT, True, A),
    ("gemma", Use.SHARE, False, F),
    ("llama4", Use.SHARE, True, F),
    # red: refused whatever the operator accepts
    ("CC-BY-NC-4.0", Use.CATALOG, False, F),
    ("CC-BY-NC-4.0", Use.LOCAL_IMPORT, True, F),
    ("mistral-research", Use.LOCAL_IMPORT, True, F),
    ("mistral-research", Use.SHARE, False, F),
    # unknown: red
    ("other", Use.LOCAL_IMPORT, True, F),
    ("", Use.CATALOG, False, F),
]


@pytest.mark.parametrize(("licence", "use", "accepted", "expected"), TABLE)
def test_evaluate(licence: str, use: Use, accepted: bool, expected: type[Verdict]) -> None:
    assert type(evaluate(licence, use, accepted=accepted)) is expected


@pytest.mark.parametrize(("licence", "use", "accepted", "expected"), TABLE)
def test_refusals_name_the_licence_in_a_readable_sentence(
    licence: str, use: Use, accepted: bool, expected: type[Verdict]
) -> None:
    verdict = evaluate(licence, use, accepted=accepted)
    if isinstance(verdict, Allowed):
        return
    assert repr(licence.strip()) in verdict.reason
    assert verdict.reason[0].islower() and "\n" not in verdict.reason


@pytest.mark.parametrize(
    ("licence", "use", "fragment"),
    [
        ("llama3.1", Use.CATALOG, "green licences only"),
        ("llama3.1", Use.SHARE, "never shared"),
        ("gemma", Use.LOCAL_IMPORT, "--accept-license"),
        ("cc-by-nc-4.0", Use.LOCAL_IMPORT, "non-commercial"),
        ("no-idea-v9", Use.LOCAL_IMPORT, "unknown licences are refused"),
    ],
)
def test_reasons_say_what_to_do_or_why(licence: str, use: Use, fragment: str) -> None:
    verdict = evaluate(licence, use)
    assert not isinstance(verdict, Allowed)
    assert fragment in verdict.reason


def test_require_passes_allowed() -> None:
    require(evaluate("MIT", Use.SHARE), subject="catalog entry 'x'")


def test_require_raises_licence_not_accepted_with_the_subject() -> None:
    with pytest.raises(LicenceNotAccepted) as caught:
        require(evaluate("llama3.2", Use.LOCAL_IMPORT), subject="file /tmp/llama.gguf")
    assert caught.value.message.startswith("file /tmp/llama.gguf: ")
    assert "'llama3.2'" in caught.value.message


def test_require_raises_licence_rejected_with_the_subject() -> None:
    with pytest.raises(LicenceRejected) as caught:
        require(evaluate("CC-BY-NC-4.0", Use.SHARE), subject="catalog entry 'Command-R'")
    assert "catalog entry 'Command-R'" in caught.value.message
    assert "'CC-BY-NC-4.0'" in caught.value.message
