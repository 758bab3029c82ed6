"""The emulator's state: batches, their requests and results, the bill, in SQLite.

One SQLite database holds everything, in a file when a state path is given (so a
restarted emulator, and the ``--offline`` daemon using it, find the batches created
before) or in memory otherwise: one code path, transactional writes. Requests and results
are kept in zlib-compressed chunks of 1,000 (JSON, not Python objects), so a
100,000-request batch costs a fraction of its body size once created; the bill keeps
token counts as integers.

A batch is finished lazily: the first look at it after its end time computes its results
chunk by chunk (releasing the lock between chunks so that other calls proceed), then marks
it ended in one last transaction, which is also what makes its bill visible. A crash in
between leaves the chunks already done, and the next look resumes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
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
_VERSION = 1
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
-- [[custom_id, params], ...] of requests chunk*1000 .. chunk*1000+999, zlib'd JSON
CREATE TABLE IF NOT EXISTS request_chunks (
    bseq INTEGER NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (bseq, chunk));
-- the JSONL lines of one request chunk's results, shuffled, zlib'd
CREATE TABLE IF NOT EXISTS result_chunks (
    bseq INTEGER NOT NULL, chunk INTEGER NOT NULL, sort_key INTEGER NOT NULL, size INTEGER NOT NULL,
    succeeded INTEGER NOT NULL, errored INTEGER NOT NULL, canceled INTEGER NOT NULL, expired INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (bseq, chunk));
CREATE TABLE IF NOT EXISTS created (
    n INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    request_count INTEGER NOT NULL,
    custom_ids TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- batch rows count once their batch has ended; messages rows (bseq NULL) at once
CREATE TABLE IF NOT EXISTS billed (
    n INTEGER PRIMARY KEY,
    bseq INTEGER,
    custom_id TEXT,
    reuse_key BLOB NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_5m INTEGER NOT NULL,
    cache_1h INTEGER NOT NULL,
    cache_read INTEGER NOT NULL,
    service_tier TEXT NOT NULL,
    billed_at REAL
);
CREATE INDEX IF NOT EXISTS billed_batch ON billed (bseq);
CREATE TABLE IF NOT EXISTS prompt_cache (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
"""
_COUNTS = ("succeeded", "errored", "canceled", "expired")
_INJECTED_ERRORS = (("api_error", "Internal server error"), ("overloaded_error", "Overloaded"))
_BILL_COLUMNS = "bseq, custom_id, reuse_key, model, input_tokens, output_tokens, cache_5m, cache_1h, cache_read, " \
                "service_tier, billed_at"

#: Batches up to this many requests are answered within the poll that finds them ended.
_SMALL = 100


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Store:
    """All batches and the bill; every method is safe to call from any thread."""

    def __init__(self, path: str | Path | None, *, seed: int, clock: Callable[[], float]) -> None:
        self.path = str(path) if path is not None else None
        self.seed = seed
        self.clock = clock
        self._lock = threading.RLock()
        self._finalized = threading.Condition(self._lock)
        self._finalizing: set[int] = set()
        self._workers: list[threading.Thread] = []
        self._closed = False
        if self.path is not None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 30000")
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _VERSION):
            self._db.close()
            raise sqlite3.DatabaseError(f"state file of another emulator version ({version}, expected {_VERSION})")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {_VERSION}")

    def close(self) -> None:
        """Let background work stop at a chunk boundary, then release the database."""
        self._closed = True
        for worker in list(self._workers):
            worker.join()
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
            pending: list[tuple[str, dict[str, Any]]] = []
            for index, custom_id, request_params in iter_requests(text):
                custom_ids.append(custom_id)
                pending.append((custom_id, request_params))
                if len(pending) == _CHUNK:
                    self._store_chunk(db, seq, index // _CHUNK, pending)
            if pending:
                self._store_chunk(db, seq, (len(custom_ids) - 1) // _CHUNK, pending)
            db.execute(
                "INSERT INTO batches (seq, id, created_at, expires_at, processing_time, error_rate, expire_rate, "
                "request_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, batch_id, now, now + faults.expire_after, faults.processing_time, faults.error_rate,
                 faults.expire_rate, len(custom_ids)))
            db.execute("INSERT INTO created (batch_id, request_count, custom_ids, created_at) VALUES (?, ?, ?, ?)",
                       (batch_id, len(custom_ids), _dumps(custom_ids), now))
        return self._row(batch_id)

    @staticmethod
    def _store_chunk(db: sqlite3.Connection, seq: int, chunk: int, pending: list[tuple[str, dict[str, Any]]]) -> None:
        data = zlib.compress(_dumps(pending).encode("utf-8"), 1)
        db.execute("INSERT INTO request_chunks (bseq, chunk, data) VALUES (?, ?, ?)", (seq, chunk, data))
        pending.clear()

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
        """The batch's row as it stands now. A batch whose time has come is ended and
        billed in the background, so that this poll does not wait for it (the batch shows
        ``in_progress`` until its results are all computed); a small one is usually done
        by the time the row is read again."""
        row = self._row(batch_id)
        if row["ended_at"] is None and self._timeline(row).status(self.clock()) == "ended":
            if row["request_count"] <= _SMALL:
                self._finalize(row)
            else:
                self._finalize_in_background(row)
            row = self._row(batch_id)
        return row

    def _finalize_in_background(self, row: dict[str, Any]) -> None:
        with self._lock:
            if row["seq"] in self._finalizing or self._closed:
                return
            self._workers = [w for w in self._workers if w.is_alive()]
            worker = threading.Thread(target=self._finalize, args=(row,), name=f"finish-{row['id']}", daemon=True)
            self._workers.append(worker)
            worker.start()

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
            db.execute("DELETE FROM request_chunks WHERE bseq = ?", (row["seq"],))
            db.execute("DELETE FROM result_chunks WHERE bseq = ?", (row["seq"],))
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
        after = (-1, -1)
        while True:
            with self._lock:
                found = self._db.execute(
                    "SELECT sort_key, chunk, data FROM result_chunks WHERE bseq = ? AND (sort_key, chunk) > (?, ?) "
                    "ORDER BY sort_key, chunk LIMIT 1", (seq, *after)).fetchone()
            if found is None:
                return
            after = (found[0], found[1])
            yield zlib.decompress(found[2])

    def advance_all(self) -> None:
        """End every batch whose time has come, so that the bill is complete."""
        with self._lock:
            due = self._query("SELECT * FROM batches WHERE ended_at IS NULL AND deleted_at IS NULL", ())
        now = self.clock()
        for row in due:
            if self._timeline(row).status(now) == "ended":
                with self._lock:
                    while row["seq"] in self._finalizing:
                        self._finalized.wait()
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
                    if self._closed:
                        return
                    found = self._db.execute("SELECT chunk, data FROM request_chunks WHERE bseq = ? ORDER BY chunk "
                                             "LIMIT 1", (seq,)).fetchone()
                    if found is None:
                        break
                    self._finish_chunk(row, timeline, found[0], json.loads(zlib.decompress(found[1])))
            with self._transaction() as db:
                totals = db.execute("SELECT COALESCE(SUM(size), 0), COALESCE(SUM(succeeded), 0), "
                                    "COALESCE(SUM(errored), 0), COALESCE(SUM(canceled), 0), "
                                    "COALESCE(SUM(expired), 0) FROM result_chunks WHERE bseq = ?", (seq,)).fetchone()
                db.execute("UPDATE batches SET ended_at = ?, results_bytes = ?, succeeded = ?, errored = ?, "
                           "canceled = ?, expired = ? WHERE seq = ? AND ended_at IS NULL",
                           (timeline.end_at, *totals, seq))
        finally:
            with self._lock:
                self._finalizing.discard(seq)
                self._finalized.notify_all()

    def _finish_chunk(self, row: dict[str, Any], timeline: lifecycle.Timeline, chunk: int,
                      requests: list[list[Any]]) -> None:
        """Results and bill of one chunk, stored in one transaction with the chunk's removal."""
        lines: list[tuple[int, bytes]] = []
        bills: list[tuple[Any, ...]] = []
        counts = dict.fromkeys(_COUNTS, 0)
        for offset, (custom_id, request_params) in enumerate(requests):
            index = chunk * _CHUNK + offset
            draws = lifecycle.dice(self.seed, row["id"], index)
            result = self._result(row, timeline, draws, custom_id, request_params)
            counts[result["type"]] += 1
            lines.append((draws.order, _dumps({"custom_id": custom_id, "result": result}).encode("utf-8")))
            if result["type"] == "succeeded":
                bills.append(_bill(row["seq"], custom_id, request_params, result["message"], None))
        lines.sort(key=lambda item: item[0])
        data = b"".join(line + b"\n" for _, line in lines)
        with self._transaction() as db:
            taken = db.execute("DELETE FROM request_chunks WHERE bseq = ? AND chunk = ?", (row["seq"], chunk)).rowcount
            if not taken:
                return  # another emulator on the same state file finished this chunk first
            db.execute("INSERT INTO result_chunks (bseq, chunk, sort_key, size, succeeded, errored, canceled, "
                       "expired, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (row["seq"], chunk, lines[0][0] if chunk else lifecycle.LAST, len(data),
                        *(counts[k] for k in _COUNTS), zlib.compress(data, 1)))
            db.executemany(f"INSERT INTO billed ({_BILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", bills)

    def _result(self, row: dict[str, Any], timeline: lifecycle.Timeline, draws: lifecycle.Dice, custom_id: str,
                request_params: dict[str, Any]) -> dict[str, Any]:
        fate = lifecycle.fate(timeline, draws, row["error_rate"], row["expire_rate"])
        if fate in ("canceled", "expired"):
            return {"type": fate}
        error = params_rules.error_of(request_params, mode="batch")
        if error is not None:
            return {"type": "errored", "error": envelope(error.error_type, error.message, None)}
        if fate == "failed":
            error_type, message = _INJECTED_ERRORS[int(draws.kind * len(_INJECTED_ERRORS))]
            return {"type": "errored", "error": envelope(error_type, message, None)}
        message = engine.answer(
            request_params, message_id=ids.derived("msg", self.seed, row["id"], custom_id),
            tool_use_id=ids.derived("toolu", self.seed, row["id"], custom_id), service_tier="batch",
            cache=self, now=timeline.finish_time(draws.finish))
        return {"type": "succeeded", "message": message}

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
            db.execute(f"INSERT INTO billed ({_BILL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       _bill(None, None, request_params, message, now))
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
            rows = self._db.execute(
                "SELECT b.id, l.custom_id, l.reuse_key, l.model, l.input_tokens, l.output_tokens, l.cache_5m, "
                "l.cache_1h, l.cache_read, l.service_tier, COALESCE(l.billed_at, b.ended_at) AS at "
                "FROM billed l LEFT JOIN batches b ON b.seq = l.bseq "
                "WHERE l.bseq IS NULL OR b.ended_at IS NOT NULL ORDER BY at, l.n").fetchall()
        return [{"batch_id": batch_id, "custom_id": custom_id, "reuse_key": key.hex(), "model": model,
                 "usage": engine.usage(inp, out, service_tier=tier, creation_5m=c5, creation_1h=c1h, read=read),
                 "billed_at": ids.rfc3339(at)}
                for batch_id, custom_id, key, model, inp, out, c5, c1h, read, tier, at in rows]


def _bill(seq: int | None, custom_id: str | None, request_params: dict[str, Any], message: dict[str, Any],
          at: float | None) -> tuple[Any, ...]:
    """A row of the bill: who, which params (by reuse key), and the token counts."""
    usage = message["usage"]
    return (seq, custom_id, bytes.fromhex(reuse_key(request_params)), message["model"], usage["input_tokens"],
            usage["output_tokens"], usage["cache_creation"]["ephemeral_5m_input_tokens"],
            usage["cache_creation"]["ephemeral_1h_input_tokens"], usage["cache_read_input_tokens"],
            usage["service_tier"], at)


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
        "cancel_initiated_at": ids.rfc3339(row["cancel_initiated_at"])
        if row["cancel_initiated_at"] is not None else None,
        "archived_at": ids.rfc3339(row["created_at"] + lifecycle.RESULTS_RETENTION) if archived else None,
        "results_url": f"{results_base}/v1/messages/batches/{row['id']}/results" if ended else None,
    }
