"""The router's I/O edge: reads the shipped data files and the operator's override.

Everything else in ``aria.router`` is pure; callers load once (at node start, or per CLI
call) and pass the values on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from aria.config import AriaPaths
from aria.errors import ConfigError
from aria.router.classifier import QueryClassifier
from aria.router.dataset import LabeledQuery, parse_dataset
from aria.router.table import RoutingTable, merge_tables

__all__ = [
    "OVERRIDE_NAME",
    "load_classifier",
    "load_dataset",
    "load_routing_table",
    "packaged",
    "read_packaged",
]

OVERRIDE_NAME = "routing.toml"


def packaged(name: str) -> Traversable:
    """A data file shipped in ``aria/router/data`` (works from a wheel too)."""
    return files("aria.router").joinpath("data", name)


def read_packaged(name: str) -> bytes:
    """The bytes of a shipped data file.

    Raises:
        ConfigError: the file is missing (a broken installation).
    """
    try:
        return packaged(name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"the router's data file {name} is missing: reinstall ARIA") from exc


def load_classifier() -> QueryClassifier:
    """The shipped classifier weights.

    Raises:
        ConfigError: missing or unreadable weights.
    """
    return QueryClassifier.from_npz(read_packaged("classifier.npz"))


def load_dataset() -> tuple[LabeledQuery, ...]:
    """The shipped labeled queries (training, evaluation and tests read them)."""
    return parse_dataset(read_packaged("queries.jsonl").decode("utf-8").splitlines())


def load_routing_table(
    paths: AriaPaths | None = None,
    *,
    known_models: Collection[str] | None = None,
    classifier: QueryClassifier | None = None,
) -> RoutingTable:
    """The shipped table, merged with ``ARIA_HOME/routing.toml`` when ``paths`` has one.

    ``known_models`` (catalog and installed ids) turns a misspelt model id into an
    error instead of a row entry that can never match.

    Raises:
        ConfigError: an unreadable or invalid file, or an unknown model id.
    """
    shipped = _parse(read_packaged("routing.toml"), "the shipped routing.toml")
    data: dict[str, Any] = shipped
    source = "routing.toml"
    override = paths.home / OVERRIDE_NAME if paths is not None else None
    if override is not None and override.is_file():
        source = str(override)
        data = merge_tables(shipped, _parse(_read(override), source))
    table = RoutingTable.from_mapping(
        data, classifier if classifier is not None else load_classifier(), source=source
    )
    if known_models is not None:
        problems = table.unknown_models(known_models)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ConfigError(f"{source}: unknown model {problems[0]}{more}")
    return table


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from exc


def _parse(raw: bytes, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
