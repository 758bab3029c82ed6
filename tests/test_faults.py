"""Faults the API throws at batchd: what is retried, what is final, what holds the queue."""

from __future__ import annotations

import structlog
from batchd.store import Store

from helpers import check_manifest


def _requests(h) -> list[dict]:
    store = Store(h.root / "state" / "batchd.db")
    try:
        return store.q("SELECT task, attempt, state, outcome, error FROM requests ORDER BY id")
    finally:
        store.close()


def test_unknown_model_holds_the_queue_and_spends_no_attempt(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize"], "summarize": {"model": "gpt-unknown"}}})
    h.drop({"a.txt": "A document for a model that does not exist."})
    with structlog.testing.capture_logs() as logs:
        assert h.run_once() == 3
    assert h.results() == {}, "no document is failed for the configuration's mistake"
    held = [e for e in logs if e["event"] == "queue_held"]
    assert held and "not_found_error" in held[0]["reason"]
    reqs = _requests(h)
    assert [(r["attempt"], r["state"]) for r in reqs] == [(1, "queued")]
    # Fixed configuration: the same request goes out and succeeds.
    h.config_data["tasks"]["summarize"]["model"] = "claude-haiku-4-5"
    assert h.run_once() == 0
    manifest = h.results()["a.txt"]
    check_manifest(manifest)
    assert manifest["tasks"]["summarize"]["status"] == "succeeded"


def test_transient_errors_and_expiry_are_retried_with_new_custom_ids(batchd_harness, batchd_emulator):
    batchd_emulator.faults.error_rate = 0.3
    batchd_emulator.faults.expire_rate = 0.2
    h = batchd_harness({"tasks": {"enabled": ["summarize", "classify"]}, "batch": {"max_attempts": 8}})
    h.drop({f"d{i}.txt": f"Document {i} about invoices and contracts." for i in range(10)})
    assert h.run_once() == 0
    results = h.results()
    assert len(results) == 10
    for manifest in results.values():
        check_manifest(manifest)
        assert manifest["status"] == "done"
        assert all(t["status"] == "succeeded" for t in manifest["tasks"].values())
    reqs = _requests(h)
    retried = [r for r in reqs if r["state"] == "retried"]
    assert retried, "with 50% faults some requests must have needed another attempt"
    assert {r["outcome"] for r in retried} <= {"errored", "expired"}
    assert max(r["attempt"] for r in reqs) >= 2
    billed = [b["custom_id"] for b in batchd_emulator.record.billed()]
    assert len(billed) == len(set(billed)) == 20


def test_attempts_run_out_into_a_final_outcome(batchd_harness, batchd_emulator):
    batchd_emulator.faults.expire_rate = 1.0
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}, "batch": {"max_attempts": 2}})
    h.drop({"a.txt": "This one never gets processed in time."})
    assert h.run_once() == 0
    manifest = h.results()["a.txt"]
    check_manifest(manifest)
    task = manifest["tasks"]["summarize"]
    assert task["status"] == "expired" and task["error"]
    assert [r["attempt"] for r in _requests(h)] == [1, 2]


def test_invalid_request_is_final_and_reported(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize"], "summarize": {"max_tokens": 1_000_000}}})
    h.drop({"a.txt": "Asking for far too many output tokens."})
    assert h.run_once() == 0
    manifest = h.results()["a.txt"]
    check_manifest(manifest)
    task = manifest["tasks"]["summarize"]
    assert task["status"] == "errored"
    assert "invalid_request_error" in task["error"]
    assert manifest["status"] == "done", "a document whose tasks all ended is done; each entry says how"


def test_http_faults_back_off_and_recover(batchd_harness, batchd_emulator):
    batchd_emulator.faults.retry_after = 0.05
    batchd_emulator.faults.fail_next = 6
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({f"d{i}.txt": f"Document {i}." for i in range(3)})
    with structlog.testing.capture_logs() as logs:
        assert h.run_once() == 0
    assert len(h.results()) == 3
    assert batchd_emulator.faults.fail_next == 0
    billed = [b["custom_id"] for b in batchd_emulator.record.billed()]
    assert len(billed) == len(set(billed)) == 3


def test_results_archived_after_29_days_are_reported_and_sent_again(tmp_path):
    from batchd.emulator import Emulator, Faults, ManualClock
    from batchd.testing import Harness, wait_until

    clock = ManualClock()
    with Emulator(faults=Faults(processing_time=3600), clock=clock) as emu:
        h = Harness(tmp_path / "batchd", emu.base_url, {"tasks": {"enabled": ["summarize"]}})
        h.drop({"a.txt": "A document whose batch outlives its results."})
        h.start()
        wait_until(lambda: emu.record.created(), message="batch created")
        h.stop()
        clock.advance(30 * 86400)
        emu.faults.processing_time = 0
        with structlog.testing.capture_logs() as logs:
            assert h.run_once() == 0
    assert any(e["event"] == "results_lost" for e in logs)
    manifest = h.results()["a.txt"]
    check_manifest(manifest)
    assert manifest["tasks"]["summarize"]["status"] == "succeeded"
    assert [r["attempt"] for r in _requests(h)] == [1, 2]
