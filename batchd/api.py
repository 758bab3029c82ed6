"""The Message Batches API as batchd uses it, through the official SDK.

The create call is the one that costs money, so it is made with the SDK's retries off
and its failures sorted by what they prove: a refusal before any work may be retried,
an unknown outcome must be resolved from the API's list of batches first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

import anthropic
from anthropic.types.messages import MessageBatch

from batchd.store import Outcome

#: Timeout of the create call: long enough for a 256 MB upload, short enough to notice a hang.
CREATE_TIMEOUT = 300.0


class Held(Exception):
    """The API refuses us in a way no retry fixes (key, billing, permission, model)."""


class Refused(Exception):
    """The API refused the call before doing any work; it may be tried again later."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class Invalid(Exception):
    """The API says the create body itself is wrong; sending it again cannot help."""


class TooLarge(Exception):
    """The create body is over the API's size limit."""


class Unknown(Exception):
    """The call may or may not have been carried out (timeout, dropped connection, 5xx)."""


@dataclass
class BatchInfo:
    api_id: str
    status: str
    created_at: float
    ended_at: float | None
    request_count: int
    counts: dict[str, int]
    archived: bool


def _info(batch: MessageBatch) -> BatchInfo:
    counts = batch.request_counts.model_dump()
    return BatchInfo(
        api_id=batch.id,
        status=batch.processing_status,
        created_at=_ts(batch.created_at),
        ended_at=_ts(batch.ended_at) if batch.ended_at else None,
        request_count=sum(counts.values()),
        counts=counts,
        archived=getattr(batch, "archived_at", None) is not None,
    )


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class Api:
    """The calls batchd makes; everything but create may use the SDK's own retries."""

    def __init__(self, key: str, base_url: str | None = None) -> None:
        self.client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=3, timeout=120.0)

    def create(self, body: bytes) -> BatchInfo:
        """One create call with a body built by batchd (compact JSON bytes, never re-encoded)."""
        try:
            batch = self.client.post(
                "/v1/messages/batches", cast_to=MessageBatch, content=body,
                options={"headers": {"Content-Type": "application/json"}, "max_retries": 0,
                         "timeout": CREATE_TIMEOUT})
        except anthropic.APIStatusError as exc:
            raise _classify(exc, unknown_on_5xx=True) from exc
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
            raise Unknown(f"{type(exc).__name__}: {exc}") from exc
        return _info(batch)

    def retrieve(self, api_id: str) -> BatchInfo:
        return _info(self._call(self.client.messages.batches.retrieve, api_id))

    def cancel(self, api_id: str) -> BatchInfo:
        return _info(self._call(self.client.messages.batches.cancel, api_id))

    def list_since(self, since: float) -> Iterator[BatchInfo]:
        """Batches created at or after ``since``, newest first."""
        page = self._call(self.client.messages.batches.list, limit=100)
        for batch in page:
            info = _info(batch)
            if info.created_at < since:
                return
            yield info

    def results(self, api_id: str) -> Iterator[Outcome]:
        """The batch's results, streamed one line at a time.

        Through the SDK's streaming response, each line read as plain JSON: the answers
        are wanted as dicts, and building the SDK's model of every line only to dump it
        again made reading them about eight times slower.
        """
        stream = self.client.messages.batches.with_streaming_response.results(api_id)
        response = self._call(stream.__enter__)
        try:
            pending = b""
            for chunk in response.iter_bytes():
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield _outcome(json.loads(line))
            if pending.strip():
                yield _outcome(json.loads(pending))
        finally:
            stream.__exit__(None, None, None)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except anthropic.APIStatusError as exc:
            raise _classify(exc, unknown_on_5xx=False) from exc
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
            raise Refused(f"{type(exc).__name__}: {exc}") from exc


def _outcome(line: dict[str, Any]) -> Outcome:
    """One line of a batch's results (``{"custom_id", "result": {"type", ...}}``) as an Outcome."""
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return Outcome(line["custom_id"], "succeeded", message=result.get("message") or {})
    if kind == "errored":
        err = (result.get("error") or {}).get("error") or {}
        return Outcome(line["custom_id"], "errored", error_type=err.get("type"),
                       error=f"{err.get('type')}: {err.get('message')}")
    return Outcome(line["custom_id"], kind, error=f"the request {kind}")


def _classify(exc: anthropic.APIStatusError, *, unknown_on_5xx: bool) -> Exception:
    status = exc.status_code
    text = f"HTTP {status} {_error_text(exc)}"
    if status in (401, 402, 403, 404):
        return Held(text)
    if status == 413:
        return TooLarge(text)
    if status == 400 or status == 422:
        return Invalid(text)
    if status >= 500 and unknown_on_5xx:
        return Unknown(text)
    return Refused(text, retry_after=_retry_after(exc), status=status)


def _error_text(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return f"{err.get('type')}: {err.get('message')}"
    return str(exc.message)


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None
