"""Cost you can trust: per-task and per-document cost, estimates before sending, the daily budget."""

from __future__ import annotations

import json

import pytest
import structlog
from batchd.pricing import Pricing
from batchd.store import Store

from helpers import check_manifest

# A price high enough that a tiny budget is crossed by a single request.
DEAR = {"input": 1000.0, "output": 1000.0}


def test_costs_per_task_and_document_match_the_price_table(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize", "classify"]}})
    h.drop({"a.txt": "Invoice 77 from Acme Ltd for 1,200 EUR, due 1 December."})
    assert h.run_once() == 0
    manifest = h.results()["a.txt"]
    check_manifest(manifest)
    pricing = Pricing.load()
    total = 0.0
    for task in manifest["tasks"].values():
        expected = pricing.cost(task["model"], task["usage"], batch=True)
        assert task["cost_usd"] == pytest.approx(expected)
        assert task["cost_usd"] == pytest.approx(pricing.cost(task["model"], task["usage"], batch=False) / 2)
        total += task["cost_usd"]
    assert manifest["cost_usd"] == pytest.approx(total)


def test_unknown_model_costs_null_not_a_wrong_number(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize"], "summarize": {"model": "claude-unpriced-9"}}})
    h.drop({"a.txt": "Some text worth a summary."})
    assert h.run_once() == 0
    manifest = h.results()["a.txt"]
    assert manifest["tasks"]["summarize"]["status"] == "succeeded"
    assert manifest["tasks"]["summarize"]["cost_usd"] is None
    assert manifest["cost_usd"] is None
    check_manifest(manifest)


def test_estimate_is_logged_with_each_batch(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({f"d{i}.txt": f"Document {i}: " + "words " * 200 for i in range(3)})
    with structlog.testing.capture_logs() as logs:
        assert h.run_once() == 0
    submitted = [e for e in logs if e["event"] == "batch_submitting"]
    collected = [e for e in logs if e["event"] == "batch_collected"]
    assert submitted and all(e["estimated_usd"] > 0 for e in submitted)
    assert collected and all(e["cost_usd"] > 0 for e in collected)
    # The estimate is within an order of magnitude of what was billed.
    ratio = sum(e["estimated_usd"] for e in submitted) / sum(e["cost_usd"] for e in collected)
    assert 0.1 < ratio < 10, ratio


def test_budget_holds_the_queue_and_nothing_is_dropped(batchd_harness):
    config = {"tasks": {"enabled": ["summarize"]}, "pricing": {"claude-haiku-4-5": DEAR},
              "budget": {"max_usd_per_day": 0.001}}
    h = batchd_harness(config)
    h.drop({"a.txt": "First document.", "b.txt": "Second document."})
    assert h.run_once() == 3, "held by the budget: --once cannot finish"
    assert h.results() == {}
    store = Store(h.root / "state" / "batchd.db")
    try:
        assert "budget.max_usd_per_day" in store.get_meta("budget_hold")
        assert store.queued_summary()[0] == 2, "the requests still wait, none dropped"
    finally:
        store.close()
    # A larger budget lets them go, without dropping anything again.
    h.config_data["budget"]["max_usd_per_day"] = 1000.0
    assert h.run_once() == 0
    assert set(h.results()) == {"a.txt", "b.txt"}


def test_budget_lets_through_what_fits(batchd_harness, batchd_emulator):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}, "pricing": {"claude-haiku-4-5": DEAR}})
    h.drop({"probe.txt": "A short document."})
    assert h.run_once() == 0
    one = h.results()["probe.txt"]["cost_usd"]
    # Room for about two more such requests today (the probe's cost counts, too).
    h.config_data["budget"] = {"max_usd_per_day": one * 3.5}
    h.drop({f"d{i}.txt": "A short document, number %d." % i for i in range(5)})
    assert h.run_once() == 3
    done = set(h.results()) - {"probe.txt"}
    assert 1 <= len(done) <= 3, done
    billed = sum(1 for b in batchd_emulator.record.billed())
    assert billed == 1 + len(done)


def test_status_shows_cost_and_what_batching_saved(batchd_harness):
    from click.testing import CliRunner

    from batchd.cli import cli

    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"a.txt": "Status figures."})
    assert h.run_once() == 0
    result = CliRunner().invoke(cli, ["status", "--json", "-c", str(h.config_path)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    usage = figures["usage"]
    assert usage["cost_usd"] > 0 and usage["realtime_usd"] == pytest.approx(usage["cost_usd"] * 2)
