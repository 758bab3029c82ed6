"""The operator's commands beside a running daemon: cancel and retry."""

from __future__ import annotations

from click.testing import CliRunner

from batchd.cli import cli
from batchd.testing import wait_until

from helpers import check_manifest


def _cli(h, *args: str):
    result = CliRunner().invoke(cli, [*args, "-c", str(h.config_path)])
    assert result.exit_code == 0, result.output
    return result.output


def test_cancel_in_flight_batches_ends_their_requests_canceled(batchd_harness, batchd_emulator):
    batchd_emulator.faults.processing_time = 60
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"a.txt": "A document that will be canceled.", "b.txt": "Another one."})
    h.start()
    wait_until(lambda: batchd_emulator.record.created(), message="batch created")
    api_id = batchd_emulator.record.created()[0]["batch_id"]
    out = _cli(h, "cancel")
    assert api_id in out
    results = h.wait_for(["a.txt", "b.txt"], timeout=30)
    h.stop()
    for manifest in results.values():
        check_manifest(manifest)
        task = manifest["tasks"]["summarize"]
        assert task["status"] == "canceled" and task["batch_id"] == api_id
    assert len(batchd_emulator.record.created()) == 1, "canceled on purpose: not sent again"
    assert batchd_emulator.record.billed() == []


def test_retry_sends_a_failed_document_again_and_force_ignores_reuse(batchd_harness, batchd_emulator):
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"bad.txt": b"\x00\x01\x02 binary junk \x00" * 10, "good.txt": "A fine document."})
    assert h.run_once() == 0
    assert h.results()["bad.txt"]["status"] == "failed"
    # The user replaces the bad content in the outbox's copy, then asks for a retry.
    (h.outbox / "bad.txt" / "bad.txt").write_text("Now a readable document.")
    out = _cli(h, "retry")
    assert "bad.txt" in out
    assert (h.inbox / "bad.txt").exists() and not (h.outbox / "bad.txt").exists()
    assert h.run_once() == 0
    manifest = h.results()["bad.txt"]
    check_manifest(manifest)
    assert manifest["status"] == "done"
    billed = len(batchd_emulator.record.billed())
    # --force: the answer is paid for again instead of reused.
    _cli(h, "retry", "good.txt", "--force")
    assert h.run_once() == 0
    task = h.results()["good.txt"]["tasks"]["summarize"]
    assert task["reused"] is False
    assert len(batchd_emulator.record.billed()) == billed + 1


def test_a_batch_canceled_by_someone_else_is_sent_again(batchd_harness, batchd_emulator):
    import anthropic

    batchd_emulator.faults.processing_time = 60
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"a.txt": "A document whose batch someone cancels in the console."})
    h.start()
    wait_until(lambda: batchd_emulator.record.created(), message="batch created")
    first = batchd_emulator.record.created()[0]["batch_id"]
    batchd_emulator.faults.processing_time = 0
    with anthropic.Anthropic(api_key="console", base_url=batchd_emulator.base_url) as client:
        client.messages.batches.cancel(first)
    results = h.wait_for(["a.txt"], timeout=30)
    h.stop()
    task = results["a.txt"]["tasks"]["summarize"]
    assert task["status"] == "succeeded" and task["batch_id"] != first
    assert len(batchd_emulator.record.created()) == 2
