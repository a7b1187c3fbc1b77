"""The house is a true stack: lower floors never import higher ones, and no circles.

The floors are the table in ``docs/architecture.md`` (read here, so the document and the
code cannot drift apart). Every import counts — at module level, inside a function, or
under ``TYPE_CHECKING`` — because each one is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aria"
DOC = ROOT / "docs" / "architecture.md"


def floors() -> dict[str, int]:
    """Room -> floor, from the ``floor rooms`` block of docs/architecture.md."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```floors\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```floors block"
    rooms: dict[str, int] = {}
    for line in block.group(1).splitlines():
        number, _, names = line.strip().partition(" ")
        for name in names.split():
            rooms[name] = int(number)
    return rooms


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def room(module: str) -> str:
    """``aria.p2p.transport.pump`` -> ``p2p/``; ``aria.node`` -> ``node.py``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    return f"{parts[1]}/" if (PACKAGE / parts[1]).is_dir() else f"{parts[1]}.py"


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every ARIA module ``module`` imports, wherever the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for name in names:
            target = resolve(name) if name.startswith("aria") else None
            if target is not None and target != module:
                yield target


GRAPH = {module: set(imports(module, path, modules())) for module, path in modules().items()}


def test_every_room_has_a_floor() -> None:
    placed = floors()
    missing = sorted({room(module) for module in GRAPH} - set(placed))
    assert missing == [], f"rooms without a floor in docs/architecture.md: {missing}"


def test_lower_floors_never_import_higher_ones() -> None:
    placed = floors()
    upward = sorted(
        f"{importer} (floor {placed[room(importer)]}) -> {imported} "
        f"(floor {placed[room(imported)]})"
        for importer, targets in GRAPH.items()
        for imported in targets
        if placed[room(importer)] < placed[room(imported)]
    )
    assert upward == [], "imports that run back up:\n" + "\n".join(upward)


def test_no_module_takes_part_in_a_circle() -> None:
    # Tarjan's strongly connected components: any of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert circles == [], f"import circles: {circles}"


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [("aria.p2p.tunnel", "aria.split", False), ("aria.split.auto", "aria.p2p", True)],
)
def test_the_floors_say_what_the_review_asked(importer: str, imported: str, allowed: bool) -> None:
    """p2p is infrastructure that split inference uses, never the other way round."""
    placed = floors()
    assert (placed[room(importer)] >= placed[room(imported)]) is allowed
