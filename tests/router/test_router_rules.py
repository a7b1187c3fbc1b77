"""route(): the rules, on small catalogs built here (independent of the shipped table)."""

from __future__ import annotations

import pytest

from aria.catalog.entries import Capability, ModelId, Tier
from aria.errors import ConfigError
from aria.router import (
    TEXT_CATEGORIES,
    Availability,
    Category,
    QueryClassifier,
    RouteRequest,
    RoutingTable,
    route,
)
from tests.router.support import DEFAULT, available, entry, table

ONE_BIT = entry("one-bit-2b", Tier.EFFICIENCY, one_bit=True)
SMALL = entry("small-chat", Tier.EFFICIENCY)
TOOLS = entry("tool-caller", Tier.EFFICIENCY, {Capability.CHAT, Capability.TOOL_USE})
QUALITY = entry("quality-4b", Tier.QUALITY)
CODER = entry("coder-7b", Tier.SPECIALIST, {Capability.CODE, Capability.CHAT})
VISION = entry("vision-2b", Tier.SPECIALIST, {Capability.CHAT, Capability.VISION})
BIG = entry("gpu-14b", Tier.ACCELERATED)
LONG = entry("long-window", Tier.EFFICIENCY, context=131072)

TOOL_BODY = {
    "messages": [{"role": "user", "content": "What's the weather in Lyon?"}],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
}


def same_row_for_text(classifier: QueryClassifier, models: list[str]) -> RoutingTable:
    """One row for every text category, so the classifier's verdict does not matter."""
    return table(classifier, {c.value: {"default": models} for c in TEXT_CATEGORIES})


def test_tool_use_never_goes_to_a_1bit_model_when_another_is_installed(
    classifier: QueryClassifier,
) -> None:
    rows = {"tool_use": {"default": [ONE_BIT.id, TOOLS.id]}}
    decision = route(
        RouteRequest.from_openai(TOOL_BODY),
        table(classifier, rows),
        available([ONE_BIT, TOOLS], installed=[ONE_BIT.id, TOOLS.id]),
    )
    assert decision.category is Category.TOOL_USE
    assert decision.model_id == TOOLS.id
    assert ONE_BIT.id not in decision.chain
    assert "1-bit" in decision.reason


def test_json_response_format_counts_as_tool_use(classifier: QueryClassifier) -> None:
    body = {
        "messages": [{"role": "user", "content": "List three fruits."}],
        "response_format": {"type": "json_object"},
    }
    rows = {"tool_use": {"default": [ONE_BIT.id, SMALL.id]}}
    decision = route(
        RouteRequest.from_openai(body),
        table(classifier, rows),
        available([ONE_BIT, SMALL], installed=[ONE_BIT.id, SMALL.id]),
    )
    assert (decision.category, decision.model_id) == (Category.TOOL_USE, SMALL.id)


def test_the_installed_non_1bit_default_is_enough_to_keep_tools_off_1bit(
    classifier: QueryClassifier,
) -> None:
    rows = {"tool_use": {"default": [ONE_BIT.id]}}
    decision = route(
        RouteRequest.from_openai(TOOL_BODY),
        table(classifier, rows),
        available([ONE_BIT], installed=[ONE_BIT.id, DEFAULT.id]),
    )
    assert decision.chain == (DEFAULT.id,)


def test_a_1bit_model_serves_tools_only_when_nothing_else_can(
    classifier: QueryClassifier,
) -> None:
    rows = {"tool_use": {"default": [ONE_BIT.id, TOOLS.id]}}
    decision = route(
        RouteRequest.from_openai(TOOL_BODY),
        table(classifier, rows),
        available([ONE_BIT, TOOLS], installed=[ONE_BIT.id]),
    )
    assert decision.model_id == ONE_BIT.id
    assert "unreliable" in decision.reason


def test_1bit_models_still_serve_plain_chat(classifier: QueryClassifier) -> None:
    decision = route(
        RouteRequest.from_text("hello! how are you today?"),
        same_row_for_text(classifier, [ONE_BIT.id, SMALL.id]),
        available([ONE_BIT, SMALL], installed=[ONE_BIT.id, SMALL.id]),
    )
    assert decision.model_id == ONE_BIT.id


def test_vision_needs_a_vision_capable_model(classifier: QueryClassifier) -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this photo?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    }
    rows = {"vision": {"default": [QUALITY.id, VISION.id]}}
    decision = route(
        RouteRequest.from_openai(body),
        table(classifier, rows),
        available([QUALITY, VISION], installed=[QUALITY.id, VISION.id]),
    )
    assert decision.category is Category.VISION
    assert decision.model_id == VISION.id
    assert QUALITY.id not in decision.chain


def test_vision_without_a_vision_model_falls_to_the_default_and_says_why(
    classifier: QueryClassifier,
) -> None:
    request = RouteRequest(text="describe it", prompt_tokens=10, has_image=True)
    rows = {"vision": {"default": [VISION.id]}}
    decision = route(request, table(classifier, rows), available([VISION], [], profile="balanced"))
    assert decision.chain == (DEFAULT.id,)
    assert "vision required" in decision.reason
    assert "last resort" in decision.reason
    assert decision.notice is not None


def test_long_prompts_are_long_context_and_need_a_big_enough_window(
    classifier: QueryClassifier,
) -> None:
    request = RouteRequest(text="summarize this report", prompt_tokens=20_000)
    rows = {"long_context": {"default": [SMALL.id, LONG.id]}}
    decision = route(
        request,
        table(classifier, rows, {"long_context_tokens": 3000}),
        available([SMALL, LONG], installed=[SMALL.id, LONG.id]),
    )
    assert (decision.category, decision.confidence) == (Category.LONG_CONTEXT, 1.0)
    assert decision.model_id == LONG.id
    assert SMALL.id not in decision.chain


def test_the_backend_context_cap_limits_the_usable_window(classifier: QueryClassifier) -> None:
    request = RouteRequest(text="summarize this report", prompt_tokens=20_000)
    rows = {"long_context": {"default": [LONG.id]}}
    decision = route(
        request,
        table(classifier, rows),
        available([LONG], installed=[LONG.id], cap=8192),
    )
    assert decision.chain == (DEFAULT.id,)
    assert "about 20512 tokens needed" in decision.reason


def test_max_tokens_counts_toward_the_window(classifier: QueryClassifier) -> None:
    text_rows = same_row_for_text(classifier, [SMALL.id, LONG.id])
    models = available([SMALL, LONG], installed=[SMALL.id, LONG.id])
    short = RouteRequest.from_text("Write a long story about a dragon.")
    assert route(short, text_rows, models).model_id == SMALL.id
    wanting = RouteRequest.from_text("Write a long story about a dragon.", max_tokens=9000)
    assert route(wanting, text_rows, models).model_id == LONG.id


@pytest.mark.parametrize(
    ("profile", "gpu", "expected"),
    [
        ("efficient", False, ONE_BIT.id),  # the 1-bit profile: native 1-bit models only
        ("minimal", True, SMALL.id),  # minimal never turns the GPU tier on
        ("efficient", True, ONE_BIT.id),  # ... and no Accelerated model is 1-bit
        ("balanced", False, QUALITY.id),
        ("full", False, CODER.id),
        ("specialist_only", False, CODER.id),
    ],
)
def test_the_profile_restricts_the_tiers(
    classifier: QueryClassifier, profile: str, gpu: bool, expected: str
) -> None:
    models = [BIG, CODER, QUALITY, SMALL, ONE_BIT]
    decision = route(
        RouteRequest.from_text("How do I reverse a list in Python?"),
        same_row_for_text(classifier, [m.id for m in models]),
        available(models, [m.id for m in models], profile=profile, gpu=gpu),
    )
    assert decision.model_id == expected
    assert decision.tier in decision_tiers(profile, gpu)


def decision_tiers(profile: str, gpu: bool) -> tuple[Tier, ...]:
    from aria.profiles import enabled_tiers

    return enabled_tiers(profile, gpu_available=gpu)


def test_the_chain_lists_installed_models_in_row_order_then_the_default(
    classifier: QueryClassifier,
) -> None:
    models = [QUALITY, SMALL, LONG, TOOLS]
    decision = route(
        RouteRequest.from_text("Tell me a joke about penguins."),
        same_row_for_text(classifier, [m.id for m in models]),
        available(models, installed=[TOOLS.id, SMALL.id, DEFAULT.id], profile="balanced"),
    )
    # Not installed (quality-4b, long-window): left out while installed ones fit.
    assert decision.chain == (SMALL.id, TOOLS.id, DEFAULT.id)
    assert decision.fallbacks == (TOOLS.id, DEFAULT.id)
    assert decision.notice is None
    assert decision.reason.startswith(f"{SMALL.id} is the first installed model")


def test_with_nothing_installed_the_chain_lists_catalog_candidates_then_the_default(
    classifier: QueryClassifier,
) -> None:
    decision = route(
        RouteRequest.from_text("Tell me a joke about penguins."),
        same_row_for_text(classifier, [QUALITY.id, SMALL.id]),
        available([QUALITY, SMALL], installed=[], profile="balanced"),
    )
    assert decision.chain == (QUALITY.id, SMALL.id, DEFAULT.id)
    assert "not installed" in decision.reason
    assert f"embedded default {DEFAULT.id} as the last resort" in decision.reason
    assert decision.notice is not None and QUALITY.id in decision.notice


def test_peer_models_come_after_local_ones(classifier: QueryClassifier) -> None:
    decision = route(
        RouteRequest.from_text("Tell me a joke about penguins."),
        same_row_for_text(classifier, [QUALITY.id, SMALL.id]),
        available([QUALITY, SMALL], installed=[SMALL.id], peers=[QUALITY.id]),
    )
    assert decision.chain == (SMALL.id, QUALITY.id, DEFAULT.id)


def test_embedding_completion_and_unknown_models_are_never_chat_candidates(
    classifier: QueryClassifier,
) -> None:
    embedder = entry("embedder", caps={Capability.EMBEDDING, Capability.MULTILINGUAL})
    base = entry("base-model", caps={Capability.COMPLETION})
    rows = [embedder.id, base.id, "not-in-catalog", SMALL.id]
    decision = route(
        RouteRequest.from_text("hi there"),
        same_row_for_text(classifier, rows),
        available([embedder, base, SMALL], installed=[embedder.id, base.id, SMALL.id]),
    )
    assert decision.chain == (SMALL.id, DEFAULT.id)


def test_an_empty_row_goes_straight_to_the_default(classifier: QueryClassifier) -> None:
    decision = route(
        RouteRequest.from_text("hi there"),
        table(classifier, {}),
        available([SMALL], installed=[]),
    )
    assert decision.chain == (DEFAULT.id,)
    assert "empty" in decision.reason


def test_installed_models_outside_the_row_come_before_any_download(
    classifier: QueryClassifier,
) -> None:
    imported = entry("my-import", Tier.QUALITY)
    models = [SMALL, QUALITY, imported, ONE_BIT]
    rows = same_row_for_text(classifier, [QUALITY.id])
    installed = [imported.id, ONE_BIT.id, SMALL.id]
    decision = route(
        RouteRequest.from_text("hi there"), rows, available(models, installed, profile="balanced")
    )
    # Not in the row: efficiency tier first (the profile's preference), then by id.
    assert decision.chain == (ONE_BIT.id, SMALL.id, imported.id, DEFAULT.id)
    assert decision.reason.endswith(f"{ONE_BIT.id} is installed and fits")
    assert decision.notice is None
    listed = route(
        RouteRequest.from_text("hi there"),
        rows,
        available(models, [*installed, QUALITY.id], profile="balanced"),
    )
    assert listed.chain[0] == QUALITY.id


def test_structural_rules_take_precedence_image_then_tools_then_length(
    classifier: QueryClassifier,
) -> None:
    rows = table(classifier, {}, {"long_context_tokens": 100})
    models = available([SMALL], [SMALL.id])

    def category(**facts: object) -> Category:
        request = RouteRequest(text="code me a parser", prompt_tokens=500, **facts)  # type: ignore[arg-type]
        return route(request, rows, models).category

    assert category(has_image=True, has_tools=True) is Category.VISION
    assert category(has_tools=True) is Category.TOOL_USE
    assert category(json_mode=True) is Category.TOOL_USE
    assert category() is Category.LONG_CONTEXT


def test_route_is_deterministic_and_labels_its_decision(classifier: QueryClassifier) -> None:
    request = RouteRequest.from_text("Solve for x: 3x + 7 = 22")
    rows = same_row_for_text(classifier, [SMALL.id])
    models = available([SMALL], [SMALL.id])
    first, second = route(request, rows, models), route(request, rows, models)
    assert first == second
    assert first.category is Category.MATH
    assert first.labels() == {"category": "math", "model": SMALL.id, "tier": "efficiency"}
    assert sum(first.scores.values()) == pytest.approx(1.0)


def test_availability_needs_the_default_model_in_its_entries() -> None:
    with pytest.raises(ConfigError, match="default model"):
        Availability(
            profile="full",
            tiers=(Tier.EFFICIENCY,),
            entries={SMALL.id: SMALL},
            installed=frozenset(),
            default_model=ModelId("missing"),
        )


def test_bitnet_only_files_are_routed_only_when_bitnet_cpp_is_configured(
    classifier: QueryClassifier,
) -> None:
    i2s = ONE_BIT.model_copy(update={"id": ModelId("bitnet-i2s"), "quantization": "I2_S"})
    rows = same_row_for_text(classifier, [i2s.id, SMALL.id])
    request = RouteRequest.from_text("Hello there, how are you?")
    without = route(request, rows, available([i2s, SMALL], installed=[], profile="minimal"))
    assert i2s.id not in without.chain
    assert without.notice is not None and i2s.id not in without.notice
    assert f"download {SMALL.id}" in without.notice
    with_server = available([i2s, SMALL], installed=[], profile="minimal", bitnet_cpp=True)
    assert route(request, rows, with_server).chain[0] == i2s.id


def test_the_efficient_profile_falls_back_to_the_default_and_says_so(
    classifier: QueryClassifier,
) -> None:
    models = [SMALL, QUALITY]  # installed, but neither is a native 1-bit model
    decision = route(
        RouteRequest.from_text("Tell me about the sea."),
        same_row_for_text(classifier, [m.id for m in models]),
        available(models, [m.id for m in models], profile="efficient"),
    )
    assert decision.chain == (DEFAULT.id,)
    assert "native 1-bit models only" in decision.reason
    assert decision.notice is not None and DEFAULT.id in decision.notice
