"""Each fault the emulator injects, switched on and off between phases of a test."""

from __future__ import annotations

import json
import time

import anthropic
import pytest

from batchd.emulator import Emulator, Faults
from batchd.emulator.testing import params, raw, requests, wait_ended, wait_until
from openapi import validate


def _client(emu: Emulator, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", base_url=emu.base_url, **{"max_retries": 0, **options})


def test_processing_time_sets_when_a_batch_ends():
    with Emulator(faults=Faults(processing_time=0.4)) as emu:
        client = _client(emu)
        batch = client.messages.batches.create(requests=requests(3))
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        ended = wait_ended(client, batch.id, timeout=5)
        assert (ended.ended_at - ended.created_at).total_seconds() == pytest.approx(0.4, abs=0.01)


def test_default_batches_end_within_a_second():
    with Emulator() as emu:
        client = _client(emu)
        batch = client.messages.batches.create(requests=requests(2))
        ended = wait_ended(client, batch.id, timeout=5)
        assert (ended.ended_at - ended.created_at).total_seconds() < 1.0


def test_error_rate_gives_api_and_overloaded_errors_and_is_fixed_at_create(emulator, emulator_client):
    emulator.faults.error_rate = 1.0
    failing = emulator_client.messages.batches.create(requests=requests(30))
    emulator.faults.error_rate = 0.0
    fine = emulator_client.messages.batches.create(requests=requests(30))
    assert wait_ended(emulator_client, failing.id).request_counts.errored == 30
    assert wait_ended(emulator_client, fine.id).request_counts.succeeded == 30
    kinds = {r.result.error.error.type for r in emulator_client.messages.batches.results(failing.id)}
    assert kinds == {"api_error", "overloaded_error"}
    assert {b["batch_id"] for b in emulator.record.billed()} == {fine.id}


def test_a_partial_error_rate_is_repeatable_for_a_seed():
    outcomes = []
    for _ in range(2):
        with Emulator(faults=Faults(processing_time=0.0, error_rate=0.5), seed=11) as emu:
            client = _client(emu)
            batch = client.messages.batches.create(requests=requests(100))
            wait_ended(client, batch.id)
            outcomes.append({r.custom_id: r.result.type for r in client.messages.batches.results(batch.id)})
    assert outcomes[0] == outcomes[1]
    assert 25 < list(outcomes[0].values()).count("errored") < 75


def test_expire_rate_expires_requests(emulator, emulator_client):
    emulator.faults.expire_rate = 1.0
    batch = emulator_client.messages.batches.create(requests=requests(10))
    assert wait_ended(emulator_client, batch.id).request_counts.expired == 10
    assert {r.result.type for r in emulator_client.messages.batches.results(batch.id)} == {"expired"}
    assert emulator.record.billed() == []


def test_expire_after_sets_expires_at(emulator, emulator_client):
    emulator.faults.expire_after = 60.0
    batch = emulator_client.messages.batches.create(requests=requests(1))
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(60.0)


def test_http_fault_rate_is_survived_by_sdk_retries(emulator):
    emulator.faults.http_fault_rate = 0.3
    emulator.faults.retry_after = 0.01
    with _client(emulator, max_retries=10) as client:
        made = [client.messages.batches.create(requests=requests(1, prefix=f"p{i}")).id for i in range(5)]
        for batch_id in made:
            wait_ended(client, batch_id)
            assert len(list(client.messages.batches.results(batch_id))) == 1
        assert sorted(b.id for b in client.messages.batches.list()) == sorted(made)
    assert sum(emulator.dice.injected.values()) > 0
    assert set(emulator.dice.injected) <= {429, 529, 500}
    assert len(emulator.record.created()) == 5


def test_a_burst_fails_consecutive_calls(emulator):
    emulator.faults.http_fault_rate = 1.0
    emulator.faults.http_fault_burst = 3
    assert raw(emulator.base_url, "GET", "/v1/messages/batches")[0] in (429, 529, 500)
    emulator.faults.http_fault_rate = 0.0
    statuses = [raw(emulator.base_url, "GET", "/v1/messages/batches")[0] for _ in range(3)]
    assert statuses[:2] == [statuses[0]] * 2 and statuses[0] in (429, 529, 500) and statuses[2] == 200


@pytest.mark.parametrize("mode", ["error", "drop"])
def test_a_lost_create_answer_still_created_the_batch(emulator, mode):
    emulator.faults.lost_response_rate = 1.0
    emulator.faults.lost_response_modes = (mode,)
    expected = anthropic.InternalServerError if mode == "error" else anthropic.APIConnectionError
    with _client(emulator) as client:
        with pytest.raises(expected):
            client.messages.batches.create(requests=requests(3))
        emulator.faults.lost_response_rate = 0.0
        listed = client.messages.batches.list().data
        assert len(listed) == 1 and listed[0].request_counts.processing + listed[0].request_counts.succeeded == 3
    assert [c["custom_ids"] for c in emulator.record.created()] == [["req-0", "req-1", "req-2"]]


def test_a_stalled_create_times_out_on_the_client_but_exists(emulator):
    emulator.faults.lost_response_rate = 1.0
    emulator.faults.lost_response_modes = ("stall",)
    emulator.faults.stall_seconds = 30.0
    with _client(emulator, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            client.messages.batches.create(requests=requests(2))
        assert time.monotonic() - started < 5
    assert len(emulator.record.created()) == 1
    status, _, body = raw(emulator.base_url, "GET", "/v1/messages/batches")
    assert status == 200 and len(json.loads(body)["data"]) == 1


def test_a_naive_client_that_retries_a_lost_create_pays_twice(emulator):
    emulator.faults.lost_response_rate = 1.0
    emulator.faults.lost_response_modes = ("error",)
    emulator.faults.retry_after = 0.01
    with _client(emulator, max_retries=2) as client:
        with pytest.raises(anthropic.InternalServerError):
            client.messages.batches.create(requests=requests(2))
        emulator.faults.lost_response_rate = 0.0
        batches = client.messages.batches.list().data
        for batch in batches:
            wait_ended(client, batch.id)
    assert len(batches) == 3
    billed = [b["reuse_key"] for b in emulator.record.billed()]
    assert len(billed) == 6 and len(set(billed)) == 2


def test_a_lost_messages_answer_is_still_billed(emulator):
    emulator.faults.lost_response_rate = 1.0
    emulator.faults.lost_response_modes = ("drop",)
    with _client(emulator) as client:
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.create(**params())
    billed = emulator.record.billed()
    assert len(billed) == 1 and billed[0]["batch_id"] is None


def test_latency_delays_every_response(emulator, emulator_client):
    emulator.faults.latency = 0.3
    started = time.monotonic()
    emulator_client.messages.batches.list()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert raw(emulator.base_url, "GET", "/v1/nowhere")[0] == 404
    assert time.monotonic() - started >= 0.3


def test_seed_fixes_ids_order_and_faults():
    def run(seed: int) -> tuple:
        with Emulator(faults=Faults(processing_time=0.0, http_fault_rate=0.5, retry_after=0.01), seed=seed) as emu:
            statuses = [raw(emu.base_url, "GET", "/v1/messages/batches")[0] for _ in range(12)]
            emu.faults.http_fault_rate = 0.0
            client = _client(emu)
            batch = client.messages.batches.create(requests=requests(10))
            wait_ended(client, batch.id)
            return batch.id, [r.custom_id for r in client.messages.batches.results(batch.id)], statuses
    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert first[0] != other[0] and first[2] != other[2]


def test_faults_can_be_read_and_changed_over_http(emulator):
    status, _, body = raw(emulator.base_url, "GET", "/_emulator/faults", headers={"x-api-key": None})
    assert status == 200 and json.loads(body)["error_rate"] == 0.0
    status, _, body = raw(emulator.base_url, "PUT", "/_emulator/faults", {"error_rate": 0.25, "latency": 0.0})
    assert status == 200 and json.loads(body)["error_rate"] == 0.25
    assert emulator.faults.error_rate == 0.25
    for bad in ({"error_rate": 2}, {"no_such": 1}, {"lost_response_modes": ["explode"]}):
        status, _, body = raw(emulator.base_url, "PUT", "/_emulator/faults", bad)
        assert status == 400, bad
    assert emulator.faults.error_rate == 0.25


def test_fault_settings_are_checked():
    for bad in ({"error_rate": 1.5}, {"latency": -1}, {"error_rate": 0.7, "expire_rate": 0.7},
                {"http_fault_statuses": (418,)}, {"http_fault_burst": 0}):
        with pytest.raises(ValueError):
            Faults(**bad)


def test_concurrent_clients_are_served_consistently(emulator):
    import threading

    errors: list[BaseException] = []
    made: list[str] = []

    def worker(n: int) -> None:
        try:
            with _client(emulator) as client:
                for i in range(5):
                    batch = client.messages.batches.create(requests=requests(3, prefix=f"t{n}-{i}"))
                    made.append(batch.id)
                    client.messages.batches.list(limit=5)
                    wait_ended(client, batch.id)
                    assert len(list(client.messages.batches.results(batch.id))) == 3
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(set(made)) == 30
    wait_until(lambda: len(emulator.record.billed()) == 90, what="all 90 results billed")
    status, _, body = raw(emulator.base_url, "GET", "/v1/messages/batches?limit=1000")
    page = json.loads(body)
    validate("ListResponse_MessageBatch_", page)
    assert len(page["data"]) == 30
