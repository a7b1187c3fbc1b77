"""The dashboard's shipped files, read as text: everything local, no HTML from strings, no
timers, and the package boundary (the site never imports the API)."""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

import aria.dashboard
from aria.dashboard import CONTENT_SECURITY_POLICY, Site

STATIC = Path(str(resources.files("aria.dashboard").joinpath("static")))
FILES = sorted(p for p in STATIC.rglob("*") if p.is_file())


def test_the_public_surface_is_exactly_this() -> None:
    assert sorted(aria.dashboard.__all__) == ["CONTENT_SECURITY_POLICY", "Site"]


def test_the_site_ships_its_files_and_answers_for_each() -> None:
    names = {p.relative_to(STATIC).as_posix() for p in FILES}
    assert {"index.html", "app.css", "main.js", "markdown.js", "icon.svg"} <= names
    assert Site().paths == {"/", *(f"/ui/{name}" for name in names)}


def test_nothing_is_loaded_from_another_host() -> None:
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        # the only absolute URLs allowed are XML namespaces (SVG), never fetched
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
        assert "@import" not in text and "url(" not in text, path.name


def test_no_script_builds_html_from_strings_or_runs_on_a_timer() -> None:
    forbidden = re.compile(
        r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setInterval|createContextualFragment|DOMParser"
    )
    for path in FILES:
        if path.suffix == ".js":
            found = forbidden.findall(path.read_text(encoding="utf-8"))
            assert found == [], (path.name, found)


def test_the_page_has_no_inline_script_or_style_the_policy_would_refuse() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert " style=" not in page and "<style" not in page and " on" + "click=" not in page
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


def test_the_dashboard_package_never_imports_the_api() -> None:
    package = Path(aria.dashboard.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        ] + [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ]
        assert not [name for name in imported if name.startswith("aria.api")], module.name
