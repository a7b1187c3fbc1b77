"""The public surface of aria.catalog is deliberate: every exported name exists."""

from __future__ import annotations

import aria.catalog


def test_every_name_in_all_is_importable() -> None:
    for name in aria.catalog.__all__:
        assert hasattr(aria.catalog, name), name


def test_the_names_other_packages_rely_on_are_exported() -> None:
    relied_on = {
        "load_catalog",
        "Catalog",
        "CatalogEntry",
        "Tier",
        "Capability",
        "evaluate",
        "Use",
        "LicenceClass",
        "classify",
        "require",
        "load_denylist",
    }
    assert relied_on <= set(aria.catalog.__all__)
