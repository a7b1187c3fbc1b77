"""The licence gate: may this licence be used this way? A pure decision, no I/O.

=========  =========  ==========================  =========
class      CATALOG    LOCAL_IMPORT                SHARE
=========  =========  ==========================  =========
green      allowed    allowed                     allowed
yellow     forbidden  allowed once accepted       forbidden
red        forbidden  forbidden                   forbidden
=========  =========  ==========================  =========

The shipped catalog is green only; yellow models are the operator's own local business
(``aria model import PATH --accept-license``) and are never offered to peers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aria.catalog.licences import LicenceClass, describe
from aria.errors import LicenceNotAccepted, LicenceRejected

__all__ = ["Allowed", "Forbidden", "NeedsAcceptance", "Use", "Verdict", "evaluate", "require"]


class Use(StrEnum):
    CATALOG = "catalog"  # listed in ARIA's shipped roster
    LOCAL_IMPORT = "local-import"  # a file the operator brings in and runs on this machine
    SHARE = "share"  # served to, or transferred to, peers


@dataclass(frozen=True)
class Allowed:
    pass


@dataclass(frozen=True)
class NeedsAcceptance:
    reason: str


@dataclass(frozen=True)
class Forbidden:
    reason: str


Verdict = Allowed | NeedsAcceptance | Forbidden


def evaluate(licence: str, use: Use, *, accepted: bool = False) -> Verdict:
    """Decide whether a model under ``licence`` may be used for ``use``.

    ``accepted`` records that the operator explicitly accepted the licence terms; it only
    matters for yellow licences imported locally and never unlocks a red licence.
    """
    info = describe(licence)
    shown = repr(licence.strip())
    if info is None:
        return Forbidden(
            f"licence {shown} is not one ARIA knows, and unknown licences are refused (red)"
        )
    match info.licence_class:
        case LicenceClass.GREEN:
            return Allowed()
        case LicenceClass.RED:
            return Forbidden(f"licence {shown} is red ({info.summary}), so ARIA refuses it")
        case LicenceClass.YELLOW:
            return _yellow(shown, info.summary, use, accepted=accepted)


def _yellow(shown: str, summary: str, use: Use, *, accepted: bool) -> Verdict:
    match use:
        case Use.CATALOG:
            return Forbidden(
                f"licence {shown} is yellow ({summary}) and the shipped catalog holds "
                "green licences only"
            )
        case Use.SHARE:
            return Forbidden(
                f"licence {shown} is yellow ({summary}): such models stay on this machine "
                "and are never shared with peers"
            )
        case Use.LOCAL_IMPORT:
            if accepted:
                return Allowed()
            return NeedsAcceptance(
                f"licence {shown} is yellow ({summary}): read its terms and import again "
                "with --accept-license to use it on this machine only"
            )


def require(verdict: Verdict, *, subject: str) -> None:
    """Turn a refusal into the matching error, naming ``subject`` (an entry id or a file).

    Raises:
        LicenceNotAccepted: the verdict is ``NeedsAcceptance``.
        LicenceRejected: the verdict is ``Forbidden``.
    """
    match verdict:
        case Allowed():
            return
        case NeedsAcceptance(reason=reason):
            raise LicenceNotAccepted(f"{subject}: {reason}")
        case Forbidden(reason=reason):
            raise LicenceRejected(f"{subject}: {reason}")
