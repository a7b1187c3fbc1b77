"""The routing table: category x profile -> ordered model list, plus the router's limits.

Parsed from ``data/routing.toml`` and merged with the operator's ``ARIA_HOME/routing.toml``
(pure: the loader reads the files). Layout::

    [limits]
    long_context_tokens = 3072     # a prompt this long is routed as long_context
    answer_reserve_tokens = 512    # window kept free for the answer without max_tokens

    [categories.code]
    default = ["Qwen3-4B", "..."]  # any profile without its own row
    full = ["Qwen2.5-Coder-7B-Instruct", "..."]

An operator's ``[categories.X]`` table replaces the shipped one for that category as a
whole (so its ``default`` is not shadowed by a shipped per-profile row); ``[limits]``
keys replace the shipped keys one by one.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from aria.catalog.entries import ModelId
from aria.errors import ConfigError
from aria.profiles import PROFILES
from aria.router.categories import Category
from aria.router.classifier import QueryClassifier

__all__ = ["DEFAULT_ROW", "RoutingLimits", "RoutingTable", "merge_tables"]

DEFAULT_ROW: Final = "default"
_TOP_KEYS: Final = frozenset({"limits", "categories"})


@dataclass(frozen=True)
class RoutingLimits:
    long_context_tokens: int = 3072
    answer_reserve_tokens: int = 512


Rows = Mapping[Category, Mapping[str, tuple[ModelId, ...]]]


@dataclass(frozen=True, eq=False)
class RoutingTable:
    """The routing policy: which models each category prefers, and the text classifier."""

    rows: Rows
    limits: RoutingLimits
    classifier: QueryClassifier

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], classifier: QueryClassifier, *, source: str = "routing.toml"
    ) -> RoutingTable:
        """Validate a parsed routing file.

        Raises:
            ConfigError: an unknown section, category or profile, a list that is not a
                list of model ids, or a limit that is not a positive integer (``source``
                names the file in the message).
        """
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ConfigError(f"{source}: unknown section {sorted(unknown)[0]!r}")
        return cls(
            _parse_rows(data.get("categories", {}), source),
            _parse_limits(data.get("limits", {}), source),
            classifier,
        )

    def models_for(self, category: Category, profile: str) -> tuple[ModelId, ...]:
        """The ordered row for ``category`` under ``profile`` (its own row, else default)."""
        row = self.rows.get(category, {})
        return row.get(profile, row.get(DEFAULT_ROW, ()))

    def unknown_models(self, known: Collection[str]) -> list[str]:
        """Messages for every listed id not in ``known`` (with close matches)."""
        problems = []
        for category, row in self.rows.items():
            for profile, models in row.items():
                for model in models:
                    if model not in known:
                        close = difflib.get_close_matches(model, list(known), n=1)
                        hint = f" (did you mean {close[0]!r}?)" if close else ""
                        problems.append(f"categories.{category}.{profile}: {model!r}{hint}")
        return problems


def merge_tables(shipped: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's file over the shipped one: per category, and per limit key."""
    merged = {**shipped, **override}
    for key in _TOP_KEYS:
        base, extra = shipped.get(key, {}), override.get(key, {})
        if isinstance(base, Mapping) and isinstance(extra, Mapping):
            merged[key] = {**base, **extra}
    return merged


def _parse_rows(raw: object, source: str) -> Rows:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: [categories] must be a table")
    rows: dict[Category, Mapping[str, tuple[ModelId, ...]]] = {}
    profiles = {*PROFILES, DEFAULT_ROW}
    for name, table in raw.items():
        try:
            category = Category(name)
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ConfigError(f"{source}: unknown category {name!r}; use one of: {known}") from None
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: categories.{name} must be a table of profile = [models]")
        row: dict[str, tuple[ModelId, ...]] = {}
        for profile, models in table.items():
            where = f"categories.{name}.{profile}"
            if profile not in profiles:
                known = ", ".join(sorted(profiles))
                raise ConfigError(f"{source}: {where}: unknown profile; use one of: {known}")
            if not isinstance(models, list) or not all(
                isinstance(m, str) and m.strip() for m in models
            ):
                raise ConfigError(f"{source}: {where} must be a list of model ids")
            row[profile] = tuple(ModelId(m.strip()) for m in models)
        rows[category] = MappingProxyType(row)
    return MappingProxyType(rows)


def _parse_limits(raw: object, source: str) -> RoutingLimits:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: [limits] must be a table")
    fields = RoutingLimits.__dataclass_fields__
    values: dict[str, int] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown limit {key!r}; use one of: {', '.join(fields)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{source}: limits.{key} must be a positive integer")
        values[key] = value
    return RoutingLimits(**values)
