"""Profile presets: which tiers a node enables.

A pure table plus one function; the README's profile table is generated from
``PROFILE_TIERS`` by a test so the two cannot drift.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final

from aria.catalog.entries import Tier
from aria.errors import ConfigError

__all__ = [
    "DEFAULT_PROFILE",
    "NATIVE_1BIT_PROFILES",
    "PROFILE_TIERS",
    "PROFILES",
    "describe_profiles",
    "enabled_tiers",
    "native_1bit_only",
]

DEFAULT_PROFILE: Final = "efficient"

PROFILE_TIERS: Final = MappingProxyType(
    {
        "minimal": (Tier.EFFICIENCY,),
        "efficient": (Tier.EFFICIENCY,),
        "balanced": (Tier.EFFICIENCY, Tier.QUALITY),
        "full": (Tier.EFFICIENCY, Tier.QUALITY, Tier.SPECIALIST),
        "specialist_only": (Tier.SPECIALIST,),
    }
)

PROFILES: Final = tuple(PROFILE_TIERS)

# "efficient" is the 1-bit profile: of the Efficiency tier it serves only native 1-bit
# (ternary) models, with the embedded default model as the fallback it always is.
NATIVE_1BIT_PROFILES: Final = frozenset({"efficient"})

# "minimal" is for the smallest machines and background nodes: it stays CPU-only
# even when a GPU is present, so it never wakes a discrete GPU. "efficient" serves
# 1-bit models only, and no Accelerated model is one.
_NO_AUTO_ACCELERATION: Final = frozenset({"minimal", *NATIVE_1BIT_PROFILES})


def native_1bit_only(profile: str) -> bool:
    """Does ``profile`` serve native 1-bit models only (plus the embedded default)?"""
    return profile in NATIVE_1BIT_PROFILES


def enabled_tiers(profile: str, *, gpu_available: bool) -> tuple[Tier, ...]:
    """Return the tiers ``profile`` enables, in preference order.

    The Accelerated tier is appended automatically when a supported GPU is present.

    Raises:
        ConfigError: ``profile`` is not a known preset.
    """
    try:
        tiers = PROFILE_TIERS[profile]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ConfigError(f"unknown profile {profile!r}; choose one of: {known}") from None
    if gpu_available and profile not in _NO_AUTO_ACCELERATION:
        return (*tiers, Tier.ACCELERATED)
    return tiers


def describe_profiles(active: str, *, gpu_available: bool) -> dict[str, Any]:
    """``{"active", "gpu", "profiles": [{"name", "tiers", "active"}]}``: every preset and
    the tiers it enables on this machine (``aria node profile show --json``, the API)."""
    profiles = [
        {
            "name": name,
            "tiers": [tier.value for tier in enabled_tiers(name, gpu_available=gpu_available)],
            "active": name == active,
        }
        for name in PROFILE_TIERS
    ]
    return {"active": active, "gpu": gpu_available, "profiles": profiles}
