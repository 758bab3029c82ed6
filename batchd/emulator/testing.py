"""Helpers for tests that drive the emulator through the real SDK or raw HTTP."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
MODEL = "claude-haiku-4-5"


def wait_until(probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> T:
    """``probe()``'s first truthy value; AssertionError when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_ended(client: Any, batch_id: str, *, timeout: float = 10.0) -> Any:
    """Poll ``client.messages.batches.retrieve`` until the batch has ended; the batch."""
    def probe() -> Any:
        batch = client.messages.batches.retrieve(batch_id)
        return batch if batch.processing_status == "ended" else None
    return wait_until(probe, timeout=timeout, what=f"batch {batch_id} to end")


def params(text: str = "Hello there. Please summarize this short note.", **extra: Any) -> dict[str, Any]:
    """Minimal valid Messages params asking about ``text``."""
    return {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **extra}


def requests(count: int, prefix: str = "req", **extra: Any) -> list[dict[str, Any]]:
    """``count`` batch requests with distinct custom_ids and texts."""
    return [{"custom_id": f"{prefix}-{i}", "params": params(f"Note number {i}. It is about item {i}.", **extra)}
            for i in range(count)]


def raw(base_url: str, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
        timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange without the SDK: (status, lower-cased headers, body bytes).
    ``body`` may be bytes or a JSON-able value; the API key header is added unless
    ``headers`` has an ``Authorization`` or ``x-api-key`` entry (None values drop one)."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        sent = {"x-api-key": "test", "content-type": "application/json"}
        if headers and {"authorization", "x-api-key"} & {k.lower() for k in headers}:
            sent.pop("x-api-key")
        sent.update(headers or {})
        connection.request(method, path, body=data, headers={k: v for k, v in sent.items() if v is not None})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
