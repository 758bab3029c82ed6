"""What a batch will cost before it goes out, and the daily budget that may hold it back.

The estimate is a character count turned into tokens with a ratio calibrated from the
answers batchd already received (4 characters a token until there are some), plus the
average answer length seen so far; it is logged with every batch. The budget counts
what was billed since midnight UTC plus the estimates of batches still in flight.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from batchd.store import Store

DEFAULT_CHARS_PER_TOKEN = 4.0


def chars_per_token(store: Store) -> float:
    value = store.get_meta("chars_per_token")
    return float(value) if value else DEFAULT_CHARS_PER_TOKEN


def estimate(pricing: Any, store: Store, entries: list[tuple[str, int, int]]) -> list[float]:
    """The estimated batch cost of each ``(model, params_chars, max_tokens)`` request."""
    if pricing is None:
        return [0.0] * len(entries)
    ratio = chars_per_token(store)
    row = store.one("SELECT avg(output_tokens) AS avg_out FROM results")
    avg_out = row["avg_out"] if row else None
    costs = []
    for model, chars, max_tokens in entries:
        output = min(max_tokens, avg_out) if avg_out else max_tokens / 4
        cost = pricing.cost(model, {"input_tokens": int(chars / ratio), "output_tokens": int(output)}, batch=True)
        costs.append(cost or 0.0)
    return costs


def spent_today(store: Store, now: float) -> float:
    """USD billed since midnight UTC, plus the estimates of batches not yet collected."""
    midnight = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    billed = store.one("SELECT coalesce(sum(cost_usd), 0) AS s FROM results WHERE received_at >= ?",
                       (midnight.timestamp(),))["s"]
    pending = store.one("SELECT coalesce(sum(estimate_usd), 0) AS s FROM batches"
                        " WHERE state IN ('intent','unknown','in_progress','ended')")["s"]
    return billed + pending


def calibrate(store: Store, batch_id: int, api_id: str) -> None:
    """Learn characters per token from a collected batch: its body size over its input tokens."""
    row = store.one("""SELECT b.body_bytes AS chars, sum(coalesce(r.input_tokens,0) + coalesce(r.cache_creation_input_tokens,0)
                          + coalesce(r.cache_read_input_tokens,0)) AS tokens, count(r.reuse_key) AS n
                       FROM batches b LEFT JOIN results r ON r.batch_api_id = b.api_id WHERE b.id=?""", (batch_id,))
    requests = store.one("SELECT request_count AS n FROM batches WHERE id=?", (batch_id,))["n"]
    if not row or not row["tokens"] or row["n"] < max(1, requests // 2):
        return
    observed = row["chars"] / row["tokens"]
    old = chars_per_token(store)
    store.set_meta("chars_per_token", f"{0.7 * old + 0.3 * observed:.4f}")
