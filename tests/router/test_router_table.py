"""The routing table as data: validation, the operator's override, and the shipped file."""

from __future__ import annotations

from pathlib import Path

import pytest

from aria.catalog import Capability, load_catalog
from aria.config import AriaPaths
from aria.errors import ConfigError
from aria.profiles import PROFILES, enabled_tiers
from aria.router import (
    Category,
    QueryClassifier,
    RouteRequest,
    RoutingLimits,
    RoutingTable,
    load_routing_table,
    route,
)
from aria.router.table import merge_tables
from tests.router.support import available


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": {}}, "unknown section 'rules'"),
        ({"categories": {"poetry": {"default": []}}}, "unknown category 'poetry'"),
        ({"categories": {"code": {"turbo": ["x"]}}}, "categories.code.turbo: unknown profile"),
        ({"categories": {"code": {"default": "x"}}}, "must be a list of model ids"),
        ({"categories": {"code": {"default": [1]}}}, "must be a list of model ids"),
        ({"categories": {"code": ["x"]}}, "categories.code must be a table"),
        ({"categories": []}, "[categories] must be a table"),
        ({"limits": {"long_context_tokens": 0}}, "positive integer"),
        ({"limits": {"long_context_tokens": True}}, "positive integer"),
        ({"limits": {"window": 5}}, "unknown limit 'window'"),
    ],
)
def test_invalid_tables_are_config_errors(
    classifier: QueryClassifier, data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RoutingTable.from_mapping(data, classifier, source="my.toml")
    assert message in caught.value.message
    assert caught.value.message.startswith("my.toml: ")


def test_a_profile_row_wins_over_the_default_row(classifier: QueryClassifier) -> None:
    rows = {"code": {"default": ["a", "b"], "minimal": ["c"]}}
    table = RoutingTable.from_mapping({"categories": rows}, classifier)
    assert table.models_for(Category.CODE, "minimal") == ("c",)
    assert table.models_for(Category.CODE, "full") == ("a", "b")
    assert table.models_for(Category.MATH, "full") == ()
    assert table.limits == RoutingLimits()


def test_an_override_replaces_whole_categories_and_single_limits() -> None:
    shipped = {
        "limits": {"long_context_tokens": 3072, "answer_reserve_tokens": 512},
        "categories": {"code": {"default": ["a"], "full": ["b"]}, "math": {"default": ["m"]}},
    }
    override = {
        "limits": {"answer_reserve_tokens": 256},
        "categories": {"code": {"default": ["z"]}},
    }
    merged = merge_tables(shipped, override)
    assert merged["categories"] == {"code": {"default": ["z"]}, "math": {"default": ["m"]}}
    assert merged["limits"] == {"long_context_tokens": 3072, "answer_reserve_tokens": 256}


def test_the_operator_file_in_aria_home_changes_the_decision(
    aria_paths: AriaPaths, classifier: QueryClassifier
) -> None:
    catalog = load_catalog()
    models = available(catalog.entries, ["Qwen3-0.6B", "SmolLM2-360M-Instruct"], profile="minimal")
    request = RouteRequest.from_text("How do I reverse a list in Python?")
    shipped = load_routing_table(aria_paths, classifier=classifier)
    assert route(request, shipped, models).model_id == "Qwen3-0.6B"
    (aria_paths.home / "routing.toml").write_text(
        '[categories.code]\ndefault = ["SmolLM2-360M-Instruct", "Qwen3-0.6B"]\n'
    )
    operator = load_routing_table(aria_paths, classifier=classifier)
    decision = route(request, operator, models)
    assert decision.category is Category.CODE
    assert decision.chain[:2] == ("SmolLM2-360M-Instruct", "Qwen3-0.6B")
    # Other categories keep the shipped rows.
    assert operator.rows[Category.MATH] == shipped.rows[Category.MATH]


def test_a_broken_operator_file_names_itself(aria_paths: AriaPaths) -> None:
    path = aria_paths.home / "routing.toml"
    path.write_text("[categories.code\n")
    with pytest.raises(ConfigError, match="routing.toml is not valid TOML"):
        load_routing_table(aria_paths)
    path.write_text('[categories.code]\nbalanced = ["Qwen3-4b"]\n')
    with pytest.raises(ConfigError) as caught:
        load_routing_table(aria_paths, known_models=[e.id for e in load_catalog()])
    assert str(path) in caught.value.message
    assert "did you mean 'Qwen3-4B'?" in caught.value.message


def test_without_aria_home_only_the_shipped_table_is_used(tmp_path: Path) -> None:
    (tmp_path / "routing.toml").write_text("not toml at all [")
    assert load_routing_table(None).rows == load_routing_table(AriaPaths(tmp_path / "x")).rows


def test_the_shipped_table_names_only_catalog_models_and_covers_every_category() -> None:
    catalog = load_catalog()
    table = load_routing_table(known_models=[e.id for e in catalog])
    assert set(table.rows) == set(Category)
    for category, row in table.rows.items():
        assert row["default"], category
        for models in row.values():
            assert len(set(models)) == len(models), (category, models)


def test_shipped_rows_respect_the_known_limits() -> None:
    catalog = load_catalog()
    table = load_routing_table()
    for models in table.rows[Category.TOOL_USE].values():
        assert not any(catalog.get(m).native_1bit for m in models)
    for models in table.rows[Category.VISION].values():
        assert all(Capability.VISION in catalog.get(m).capabilities for m in models)
    for models in table.rows[Category.LONG_CONTEXT].values():
        assert all(catalog.get(m).context_length >= 32768 for m in models)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("category", [c for c in Category if c is not Category.VISION])
def test_every_profile_has_a_shipped_candidate_for_every_category(
    profile: str, category: Category
) -> None:
    catalog = load_catalog()
    tiers = enabled_tiers(profile, gpu_available=False)
    row = load_routing_table().models_for(category, profile)
    assert any(catalog.get(m).tier in tiers for m in row), (profile, category)
