import json
import re
import uuid
from importlib import resources

import pytest
from structlog.testing import capture_logs

from batchd.pricing import PRICE_KEYS, Pricing


@pytest.fixture(scope="module")
def pricing():
    return Pricing.load()


@pytest.fixture(scope="module")
def table():
    return json.loads(resources.files("batchd").joinpath("pricing.json").read_text("utf-8"))


def unknown_model():
    return f"claude-nonesuch-{uuid.uuid4().hex[:8]}"


def test_haiku_4_5_cost_by_hand(pricing):
    usage = {"input_tokens": 1000, "output_tokens": 500,
             "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 4000}
    # $1 in, $5 out, $1.25 5m write, $0.10 read per MTok:
    # 1000*1 + 500*5 + 2000*1.25 + 4000*0.10 = 6400 -> $0.0064; batch half.
    assert pricing.realtime_cost("claude-haiku-4-5", usage) == 0.0064
    assert pricing.cost("claude-haiku-4-5", usage) == 0.0032


def test_captured_batch_result_is_exact_not_rounded(pricing):
    # usage from a real batch result line (shared/ANTHROPIC_API.md section 3):
    # (14*1 + 5*5) / 1e6 / 2 = 0.0000195, which rounding to 6 places would make 0.00002.
    usage = {"input_tokens": 14, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
             "output_tokens": 5, "service_tier": "batch", "inference_geo": "not_available"}
    assert pricing.cost("claude-haiku-4-5-20251001", usage) == 0.0000195


def test_opus_4_1_output_and_reads(pricing):
    usage = {"input_tokens": 0, "output_tokens": 2000, "cache_read_input_tokens": 10_000}
    # 2000*75 + 10000*1.50 = 165000 -> $0.165 real time
    assert pricing.realtime_cost("claude-opus-4-1-20250805", usage) == 0.165


@pytest.mark.parametrize(("model", "alias"), [
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-sonnet-4-0", "claude-sonnet-4"),
    ("claude-opus-4-20250514", "claude-opus-4"),
    ("claude-opus-4-0", "claude-opus-4"),
    ("claude-opus-4-1-20250805", "claude-opus-4-1"),
    ("claude-opus-4-5-20251101", "claude-opus-4-5"),
    ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
    ("claude-3-haiku-20240307", "claude-3-haiku"),
    # an unlisted snapshot date falls back to its alias
    ("claude-opus-4-6-20270101", "claude-opus-4-6"),
])
def test_dated_ids_and_aliases_resolve(pricing, model, alias):
    assert pricing.rates(model) is not None
    assert pricing.rates(model) == pricing.rates(alias)


def test_resolution_distinguishes_models(pricing):
    assert pricing.rates("claude-opus-4-1").input == 15
    assert pricing.rates("claude-opus-4-5").input == 5
    assert pricing.rates("claude-3-haiku").input == 0.25
    assert pricing.rates("claude-haiku-4-5").input == 1
    assert pricing.rates("gpt-4o") is None
    assert pricing.rates("claude-haiku") is None


def test_override_wins_and_derives_cache_prices():
    pricing = Pricing.load({"claude-haiku-4-5": {"input": 2, "output": 10}})
    rates = pricing.rates("claude-haiku-4-5")
    assert (rates.input, rates.output) == (2, 10)
    assert (rates.cache_write_5m, rates.cache_write_1h, rates.cache_read) == (2.5, 4.0, 0.2)
    # the API answers with the dated id: the alias's override still applies
    assert pricing.rates("claude-haiku-4-5-20251001") == rates
    assert pricing.realtime_cost("claude-haiku-4-5-20251001", {"input_tokens": 1_000_000}) == 2.0
    # other models keep the table's prices
    assert Pricing.load().rates("claude-haiku-4-5").input == 1


def test_override_keeps_given_cache_prices_and_adds_new_models():
    pricing = Pricing.load({
        "claude-sonnet-4-5-20250929": {"input": 3, "output": 15, "cache_read": 0.2},
        "my-proxy-model": {"input": 0.5, "output": 1.5},
    })
    rates = pricing.rates("claude-sonnet-4-5")
    assert rates.cache_read == 0.2 and rates.cache_write_5m == 3.75 and rates.cache_write_1h == 6
    assert pricing.cost("my-proxy-model", {"input_tokens": 1_000_000, "output_tokens": 1_000_000}) == 1.0


def test_override_without_output_is_refused():
    with pytest.raises(ValueError, match="output"):
        Pricing.load({"x": {"input": 1}})


def test_unknown_model_is_none_and_warned_once(pricing):
    model = unknown_model()
    with capture_logs() as logs:
        assert pricing.cost(model, {"input_tokens": 10, "output_tokens": 10}) is None
        assert pricing.realtime_cost(model, {"input_tokens": 10}) is None
        assert pricing.cost(model, {}) is None
    assert logs == [{"event": "price_unknown", "model": model, "log_level": "warning"}]


def test_each_unknown_model_is_warned_separately(pricing):
    a, b = unknown_model(), unknown_model()
    with capture_logs() as logs:
        pricing.cost(a, {}), pricing.cost(b, {}), pricing.cost(a, {})
    assert [entry["model"] for entry in logs] == [a, b]


def test_batch_is_half_of_realtime_for_every_model(pricing, table):
    usage = {"input_tokens": 1234, "output_tokens": 567, "cache_creation_input_tokens": 890,
             "cache_read_input_tokens": 4321,
             "cache_creation": {"ephemeral_5m_input_tokens": 490, "ephemeral_1h_input_tokens": 400}}
    for model in table["models"]:
        realtime = pricing.realtime_cost(model, usage)
        assert realtime > 0
        assert pricing.cost(model, usage) == pytest.approx(realtime / 2, rel=1e-12)
        assert pricing.cost(model, usage, batch=False) == realtime


def test_cache_creation_split_5m_and_1h(pricing):
    usage = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 3000,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}}
    # Sonnet 4.5: 1000 at $3.75 (5m) + 2000 at $6 (1h) = 15750 -> $0.01575
    assert pricing.realtime_cost("claude-sonnet-4-5", usage) == 0.01575
    assert pricing.cost("claude-sonnet-4-5", usage) == 0.007875
    # without the breakdown every write is a 5m write
    del usage["cache_creation"]
    assert pricing.realtime_cost("claude-sonnet-4-5", usage) == 3000 * 3.75 / 1e6


def test_cache_creation_only_breakdown_and_none_counts(pricing):
    # 1h part at the 1h price, the rest at 5m; None or missing counts are 0
    usage = {"input_tokens": None, "output_tokens": 100, "cache_creation_input_tokens": None,
             "cache_read_input_tokens": None,
             "cache_creation": {"ephemeral_5m_input_tokens": None, "ephemeral_1h_input_tokens": 1000}}
    # Haiku 4.5: 100*5 + 1000*2 = 2500 -> $0.0025
    assert pricing.realtime_cost("claude-haiku-4-5", usage) == 0.0025
    assert pricing.cost("claude-haiku-4-5", {}) == 0.0


def test_sdk_usage_object_is_accepted(pricing):
    from anthropic.types import Usage
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert pricing.realtime_cost("claude-haiku-4-5", usage) == 0.006


def test_long_context_rates(pricing):
    # Sonnet 4.5 above 200K prompt tokens: $6 in / $22.50 out for the whole request
    at_limit = {"input_tokens": 200_000, "output_tokens": 1000}
    above = {"input_tokens": 150_000, "cache_read_input_tokens": 50_001, "output_tokens": 1000}
    assert pricing.realtime_cost("claude-sonnet-4-5", at_limit) == 0.6 + 0.015
    assert pricing.realtime_cost("claude-sonnet-4-5", above) == pytest.approx(0.9 + 50_001 * 0.6 / 1e6 + 0.0225)
    # Haiku 5.5 over 100K prompt tokens: $0.50 / $2.50
    assert pricing.realtime_cost("claude-haiku-5-5", {"input_tokens": 100_000, "output_tokens": 1000}) == 0.0105
    assert pricing.realtime_cost("claude-haiku-5-5", {"input_tokens": 100_001}) == 100_001 * 0.5 / 1e6
    # models without a tier are flat at any length
    assert pricing.realtime_cost("claude-sonnet-4-6", {"input_tokens": 900_000}) == 2.7


def test_table_is_complete_and_sourced(table):
    assert table["batch_discount"] == 0.5
    assert table["batch_discount_source"]["url"].startswith("https://")
    assert {k: table["cache_multipliers"][k] for k in PRICE_KEYS[2:]} == {
        "cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}
    required = {"claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4", "claude-opus-4-1",
                "claude-opus-4", "claude-3-5-haiku", "claude-3-7-sonnet", "claude-3-haiku",
                "claude-opus-4-5", "claude-sonnet-4-6", "claude-opus-4-6"}
    assert required <= set(table["models"])
    seen = {}
    for key, entry in table["models"].items():
        for price in PRICE_KEYS:
            assert isinstance(entry[price], (int, float)) and entry[price] > 0, (key, price)
        assert entry["source"].startswith("https://platform.claude.com/docs/"), key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["checked"]), key
        for name in (key, *entry["ids"], *entry["aliases"]):
            assert name not in seen, f"{name} is listed for both {seen[name]} and {key}"
            seen[name] = key
        for dated in entry["ids"]:
            assert re.fullmatch(re.escape(key) + r"-\d{8}", dated), dated
