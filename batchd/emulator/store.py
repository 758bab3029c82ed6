"""The emulator's state: batches, their requests and results, the bill, in SQLite.

One SQLite database holds everything, in a file when a state path is given (so a
restarted emulator, and the ``--offline`` daemon using it, find the batches created
before) or in memory otherwise: one code path, transactional writes, and a request's
params kept as compact JSON text rather than Python objects, which keeps a 100,000-request
batch within a small multiple of its body size.

A batch is finished lazily: the first look at it after its end time computes every
result (in chunks, releasing the lock between them so other calls proceed), then marks it
ended and writes its bill in the same transaction. A crash in between leaves the chunks
already done, and the next look resumes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchd.emulator import engine, ids, lifecycle, params as params_rules
from batchd.emulator.bodies import iter_requests
from batchd.emulator.errors import envelope, invalid, not_found
from batchd.emulator.faults import Faults
from batchd.keys import reuse_key

_CHUNK = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    processing_time REAL NOT NULL,
    error_rate REAL NOT NULL,
    expire_rate REAL NOT NULL,
    request_count INTEGER NOT NULL,
    cancel_initiated_at REAL,
    cancel_delay REAL NOT NULL DEFAULT 0,
    ended_at REAL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    errored INTEGER NOT NULL DEFAULT 0,
    canceled INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    results_bytes INTEGER NOT NULL DEFAULT 0,
    deleted_at REAL
);
CREATE TABLE IF NOT EXISTS requests (
    bseq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    params TEXT,
    pos INTEGER,
    outcome TEXT,
    line BLOB,
    reuse_key TEXT,
    model TEXT,
    usage TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS requests_idx ON requests (bseq, idx);
CREATE INDEX IF NOT EXISTS requests_pos ON requests (bseq, pos, idx);
CREATE TABLE IF NOT EXISTS created (
    n INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    request_count INTEGER NOT NULL,
    custom_ids TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS billed (
    n INTEGER PRIMARY KEY,
    batch_id TEXT,
    custom_id TEXT,
    reuse_key TEXT NOT NULL,
    model TEXT NOT NULL,
    usage TEXT NOT NULL,
    billed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS prompt_cache (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
"""
_COUNTS = ("succeeded", "errored", "canceled", "expired")
_INJECTED_ERRORS = (("api_error", "Internal server error"), ("overloaded_error", "Overloaded"))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Store:
    """All batches and the bill; every method is safe to call from any thread."""

    def __init__(self, path: str | Path | None, *, seed: int, clock: Callable[[], float]) -> None:
        self.path = str(path) if path is not None else None
        self.seed = seed
        self.clock = clock
        self._lock = threading.RLock()
        self._finalizing: set[int] = set()
        if self.path is not None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 30000")
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _next(self, db: sqlite3.Connection, counter: str) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (counter,)).fetchone()
        value = (row[0] if row else 0) + 1
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (counter, value))
        return value

    # -- batches ---------------------------------------------------------------------------

    def create(self, text: str, faults: Faults) -> dict[str, Any]:
        """Create a batch from a create body (ApiError 400 if the API would refuse it)."""
        now = self.clock()
        with self._transaction() as db:
            seq = self._next(db, "batches")
            batch_id = ids.derived("msgbatch", self.seed, seq)
            custom_ids: list[str] = []
            rows: list[tuple[int, int, str, str]] = []
            for index, custom_id, request_params in iter_requests(text):
                custom_ids.append(custom_id)
                rows.append((seq, index, custom_id, _dumps(request_params)))
                if len(rows) >= _CHUNK:
                    db.executemany("INSERT INTO requests (bseq, idx, custom_id, params) VALUES (?, ?, ?, ?)", rows)
                    rows.clear()
            db.executemany("INSERT INTO requests (bseq, idx, custom_id, params) VALUES (?, ?, ?, ?)", rows)
            db.execute(
                "INSERT INTO batches (seq, id, created_at, expires_at, processing_time, error_rate, expire_rate, "
                "request_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, batch_id, now, now + faults.expire_after, faults.processing_time, faults.error_rate,
                 faults.expire_rate, len(custom_ids)))
            db.execute("INSERT INTO created (batch_id, request_count, custom_ids, created_at) VALUES (?, ?, ?, ?)",
                       (batch_id, len(custom_ids), _dumps(custom_ids), now))
        return self._row(batch_id)

    def _row(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM batches WHERE id = ? AND deleted_at IS NULL", (batch_id,))
            row = cursor.fetchone()
            if row is None:
                raise not_found(f"No message batch found with id {batch_id!r}")
            return dict(zip([c[0] for c in cursor.description], row))

    @staticmethod
    def _timeline(row: dict[str, Any]) -> lifecycle.Timeline:
        return lifecycle.Timeline(row["created_at"], row["processing_time"], row["expires_at"],
                                  row["cancel_initiated_at"], row["cancel_delay"])

    def get(self, batch_id: str) -> dict[str, Any]:
        """The batch's row as it stands now (ended and billed first if its time has come)."""
        row = self._row(batch_id)
        if row["ended_at"] is None and self._timeline(row).status(self.clock()) == "ended":
            self._finalize(row)
            row = self._row(batch_id)
        return row

    def page(self, *, limit: int, after_id: str | None, before_id: str | None) -> tuple[list[dict[str, Any]], bool]:
        """A page of batches, newest first, and whether more lie in that direction."""
        with self._lock:
            if after_id is not None:
                rows = self._query("SELECT * FROM batches WHERE deleted_at IS NULL AND seq < ? ORDER BY seq DESC "
                                   "LIMIT ?", (self._seq_of(after_id, "after_id"), limit + 1))
            elif before_id is not None:
                rows = self._query("SELECT * FROM batches WHERE deleted_at IS NULL AND seq > ? ORDER BY seq ASC "
                                   "LIMIT ?", (self._seq_of(before_id, "before_id"), limit + 1))
            else:
                rows = self._query("SELECT * FROM batches WHERE deleted_at IS NULL ORDER BY seq DESC LIMIT ?",
                                   (limit + 1,))
        has_more = len(rows) > limit
        rows = rows[:limit]
        if before_id is not None:
            rows.reverse()
        return [self.get(r["id"]) if r["ended_at"] is None else r for r in rows], has_more

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor = self._db.execute(sql, args)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _seq_of(self, batch_id: str, field: str) -> int:
        row = self._db.execute("SELECT seq FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            raise invalid(f"{field}: no message batch has id {batch_id!r}")
        return row[0]

    def cancel(self, batch_id: str, faults: Faults) -> dict[str, Any]:
        """Start canceling; 400 once the batch has ended (the emulator's choice)."""
        row = self.get(batch_id)
        now = self.clock()
        timeline = self._timeline(row)
        if timeline.status(now) == "ended":
            raise invalid(f"Message batch {batch_id} has already ended and cannot be canceled.")
        if row["cancel_initiated_at"] is None:
            with self._transaction() as db:
                db.execute("UPDATE batches SET cancel_initiated_at = ?, cancel_delay = ? WHERE seq = ? "
                           "AND cancel_initiated_at IS NULL", (now, faults.cancel_delay, row["seq"]))
        return self._row(batch_id)

    def delete(self, batch_id: str) -> None:
        """Forget an ended batch and its results (the bill stays); 400 while it is processing."""
        row = self.get(batch_id)
        if row["ended_at"] is None:
            raise invalid(f"Message batch {batch_id} cannot be deleted while it is still processing; "
                          f"cancel it first and delete it once it has ended.")
        with self._transaction() as db:
            db.execute("DELETE FROM requests WHERE bseq = ?", (row["seq"],))
            db.execute("UPDATE batches SET deleted_at = ? WHERE seq = ?", (self.clock(), row["seq"]))

    def results(self, batch_id: str) -> tuple[int, Iterator[bytes]]:
        """(byte length, chunks of JSONL) of an ended batch's results, in shuffled order."""
        row = self.get(batch_id)
        if row["ended_at"] is None:
            raise invalid(f"Message batch {batch_id} has not finished processing yet: its results are not "
                          f"available until processing_status is 'ended'.")
        if self._timeline(row).archived(self.clock()):
            raise not_found(f"The results of message batch {batch_id} have been archived and are no longer "
                            f"available.")
        return row["results_bytes"], self._stream(row["seq"])

    def _stream(self, seq: int) -> Iterator[bytes]:
        last = (-1, -1)
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT pos, idx, line FROM requests WHERE bseq = ? AND (pos, idx) > (?, ?) "
                    "ORDER BY pos, idx LIMIT ?", (seq, last[0], last[1], _CHUNK)).fetchall()
            if not rows:
                return
            last = (rows[-1][0], rows[-1][1])
            yield b"".join(line + b"\n" for _, _, line in rows)

    def advance_all(self) -> None:
        """End every batch whose time has come, so that the bill is complete."""
        with self._lock:
            due = self._query("SELECT * FROM batches WHERE ended_at IS NULL AND deleted_at IS NULL", ())
        now = self.clock()
        for row in due:
            if self._timeline(row).status(now) == "ended":
                self._finalize(row)

    # -- finishing a batch -------------------------------------------------------------------

    def _finalize(self, row: dict[str, Any]) -> None:
        """Compute and store every result of a batch whose end has passed, then end it."""
        seq = row["seq"]
        with self._lock:
            if seq in self._finalizing:
                return
            self._finalizing.add(seq)
        try:
            timeline = self._timeline(row)
            while True:
                with self._lock:
                    pending = self._db.execute(
                        "SELECT idx, custom_id, params FROM requests WHERE bseq = ? AND outcome IS NULL "
                        "ORDER BY idx LIMIT ?", (seq, _CHUNK)).fetchall()
                    if not pending:
                        break
                    updates = [self._outcome(row, timeline, *item) for item in pending]
                    with self._transaction() as db:
                        db.executemany(
                            "UPDATE requests SET pos = ?, outcome = ?, line = ?, reuse_key = ?, model = ?, "
                            "usage = ?, params = NULL WHERE bseq = ? AND idx = ?", updates)
            with self._transaction() as db:
                counts = dict(db.execute("SELECT outcome, COUNT(*) FROM requests WHERE bseq = ? GROUP BY outcome",
                                         (seq,)).fetchall())
                size = db.execute("SELECT COALESCE(SUM(LENGTH(line) + 1), 0) FROM requests WHERE bseq = ?",
                                  (seq,)).fetchone()[0]
                changed = db.execute(
                    "UPDATE batches SET ended_at = ?, succeeded = ?, errored = ?, canceled = ?, expired = ?, "
                    "results_bytes = ? WHERE seq = ? AND ended_at IS NULL",
                    (timeline.end_at, *(counts.get(k, 0) for k in _COUNTS), size, seq)).rowcount
                if changed:
                    db.execute(
                        "INSERT INTO billed (batch_id, custom_id, reuse_key, model, usage, billed_at) "
                        "SELECT ?, custom_id, reuse_key, model, usage, ? FROM requests "
                        "WHERE bseq = ? AND outcome = 'succeeded' ORDER BY idx",
                        (row["id"], timeline.end_at, seq))
        finally:
            with self._lock:
                self._finalizing.discard(seq)

    def _outcome(self, row: dict[str, Any], timeline: lifecycle.Timeline, index: int, custom_id: str,
                 params_text: str) -> tuple[Any, ...]:
        draws = lifecycle.dice(self.seed, row["id"], index)
        fate = lifecycle.fate(timeline, draws, row["error_rate"], row["expire_rate"])
        key = model = usage = None
        result: dict[str, Any]
        if fate in ("canceled", "expired"):
            result = {"type": fate}
        else:
            request_params = json.loads(params_text)
            error = params_rules.error_of(request_params, mode="batch")
            if error is not None:
                result = {"type": "errored", "error": envelope(error.error_type, error.message, None)}
            elif fate == "failed":
                error_type, message = _INJECTED_ERRORS[int(draws.kind * len(_INJECTED_ERRORS))]
                result = {"type": "errored", "error": envelope(error_type, message, None)}
            else:
                message = engine.answer(
                    request_params, message_id=ids.derived("msg", self.seed, row["id"], custom_id),
                    tool_use_id=ids.derived("toolu", self.seed, row["id"], custom_id), service_tier="batch",
                    cache=self, now=timeline.finish_time(draws.finish))
                result = {"type": "succeeded", "message": message}
                key, model, usage = reuse_key(request_params), message["model"], _dumps(message["usage"])
        line = _dumps({"custom_id": custom_id, "result": result}).encode("utf-8")
        return draws.order, result["type"], line, key, model, usage, row["seq"], index

    def touch(self, key: str, ttl_seconds: float, now: float) -> bool:
        """The engine's prompt cache: True for a fresh hit; every use extends the entry."""
        with self._lock:
            found = self._db.execute("SELECT expires_at FROM prompt_cache WHERE key = ?", (key,)).fetchone()
            self._db.execute("INSERT OR REPLACE INTO prompt_cache (key, expires_at) VALUES (?, ?)",
                             (key, now + ttl_seconds))
        return found is not None and found[0] >= now

    # -- messages ------------------------------------------------------------------------------

    def message(self, request_params: dict[str, Any]) -> dict[str, Any]:
        """Answer a ``POST /v1/messages`` call and bill it (ApiError if params are invalid)."""
        params_rules.check(request_params, mode="messages")
        now = self.clock()
        with self._transaction() as db:
            n = self._next(db, "messages")
            message = engine.answer(request_params, message_id=ids.derived("msg", self.seed, "messages", n),
                                    tool_use_id=ids.derived("toolu", self.seed, "messages", n),
                                    service_tier="standard", cache=self, now=now)
            db.execute("INSERT INTO billed (batch_id, custom_id, reuse_key, model, usage, billed_at) "
                       "VALUES (NULL, NULL, ?, ?, ?, ?)",
                       (reuse_key(request_params), message["model"], _dumps(message["usage"]), now))
        return message

    # -- the record ----------------------------------------------------------------------------

    def created_log(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT batch_id, request_count, custom_ids, created_at FROM created "
                                    "ORDER BY n").fetchall()
        return [{"batch_id": b, "request_count": n, "custom_ids": json.loads(c), "created_at": ids.rfc3339(t)}
                for b, n, c, t in rows]

    def billed_log(self) -> list[dict[str, Any]]:
        self.advance_all()
        with self._lock:
            rows = self._db.execute("SELECT batch_id, custom_id, reuse_key, model, usage, billed_at FROM billed "
                                    "ORDER BY n").fetchall()
        return [{"batch_id": b, "custom_id": c, "reuse_key": k, "model": m, "usage": json.loads(u),
                 "billed_at": ids.rfc3339(t)} for b, c, k, m, u, t in rows]


def render(row: dict[str, Any], now: float, results_base: str) -> dict[str, Any]:
    """The MessageBatch object for a batch row, as seen at ``now``."""
    timeline = Store._timeline(row)
    ended = row["ended_at"] is not None
    status = "ended" if ended else ("canceling" if row["cancel_initiated_at"] is not None else "in_progress")
    counts = {"processing": 0 if ended else row["request_count"]}
    counts.update({k: row[k] if ended else 0 for k in _COUNTS})
    archived = timeline.archived(now)
    return {
        "id": row["id"],
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "ended_at": ids.rfc3339(row["ended_at"]) if ended else None,
        "created_at": ids.rfc3339(row["created_at"]),
        "expires_at": ids.rfc3339(row["expires_at"]),
        "cancel_initiated_at": ids.rfc3339(row["cancel_initiated_at"]) if row["cancel_initiated_at"] else None,
        "archived_at": ids.rfc3339(row["created_at"] + lifecycle.RESULTS_RETENTION) if archived else None,
        "results_url": f"{results_base}/v1/messages/batches/{row['id']}/results" if ended else None,
    }
