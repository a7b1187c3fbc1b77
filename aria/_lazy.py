"""Lazy re-exports (PEP 562) for packages whose modules are heavy or need extra packages.

A package lists where each public name lives; the module defining it is imported on
first use. ``aria.hardware`` needs this because the installer imports it before
pydantic exists; ``aria.split`` so worker and probe processes stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, homes: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps name -> submodule."""
    names = sorted(public)

    def __getattr__(name: str) -> object:  # noqa: N807 (the PEP 562 hook's own name)
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    def __dir__() -> list[str]:  # noqa: N807
        return names

    return __getattr__, __dir__
