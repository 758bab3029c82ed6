"""When to send a batch: pure policy over what waits, with the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass

#: The API's own caps on one create call.
API_MAX_REQUESTS = 100_000
API_MAX_BYTES = 256_000_000
#: ``{"requests":[`` and ``]}`` around the entries.
BODY_OVERHEAD = len(b'{"requests":[]}')


@dataclass(frozen=True)
class Limits:
    max_requests: int
    max_bytes: int
    max_wait: float

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(min(config["batch.max_requests"], API_MAX_REQUESTS),
                   min(config["batch.max_bytes"], API_MAX_BYTES),
                   float(config["batch.max_wait"]))


def flush_reason(count: int, size: int, oldest: float | None, now: float, limits: Limits,
                 *, drain: bool = False) -> str | None:
    """Why a batch should go out now, or None to keep waiting.

    ``drain`` is set when nothing else is coming (``--once`` with an idle inbox): then
    waiting for ``max_wait`` would only delay the results.
    """
    if count == 0:
        return None
    if count >= limits.max_requests:
        return "max_requests"
    if size + BODY_OVERHEAD >= limits.max_bytes:
        return "max_bytes"
    if oldest is not None and now - oldest >= limits.max_wait:
        return "max_wait"
    if drain:
        return "drain"
    return None


def next_flush_at(count: int, oldest: float | None, limits: Limits) -> float | None:
    """When ``max_wait`` will force the waiting requests out."""
    if count == 0 or oldest is None:
        return None
    return oldest + limits.max_wait


def next_interval(current: float | None, initial: float, maximum: float) -> float:
    """Poll intervals grow by half each time, from ``initial`` up to ``maximum``."""
    if current is None:
        return initial
    return min(maximum, max(initial, current * 1.5))
