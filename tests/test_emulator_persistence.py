"""State that outlives an Emulator, and the record of what was sent and billed."""

from __future__ import annotations

import json

import anthropic

from batchd.emulator import Emulator, Faults, ManualClock
from batchd.emulator.testing import params, raw, requests, wait_ended
from batchd.keys import reuse_key


def _client(emu: Emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=emu.base_url, max_retries=0)


def test_a_new_emulator_on_the_same_state_finds_batches_results_and_record(tmp_path):
    state = tmp_path / "emulator.db"
    clock = ManualClock(1_800_000_000.0)
    with Emulator(faults=Faults(processing_time=3600.0), state_path=state, clock=clock) as first:
        client = _client(first)
        pending = client.messages.batches.create(requests=requests(4, prefix="pending"))
        first.faults.processing_time = 0.0
        done = client.messages.batches.create(requests=requests(2, prefix="done"))
        wait_ended(client, done.id)
        done_results = sorted((r.custom_id, r.result.message.content[0].text)
                              for r in client.messages.batches.results(done.id))
        record = first.record.as_dict()
    assert [c["batch_id"] for c in record["created"]] == [pending.id, done.id]
    assert len(record["billed"]) == 2

    clock.advance(7200.0)
    with Emulator(faults=Faults(processing_time=60.0), state_path=state, clock=clock) as second:
        client = _client(second)
        assert [b.id for b in client.messages.batches.list()] == [done.id, pending.id]
        ended = client.messages.batches.retrieve(pending.id)
        assert ended.processing_status == "ended" and ended.request_counts.succeeded == 4
        assert ended.ended_at.timestamp() == 1_800_003_600.0
        again = sorted((r.custom_id, r.result.message.content[0].text)
                       for r in client.messages.batches.results(done.id))
        assert again == done_results
        newer = client.messages.batches.create(requests=requests(1, prefix="newer"))
        assert newer.id not in (pending.id, done.id)
        billed = second.record.billed()
        assert [b["batch_id"] for b in billed] == [done.id] * 2 + [pending.id] * 4
        assert second.record.created()[:2] == record["created"]

    with Emulator(state_path=state, clock=clock) as third:
        assert len(third.record.billed()) == 6
        clock.advance(60.0)
        assert wait_ended(_client(third), newer.id).request_counts.succeeded == 1
        assert [b["batch_id"] for b in third.record.billed()][-1] == newer.id
        assert len(third.record.billed()) == 7


def test_without_a_state_path_nothing_is_kept(tmp_path):
    with Emulator(faults=Faults(processing_time=0.0)) as first:
        _client(first).messages.batches.create(requests=requests(1))
    with Emulator() as second:
        assert _client(second).messages.batches.list().data == []
        assert second.record.created() == [] and second.record.billed() == []
    assert list(tmp_path.iterdir()) == []


def test_the_record_over_http_has_the_documented_shape(emulator, emulator_client):
    body = requests(3)
    batch = emulator_client.messages.batches.create(requests=body)
    wait_ended(emulator_client, batch.id)
    for _ in range(2):
        list(emulator_client.messages.batches.results(batch.id))
    emulator_client.messages.create(**params("A direct question."))
    status, headers, data = raw(emulator.base_url, "GET", "/_emulator/record", headers={"x-api-key": None})
    assert status == 200 and headers["content-type"] == "application/json"
    record = json.loads(data)
    assert record == emulator.record.as_dict()
    [created] = record["created"]
    assert set(created) == {"batch_id", "request_count", "custom_ids", "created_at"}
    assert created["batch_id"] == batch.id and created["request_count"] == 3
    assert created["custom_ids"] == ["req-0", "req-1", "req-2"]
    assert len(record["billed"]) == 4
    for entry in record["billed"]:
        assert set(entry) == {"batch_id", "custom_id", "reuse_key", "model", "usage", "billed_at"}
        assert entry["model"] == "claude-haiku-4-5-20251001" and entry["usage"]["output_tokens"] > 0
    keys = {r["custom_id"]: reuse_key(r["params"]) for r in body}
    batch_entries = [e for e in record["billed"] if e["batch_id"] == batch.id]
    assert {e["custom_id"]: e["reuse_key"] for e in batch_entries} == keys
    assert all(e["usage"]["service_tier"] == "batch" for e in batch_entries)
    direct = record["billed"][-1]
    assert direct["batch_id"] is None and direct["custom_id"] is None
    assert direct["reuse_key"] == reuse_key(params("A direct question."))


def test_billing_happens_when_the_batch_ends_even_if_nobody_downloads(emulator, emulator_client):
    emulator.faults.error_rate = 0.5
    batch = emulator_client.messages.batches.create(requests=requests(40))
    ended = wait_ended(emulator_client, batch.id)
    billed = emulator.record.billed()
    assert len(billed) == ended.request_counts.succeeded > 0
    assert all(b["batch_id"] == batch.id for b in billed)


def test_a_big_batch_is_finished_in_chunks_and_billed_once(emulator, emulator_client):
    batch = emulator_client.messages.batches.create(requests=requests(2500))
    ended = wait_ended(emulator_client, batch.id, timeout=20)
    assert ended.request_counts.succeeded == 2500
    ids = [r.custom_id for r in emulator_client.messages.batches.results(batch.id)]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(2500)) and ids[-1] == "req-0"
    billed = emulator.record.billed()
    assert len(billed) == 2500 and len({b["custom_id"] for b in billed}) == 2500


def test_finishing_interrupted_by_a_stop_resumes_without_double_billing(tmp_path):
    state = tmp_path / "emulator.db"
    with Emulator(faults=Faults(processing_time=0.0), state_path=state) as first:
        client = _client(first)
        batch = client.messages.batches.create(requests=requests(4000))
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    with Emulator(state_path=state) as second:
        client = _client(second)
        ended = wait_ended(client, batch.id, timeout=30)
        assert ended.request_counts.succeeded == 4000
        assert len(list(client.messages.batches.results(batch.id))) == 4000
        billed = second.record.billed()
        assert len(billed) == 4000 and len({b["custom_id"] for b in billed}) == 4000


def test_two_emulators_on_one_state_file_bill_each_result_once(tmp_path):
    state = tmp_path / "shared.db"
    clock = ManualClock(1_800_000_000.0)
    with Emulator(faults=Faults(processing_time=10.0), state_path=state, clock=clock) as first, \
            Emulator(state_path=state, clock=clock) as second:
        batch = _client(first).messages.batches.create(requests=requests(3000))
        clock.advance(10.0)
        for emu in (first, second):
            _client(emu).messages.batches.retrieve(batch.id)
        for emu in (first, second):
            assert wait_ended(_client(emu), batch.id, timeout=30).request_counts.succeeded == 3000
        for emu in (first, second):
            billed = emu.record.billed()
            assert len(billed) == 3000 and len({b["custom_id"] for b in billed}) == 3000
