"""Authentication, error envelopes, status codes and limits, as the SDK meets them."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import anthropic
import pytest

from batchd.emulator import bodies
from batchd.emulator.testing import params, raw, requests
from openapi import validate, validate_error


def _error(status: int, headers: dict[str, str], body: bytes, error_type: str) -> dict:
    data = json.loads(body)
    validate_error(data)
    assert headers["content-type"] == "application/json"
    assert headers["request-id"].startswith("req_") and data["request_id"] == headers["request-id"]
    assert data["error"]["type"] == error_type
    return data


def test_a_missing_key_is_401_and_both_key_styles_work(emulator):
    status, headers, body = raw(emulator.base_url, "GET", "/v1/messages/batches", headers={"x-api-key": None})
    assert status == 401
    _error(status, headers, body, "authentication_error")
    status, _, _ = raw(emulator.base_url, "GET", "/v1/messages/batches",
                       headers={"Authorization": "Bearer sk-anything", "anthropic-version": "1999-01-01"})
    assert status == 200
    status, _, _ = raw(emulator.base_url, "GET", "/v1/messages/batches",
                       headers={"x-api-key": "sk-anything", "anthropic-version": "2023-06-01"})
    assert status == 200
    status, _, _ = raw(emulator.base_url, "GET", "/v1/messages/batches", headers={"Authorization": "Bearer "})
    assert status == 401
    with anthropic.Anthropic(api_key="k", base_url=emulator.base_url, max_retries=0,
                             default_headers={"Authorization": "Basic eDp5"}) as client:
        with pytest.raises(anthropic.AuthenticationError) as denied:
            client.messages.batches.list()
    validate_error(denied.value.body)
    assert emulator.record.created() == []


def test_every_response_has_a_request_id(emulator, emulator_client):
    batch = emulator_client.messages.batches.with_raw_response.create(requests=requests(1))
    assert batch.headers["request-id"].startswith("req_")
    retrieved = emulator_client.messages.batches.retrieve(batch.parse().id)
    assert retrieved._request_id.startswith("req_")
    _, headers, _ = raw(emulator.base_url, "GET", f"/v1/messages/batches/{retrieved.id}/results")
    assert headers["request-id"].startswith("req_")
    _, headers, _ = raw(emulator.base_url, "GET", "/_emulator/record")
    assert headers["request-id"].startswith("req_")


@pytest.mark.parametrize(("custom_id", "message"), [
    ("has space", "requests.1.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ("x" * 65, "requests.1.custom_id: String should have at most 64 characters"),
    ("", "requests.1.custom_id: String should have at least 1 character"),
    ("req-0", "requests.1.custom_id: duplicate custom_id 'req-0'"),
])
def test_custom_ids_are_checked_at_create(emulator, emulator_client, custom_id, message):
    body = requests(3)
    body[1]["custom_id"] = custom_id
    with pytest.raises(anthropic.BadRequestError) as refused:
        emulator_client.messages.batches.create(requests=body)
    validate_error(refused.value.body)
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert refused.value.body["error"]["message"].startswith(message)
    assert emulator.record.created() == [] and emulator_client.messages.batches.list().data == []
    good = [{"custom_id": "A-z_09" + "x" * 58, "params": params()}]
    validate("CreateMessageBatchParams", {"requests": good})
    assert emulator_client.messages.batches.create(requests=good).request_counts.processing == 1


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "There was an error parsing the body"),
    (b"[]", "There was an error parsing the body"),
    (b"{}", "requests: Field required"),
    (b'{"requests": []}', "requests: List should have at least 1 item"),
    (b'{"requests": [{"custom_id": "a"}]}', "requests.0.params: Field required"),
    (b'{"requests": [{"custom_id": "a", "params": {}, "extra": 1}]}', "requests.0.extra: Extra inputs"),
    (b'{"requests": [{"custom_id": "a", "params": {}}], "other": 1}', "other: Extra inputs are not permitted"),
])
def test_malformed_create_bodies_are_400(emulator, body, message):
    status, headers, data = raw(emulator.base_url, "POST", "/v1/messages/batches", body)
    assert status == 400
    assert _error(status, headers, data, "invalid_request_error")["error"]["message"].startswith(message)
    assert emulator.record.created() == []


def test_more_than_100000_requests_is_refused(emulator):
    item = b'{"custom_id":"r%d","params":{}}'
    body = b'{"requests":[' + b",".join(item % i for i in range(bodies.MAX_REQUESTS + 1)) + b"]}"
    status, headers, data = raw(emulator.base_url, "POST", "/v1/messages/batches", body, timeout=60)
    assert status == 400
    assert "at most 100000 items" in _error(status, headers, data, "invalid_request_error")["error"]["message"]
    assert emulator.record.created() == []


@pytest.mark.parametrize(("path", "limit"), [("/v1/messages/batches", 256 * 1024 * 1024),
                                             ("/v1/messages", 32 * 1024 * 1024),
                                             ("/v1/messages/count_tokens", 32 * 1024 * 1024)])
def test_oversized_bodies_are_413_before_the_body_is_read(emulator, path, limit):
    url = urlsplit(emulator.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    started = time.monotonic()
    connection.putrequest("POST", path)
    connection.putheader("x-api-key", "test")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(limit + 1))
    connection.endheaders()
    response = connection.getresponse()
    data = response.read()
    connection.close()
    assert time.monotonic() - started < 5
    assert response.status == 413
    envelope = _error(413, {k.lower(): v for k, v in response.getheaders()}, data, "request_too_large")
    assert set(envelope) == {"type", "error", "request_id"}
    assert response.getheader("Connection") == "close"


def test_429_retry_after_is_honoured_by_the_sdk(emulator):
    emulator.faults.http_fault_statuses = (429,)
    emulator.faults.retry_after = 0.6
    emulator.faults.fail_next = 1
    with anthropic.Anthropic(api_key="test", base_url=emulator.base_url, max_retries=2) as client:
        started = time.monotonic()
        assert client.messages.batches.list().data == []
        assert time.monotonic() - started >= 0.6
    assert emulator.dice.injected == {429: 1}
    emulator.faults.fail_next = 1
    status, headers, body = raw(emulator.base_url, "GET", "/v1/messages/batches")
    assert status == 429
    assert headers["retry-after"] == "1" and headers["retry-after-ms"] == "600"
    assert headers["x-should-retry"] == "true"
    _error(status, headers, body, "rate_limit_error")


def test_529_and_500_are_retried_by_the_sdk_and_surface_when_retries_run_out(emulator):
    emulator.faults.retry_after = 0.01
    for status, error_class, error_type in ((529, anthropic.OverloadedError, "overloaded_error"),
                                            (500, anthropic.InternalServerError, "api_error")):
        emulator.faults.http_fault_statuses = (status,)
        emulator.faults.fail_next = 2
        with anthropic.Anthropic(api_key="test", base_url=emulator.base_url, max_retries=2) as client:
            assert client.messages.batches.list().data == []
            emulator.faults.fail_next = 3
            with pytest.raises(error_class) as failed:
                client.messages.batches.list()
        assert failed.value.status_code == status
        assert failed.value.response.request.headers["x-stainless-retry-count"] == "2"
        validate_error(failed.value.body)
        assert failed.value.body["error"]["type"] == error_type
    assert emulator.dice.injected == {529: 5, 500: 5}


def test_http_faults_come_before_any_work(emulator):
    emulator.faults.http_fault_rate = 1.0
    with anthropic.Anthropic(api_key="test", base_url=emulator.base_url, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError):
            client.messages.batches.create(requests=requests(2))
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(**params())
    emulator.faults.http_fault_rate = 0.0
    assert emulator.record.created() == [] and emulator.record.billed() == []


def test_unknown_paths_and_methods(emulator):
    status, headers, body = raw(emulator.base_url, "GET", "/v1/nothing-here")
    assert status == 404
    _error(status, headers, body, "not_found_error")
    status, headers, body = raw(emulator.base_url, "PUT", "/v1/messages/batches")
    assert status == 405
    _error(status, headers, body, "invalid_request_error")


def test_a_client_that_hangs_up_does_not_hurt_the_server(emulator, emulator_client):
    url = urlsplit(emulator.base_url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(b"POST /v1/messages/batches HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Length: 100\r\n\r\n{")
    batch = emulator_client.messages.batches.create(requests=requests(1))
    assert batch.request_counts.processing == 1
