"""The batch lifecycle through the real SDK: create, poll, results, cancel, delete, list."""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types.messages import DeletedMessageBatch, MessageBatch, MessageBatchIndividualResponse

from batchd.emulator import Emulator, Faults, ManualClock
from batchd.emulator.testing import params, raw, requests, wait_ended
from openapi import validate, validate_error


def _client(emu: Emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=emu.base_url, max_retries=0)


def _check_batch(data: dict) -> MessageBatch:
    validate("MessageBatch", data)
    counts = data["request_counts"]
    assert sum(counts.values()) >= 1
    assert (data["ended_at"] is None) == (data["results_url"] is None)
    return MessageBatch.model_validate(data)


def _results_lines(emu: Emulator, batch_id: str) -> list[dict]:
    status, headers, body = raw(emu.base_url, "GET", f"/v1/messages/batches/{batch_id}/results")
    assert status == 200, body
    assert headers["content-type"] == "application/x-jsonl"
    assert int(headers["content-length"]) == len(body)
    assert b"\r" not in body and b"\n\n" not in body and body.endswith(b"\n")
    lines = [json.loads(line) for line in body.decode().split("\n")[:-1]]
    for line in lines:
        validate("MessageBatchIndividualResponse", line)
        MessageBatchIndividualResponse.model_validate(line)
    return lines


def test_create_poll_and_stream_results(emulator, emulator_client):
    body = {"requests": requests(3)}
    validate("CreateMessageBatchParams", body)
    created = emulator_client.messages.batches.with_raw_response.create(**body)
    assert created.headers["request-id"].startswith("req_")
    data = json.loads(created.text())
    _check_batch(data)
    assert data["id"].startswith("msgbatch_")
    assert data["processing_status"] == "in_progress"
    assert data["request_counts"] == {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert data["results_url"] is None and data["ended_at"] is None and data["cancel_initiated_at"] is None

    batch = wait_ended(emulator_client, data["id"])
    status, _, raw_batch = raw(emulator.base_url, "GET", f"/v1/messages/batches/{batch.id}")
    _check_batch(json.loads(raw_batch))
    assert batch.request_counts.succeeded == 3 and batch.request_counts.processing == 0
    assert batch.results_url == f"{emulator.base_url}/v1/messages/batches/{batch.id}/results"
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(86400)

    results = {r.custom_id: r for r in emulator_client.messages.batches.results(batch.id)}
    assert set(results) == {"req-0", "req-1", "req-2"}
    for line in _results_lines(emulator, batch.id):
        message = line["result"]["message"]
        validate("Message", message)
        assert message["model"] == "claude-haiku-4-5-20251001"
        assert message["usage"]["service_tier"] == "batch"
        assert message["id"].startswith("msg_")
        assert message["content"][0]["text"].startswith("## Summary")


def test_results_are_shuffled_the_same_way_for_the_same_seed(emulator):
    orders = []
    for seed in (7, 7, 8):
        with Emulator(faults=Faults(processing_time=0.0), seed=seed) as emu:
            batch = _client(emu).messages.batches.create(requests=requests(40))
            wait_ended(_client(emu), batch.id)
            orders.append((batch.id, [line["custom_id"] for line in _results_lines(emu, batch.id)]))
    assert orders[0] == orders[1]
    assert orders[0][0] != orders[2][0] and orders[0][1] != orders[2][1]
    ids = orders[0][1]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(40))
    assert ids != [f"req-{i}" for i in range(40)]


def test_counts_stay_processing_until_the_whole_batch_ends():
    clock = ManualClock(1_800_000_000.0)
    with Emulator(faults=Faults(processing_time=100.0), clock=clock) as emu:
        client = _client(emu)
        batch = client.messages.batches.create(requests=requests(20))
        for _ in range(4):
            clock.advance(24.0)
            now = client.messages.batches.retrieve(batch.id)
            assert now.processing_status == "in_progress"
            assert now.request_counts.processing == 20 and now.ended_at is None and now.results_url is None
        with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
            client.messages.batches.results(batch.id)
        status, _, body = raw(emu.base_url, "GET", f"/v1/messages/batches/{batch.id}/results")
        assert status == 400
        validate_error(json.loads(body))
        clock.advance(4.0)
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.request_counts.succeeded == 20 and ended.request_counts.processing == 0
        assert ended.ended_at.timestamp() == pytest.approx(1_800_000_100.0)


def test_cancel_goes_through_canceling_and_cancels_what_was_not_processed():
    clock = ManualClock(1_800_000_000.0)
    with Emulator(faults=Faults(processing_time=100.0, cancel_delay=2.0), clock=clock) as emu:
        client = _client(emu)
        batch = client.messages.batches.create(requests=requests(60))
        clock.advance(50.0)
        raw_cancel = client.messages.batches.with_raw_response.cancel(batch.id)
        canceling = _check_batch(json.loads(raw_cancel.text()))
        assert canceling.processing_status == "canceling"
        assert canceling.cancel_initiated_at.timestamp() == pytest.approx(1_800_000_050.0)
        assert canceling.request_counts.processing == 60 and canceling.results_url is None
        assert client.messages.batches.cancel(batch.id).processing_status == "canceling"
        clock.advance(1.0)
        assert client.messages.batches.retrieve(batch.id).processing_status == "canceling"
        clock.advance(1.0)
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        counts = ended.request_counts
        assert counts.canceled > 0 and counts.succeeded > 0
        assert counts.canceled + counts.succeeded == 60 and counts.processing == 0
        kinds = {r.custom_id: r.result.type for r in client.messages.batches.results(batch.id)}
        assert sorted(kinds.values()).count("canceled") == counts.canceled
        billed = [b["custom_id"] for b in emu.record.billed()]
        assert sorted(billed) == sorted(k for k, v in kinds.items() if v == "succeeded")
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.batches.cancel(batch.id)
        validate_error(refused.value.body)


def test_requests_not_done_by_expires_at_expire():
    clock = ManualClock(1_800_000_000.0)
    with Emulator(faults=Faults(processing_time=200.0, expire_after=100.0), clock=clock) as emu:
        client = _client(emu)
        batch = client.messages.batches.create(requests=requests(40))
        assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(100.0)
        clock.advance(99.0)
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        clock.advance(1.0)
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and ended.ended_at == ended.expires_at
        assert ended.request_counts.expired > 0 and ended.request_counts.succeeded > 0
        assert ended.request_counts.expired + ended.request_counts.succeeded == 40
        types = [line["result"]["type"] for line in _results_lines(emu, batch.id)]
        assert types.count("expired") == ended.request_counts.expired


def test_every_result_type_in_one_batch_validates():
    clock = ManualClock(1_800_000_000.0)
    faults = Faults(processing_time=100.0, error_rate=0.2, expire_rate=0.2, cancel_delay=1.0)
    with Emulator(faults=faults, clock=clock, seed=3) as emu:
        client = _client(emu)
        batch = client.messages.batches.create(requests=requests(80))
        clock.advance(60.0)
        client.messages.batches.cancel(batch.id)
        clock.advance(1.0)
        ended = wait_ended(client, batch.id)
        lines = _results_lines(emu, batch.id)
        by_type: dict[str, list[dict]] = {}
        for line in lines:
            by_type.setdefault(line["result"]["type"], []).append(line)
        assert set(by_type) == {"succeeded", "errored", "canceled", "expired"}
        for kind, found in by_type.items():
            assert getattr(ended.request_counts, kind) == len(found)
        for line in by_type["errored"]:
            error = line["result"]["error"]
            validate("ErrorResponse", error)
            assert error["type"] == "error" and error["request_id"] is None
            assert error["error"]["type"] in ("api_error", "overloaded_error")
        assert by_type["canceled"][0]["result"] == {"type": "canceled"}
        assert by_type["expired"][0]["result"] == {"type": "expired"}
        sdk_types = {type(r.result).__name__ for r in client.messages.batches.results(batch.id)}
        assert sdk_types == {"MessageBatchSucceededResult", "MessageBatchErroredResult",
                             "MessageBatchCanceledResult", "MessageBatchExpiredResult"}


@pytest.mark.parametrize(("bad", "error_type", "message"), [
    ({"messages": []}, "invalid_request_error", "messages: at least one message is required"),
    ({"max_tokens": 0}, "invalid_request_error", "max_tokens: Input should be greater than or equal to 1"),
    ({"max_tokens": 10**6}, "invalid_request_error", "max_tokens: 1000000 > 64000"),
    ({"max_tokens": "many"}, "invalid_request_error", "max_tokens: Input should be a valid integer"),
    ({"stream": True}, "invalid_request_error", "stream:"),
    ({"model": "gpt-4o"}, "not_found_error", "model: gpt-4o"),
    ({"temperature": 3}, "invalid_request_error", "temperature:"),
    ({"tool_choice": {"type": "tool", "name": "nope"}}, "invalid_request_error", "tool_choice"),
    ({"unknown_field": 1}, "invalid_request_error", "unknown_field: Extra inputs are not permitted"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "invalid_request_error", "messages.0.role"),
])
def test_params_are_checked_per_request_when_the_batch_is_processed(emulator, emulator_client, bad, error_type,
                                                                     message):
    good = {"custom_id": "good", "params": params()}
    broken = {"custom_id": "broken", "params": {**params(), **bad}}
    batch = emulator_client.messages.batches.create(requests=[good, broken])
    assert batch.request_counts.processing == 2
    ended = wait_ended(emulator_client, batch.id)
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 1)
    lines = {line["custom_id"]: line["result"] for line in _results_lines(emulator, batch.id)}
    assert lines["good"]["type"] == "succeeded"
    error = lines["broken"]["error"]
    assert error["type"] == "error" and error["error"]["type"] == error_type
    assert error["error"]["message"].startswith(message)
    validate("ErrorResponse", error)
    missing = {"custom_id": "missing", "params": {"model": "claude-haiku-4-5", "messages": []}}
    batch = emulator_client.messages.batches.create(requests=[missing])
    wait_ended(emulator_client, batch.id)
    line = _results_lines(emulator, batch.id)[0]
    assert line["result"]["error"]["error"]["message"] == "max_tokens: Field required"


def test_delete_only_after_the_end(emulator_client, emulator):
    emulator.faults.processing_time = 3600.0
    batch = emulator_client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.BadRequestError) as refused:
        emulator_client.messages.batches.delete(batch.id)
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "cancel it first" in refused.value.body["error"]["message"]
    emulator.faults.cancel_delay = 0.0
    emulator_client.messages.batches.cancel(batch.id)
    wait_ended(emulator_client, batch.id)
    deleted = emulator_client.messages.batches.with_raw_response.delete(batch.id)
    data = json.loads(deleted.text())
    validate("DeleteMessageBatchResponse", data)
    assert DeletedMessageBatch.model_validate(data) == DeletedMessageBatch(id=batch.id, type="message_batch_deleted")
    for call in (emulator_client.messages.batches.retrieve, emulator_client.messages.batches.delete,
                 emulator_client.messages.batches.cancel):
        with pytest.raises(anthropic.NotFoundError):
            call(batch.id)
    status, _, body = raw(emulator.base_url, "GET", f"/v1/messages/batches/{batch.id}/results")
    assert status == 404
    validate_error(json.loads(body))
    assert batch.id not in [b.id for b in emulator_client.messages.batches.list()]
    assert [c["batch_id"] for c in emulator.record.created()] == [batch.id]


def test_unknown_batch_is_404(emulator_client):
    with pytest.raises(anthropic.NotFoundError) as missing:
        emulator_client.messages.batches.retrieve("msgbatch_01doesnotexist")
    validate_error(missing.value.body)
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert missing.value.request_id and missing.value.request_id.startswith("req_")


def test_list_newest_first_with_pagination_both_ways(emulator, emulator_client):
    made = [emulator_client.messages.batches.create(requests=requests(1, prefix=f"b{i}")).id for i in range(7)]
    newest_first = made[::-1]
    assert [b.id for b in emulator_client.messages.batches.list(limit=3)] == newest_first
    assert [b.id for b in emulator_client.messages.batches.list()] == newest_first

    status, _, body = raw(emulator.base_url, "GET", "/v1/messages/batches?limit=3&beta=true")
    page = json.loads(body)
    validate("ListResponse_MessageBatch_", page)
    assert status == 200 and page["has_more"] is True
    assert [b["id"] for b in page["data"]] == newest_first[:3]
    assert (page["first_id"], page["last_id"]) == (newest_first[0], newest_first[2])

    backwards = emulator_client.messages.batches.list(before_id=made[0], limit=2)
    assert [b.id for b in backwards.data] == [made[2], made[1]] and backwards.has_more
    collected = [b.id for b in emulator_client.messages.batches.list(before_id=made[0], limit=2)]
    assert collected == [made[2], made[1], made[4], made[3], made[6], made[5]]

    empty = emulator_client.messages.batches.list(after_id=made[0])
    assert empty.data == [] and empty.has_more is False and empty.first_id is None and empty.last_id is None
    status, _, body = raw(emulator.base_url, "GET", f"/v1/messages/batches?after_id={made[0]}")
    validate("ListResponse_MessageBatch_", json.loads(body))
    assert len(emulator_client.messages.batches.list(limit=1000).data) == 7
    for bad in ("0", "1001", "x"):
        with pytest.raises(anthropic.BadRequestError, match="limit"):
            emulator_client.messages.batches.list(limit=bad)
    with pytest.raises(anthropic.BadRequestError):
        emulator_client.messages.batches.list(after_id="msgbatch_unknown")


def test_results_can_be_downloaded_again_and_are_billed_once(emulator, emulator_client):
    batch = emulator_client.messages.batches.create(requests=requests(5))
    wait_ended(emulator_client, batch.id)
    first = [r.model_dump() for r in emulator_client.messages.batches.results(batch.id)]
    second = [r.model_dump() for r in emulator_client.messages.batches.results(batch.id)]
    assert first == second
    assert len(emulator.record.billed()) == 5


def test_beta_paths_are_the_same_api(emulator, emulator_client):
    batch = emulator_client.beta.messages.batches.create(requests=requests(1), betas=["output-300k-2026-03-24"])
    status, _, body = raw(emulator.base_url, "GET", f"/v1/messages/batches/{batch.id}?beta=true")
    assert status == 200 and json.loads(body)["id"] == batch.id
    status, _, body = raw(emulator.base_url, "POST", "/v1/messages/batches?beta=true", {"requests": requests(1)})
    assert status == 200 and json.loads(body)["type"] == "message_batch"
