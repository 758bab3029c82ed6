"""The state file: documents, requests and batches, each transition one transaction.

No document text is kept here: requests are rebuilt from the original, which stays in
the inbox until its document is complete. What is kept is what a restart needs to lose
nothing and pay for nothing twice: which request went into which batch, which batch is
about to be created (committed and synced *before* the create call), and the answers
already paid for, by reuse key.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import string
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import sqlite_utils

#: Request states. ``retried`` rows are earlier attempts, replaced by a newer row.
ACTIVE = ("queued", "waiting", "submitting", "in_flight")
#: Per-request outcomes that are sent again in a later batch, up to batch.max_attempts.
RETRYABLE = {"api_error", "overloaded_error", "rate_limit_error", "timeout_error", "expired"}
#: Per-request errors no retry fixes and no document is to blame for (bad key, billing,
#: permission, unknown model): the request waits again and the queue is held.
HOLDING = {"authentication_error", "billing_error", "permission_error", "not_found_error"}


class StateLocked(Exception):
    """Another ``batchd run`` holds the state file."""


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("""CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        sha256 TEXT, bytes INTEGER, size INTEGER, mtime_ns INTEGER,
        state TEXT NOT NULL,            -- active | finishing | finished | abandoned
        status TEXT,                    -- done | failed, once finishing
        error TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        folder TEXT UNIQUE,             -- outbox folder, relative to the outbox
        original TEXT,
        taken_at REAL NOT NULL,
        finished_at REAL)""")
    db.execute("CREATE INDEX documents_source ON documents(source, state)")
    db.execute("CREATE INDEX documents_state ON documents(state)")
    db.execute("""CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        api_id TEXT UNIQUE,
        state TEXT NOT NULL,            -- intent | unknown | in_progress | ended | collected | rejected | abandoned
        request_count INTEGER NOT NULL,
        body_bytes INTEGER NOT NULL,
        intent_at REAL NOT NULL,
        failed_at REAL,
        created_at REAL,
        ended_at REAL,
        next_poll REAL,
        poll_interval REAL,
        counts TEXT,
        error TEXT)""")
    db.execute("CREATE INDEX batches_state ON batches(state)")
    db.execute("""CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id),
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        custom_id TEXT UNIQUE,
        reuse_key TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,            -- queued | waiting | submitting | in_flight | final | retried | dropped
        outcome TEXT,                   -- succeeded | errored | expired | canceled | failed
        error TEXT,
        batch_id INTEGER REFERENCES batches(id),
        reused_from INTEGER,
        queued_at REAL NOT NULL)""")
    db.execute("CREATE INDEX requests_document ON requests(document_id)")
    db.execute("CREATE INDEX requests_state ON requests(state, id)")
    db.execute("CREATE INDEX requests_batch ON requests(batch_id)")
    db.execute("CREATE INDEX requests_key ON requests(reuse_key, state)")
    db.execute("""CREATE TABLE results (
        reuse_key TEXT PRIMARY KEY,
        request_id INTEGER NOT NULL,
        custom_id TEXT NOT NULL,
        batch_api_id TEXT,
        model TEXT,
        stop_reason TEXT,
        input_tokens INTEGER, output_tokens INTEGER,
        cache_creation_input_tokens INTEGER, cache_read_input_tokens INTEGER,
        cost_usd REAL,
        realtime_usd REAL,
        message TEXT NOT NULL,
        received_at REAL NOT NULL)""")


def _m002_user_cancel(db: sqlite_utils.Database) -> None:
    """Batches the operator canceled: their canceled requests are final, not sent again."""
    db.execute("ALTER TABLE batches ADD COLUMN user_canceled INTEGER NOT NULL DEFAULT 0")


def _m003_batch_cost(db: sqlite_utils.Database) -> None:
    """A batch's estimated cost before it goes out, for the daily budget."""
    db.execute("ALTER TABLE batches ADD COLUMN estimate_usd REAL")


def _m004_results_indexes(db: sqlite_utils.Database) -> None:
    """Answers looked up by the request that got them (every finished document does) and by
    batch (every collected batch's cost): indexes, not a scan of every answer so far."""
    db.execute("CREATE INDEX IF NOT EXISTS results_request ON results(request_id)")
    db.execute("CREATE INDEX IF NOT EXISTS results_batch ON results(batch_api_id)")


def _m005_results_budget_indexes(db: sqlite_utils.Database) -> None:
    """The budget's sums over every answer (average answer length before each batch, what
    was billed today): read from small covering indexes, not from the answers' rows with
    their messages, a scan that grew with every batch."""
    db.execute("CREATE INDEX IF NOT EXISTS results_output_tokens ON results(output_tokens)")
    db.execute("CREATE INDEX IF NOT EXISTS results_received ON results(received_at, cost_usd)")


#: Append-only: never edit a migration once released, add a new one.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m001_initial, _m002_user_cancel, _m003_batch_cost,
                                                              _m004_results_indexes, _m005_results_budget_indexes]


@dataclass
class Outcome:
    """A request's final answer as the API gave it."""

    custom_id: str
    type: str  # succeeded | errored | expired | canceled
    message: dict[str, Any] | None = None
    error_type: str | None = None
    error: str | None = None


class Store:
    """The one owner of the state file; every method that changes it is one transaction."""

    def __init__(self, path: Path, *, lock: bool = False) -> None:
        self.path = path
        # The state holds answers paid for: a folder batchd creates for it is private.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        if lock:
            self._take_lock()
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self.prefix = self._prefix()

    # -- set-up --------------------------------------------------------------------

    def _take_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateLocked(f"{self.path} is in use by another batchd run") from None
        self._lock_fd = fd

    def _migrate(self) -> None:
        with self.atomic():
            self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(self.db)
                    self.conn.execute("INSERT INTO migrations VALUES (?, ?)", (migration.__name__, time.time()))

    def _prefix(self) -> str:
        """A short id unique to this state file, at the start of every custom_id."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='prefix'").fetchone()
        if row:
            return row[0]
        alphabet = string.ascii_letters + string.digits
        prefix = "bd" + "".join(secrets.choice(alphabet) for _ in range(8))
        with self.atomic():
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('prefix', ?)", (prefix,))
        return self.conn.execute("SELECT value FROM meta WHERE key='prefix'").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[None]:
        """One transaction; ``durable`` syncs it to disk at commit (for intent rows)."""
        if durable:
            self.conn.execute("PRAGMA synchronous=FULL")
        try:
            with self.db.atomic():
                yield
        finally:
            if durable:
                self.conn.execute("PRAGMA synchronous=NORMAL")

    def q(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        cur = self.conn.execute(sql, tuple(params))
        cols = [d[0] for d in cur.description] if cur.description else []
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self.q(sql, params)
        return rows[0] if rows else None

    def custom_id(self, request_id: int) -> str:
        return f"{self.prefix}-{request_id}"

    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key=?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.atomic():
            if value is None:
                self.conn.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- documents -----------------------------------------------------------------

    def active_document(self, source: str) -> dict[str, Any] | None:
        """The document being handled for this inbox path, if any."""
        return self.one("SELECT * FROM documents WHERE source=? AND state IN ('active','finishing') "
                        "ORDER BY id DESC LIMIT 1", (source,))

    def finished_in_place(self, source: str, size: int, mtime_ns: int) -> bool:
        """A finished document whose original could not be moved and is still this very file."""
        return self.one("SELECT 1 AS x FROM documents WHERE source=? AND state='finished' AND original IS NULL"
                        " AND size=? AND mtime_ns=? LIMIT 1", (source, size, mtime_ns)) is not None

    def add_document(self, doc: dict[str, Any], requests: list[dict[str, Any]], now: float) -> int:
        """Record a taken document with its requests (reusing answers already paid for)."""
        with self.atomic():
            return self._add_document(doc, requests, now)

    def add_documents(self, items: list[tuple[dict[str, Any], list[dict[str, Any]]]], now: float) -> list[int]:
        """Many documents in one transaction: intake of a full inbox is one commit, not thousands."""
        with self.atomic():
            return [self._add_document(doc, reqs, now) for doc, reqs in items]

    def _add_document(self, doc: dict[str, Any], requests: list[dict[str, Any]], now: float) -> int:
        cur = self.conn.execute(
            "INSERT INTO documents (source, sha256, bytes, size, mtime_ns, state, status, error, truncated, taken_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (doc["source"], doc.get("sha256"), doc.get("bytes"), doc.get("size"), doc.get("mtime_ns"),
             "active", None, doc.get("error"), int(bool(doc.get("truncated"))), now))
        doc_id = cur.lastrowid
        for req in requests:
            self._insert_request(doc_id, req["task"], 1, req.get("reuse_key"), req.get("size", 0),
                                 req.get("error"), now)
        return doc_id

    def _insert_request(self, doc_id: int, task: str, attempt: int, key: str | None, size: int,
                        error: str | None, now: float) -> int:
        if error is not None:
            cur = self.conn.execute(
                "INSERT INTO requests (document_id, task, attempt, state, outcome, error, queued_at)"
                " VALUES (?,?,?,'final','failed',?,?)", (doc_id, task, attempt, error, now))
            return cur.lastrowid
        state, reused_from = "queued", None
        done = self.conn.execute("SELECT request_id FROM results WHERE reuse_key=?", (key,)).fetchone()
        if done:
            state, reused_from = "final", done[0]
        elif self.conn.execute("SELECT 1 FROM requests WHERE reuse_key=? AND state IN "
                               "('queued','submitting','in_flight') LIMIT 1", (key,)).fetchone():
            state = "waiting"
        cur = self.conn.execute(
            "INSERT INTO requests (document_id, task, attempt, reuse_key, size, state, outcome, reused_from, queued_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (doc_id, task, attempt, key, size, state, "succeeded" if done else None, reused_from, now))
        request_id = cur.lastrowid
        self.conn.execute("UPDATE requests SET custom_id=? WHERE id=?", (self.custom_id(request_id), request_id))
        return request_id

    def abandon_document(self, doc_id: int, reason: str) -> None:
        """Drop a document whose file changed or vanished; answers still in flight are ignored."""
        with self.atomic():
            self.conn.execute("UPDATE documents SET state='abandoned', error=? WHERE id=?", (reason, doc_id))
            self.conn.execute("UPDATE requests SET state='dropped' WHERE document_id=? AND state IN "
                              "('queued','waiting')", (doc_id,))
            self._wake_waiters_of_dropped()

    def _wake_waiters_of_dropped(self) -> None:
        """Waiting requests whose leader was dropped go out themselves."""
        self.conn.execute("""UPDATE requests SET state='queued' WHERE state='waiting' AND id IN (
            SELECT w.id FROM requests w WHERE w.state='waiting' AND NOT EXISTS (
              SELECT 1 FROM requests l WHERE l.reuse_key=w.reuse_key AND l.state IN ('queued','submitting','in_flight'))
            AND NOT EXISTS (SELECT 1 FROM results r WHERE r.reuse_key=w.reuse_key))""")
        self.conn.execute("""UPDATE requests SET state='final', outcome='succeeded',
            reused_from=(SELECT request_id FROM results r WHERE r.reuse_key=requests.reuse_key)
            WHERE state='waiting' AND reuse_key IN (SELECT reuse_key FROM results)""")

    def complete_documents(self, limit: int = 500) -> list[dict[str, Any]]:
        """Active documents whose every current request has a final outcome."""
        return self.q("""SELECT d.* FROM documents d WHERE d.state='active' AND NOT EXISTS (
            SELECT 1 FROM requests r WHERE r.document_id=d.id AND r.state IN ('queued','waiting','submitting','in_flight'))
            ORDER BY d.id LIMIT ?""", (limit,))

    def finishing_documents(self) -> list[dict[str, Any]]:
        return self.q("SELECT * FROM documents WHERE state='finishing' ORDER BY id")

    def reserve_folder(self, doc_id: int, folder: str, original: str, status: str, error: str | None) -> None:
        with self.atomic():
            self.conn.execute("UPDATE documents SET state='finishing', folder=?, original=?, status=?, error=?"
                              " WHERE id=?", (folder, original, status, error, doc_id))

    def folder_taken(self, folder: str) -> bool:
        return self.one("SELECT 1 AS x FROM documents WHERE folder=?", (folder,)) is not None

    def finish_many(self, docs: list[tuple[int, str | None]], now: float) -> None:
        """Documents (id, original) whose result.json is in place, finished in one transaction."""
        with self.atomic():
            self.conn.executemany("UPDATE documents SET state='finished', finished_at=?, original=? WHERE id=?",
                                  [(now, original, doc_id) for doc_id, original in docs])

    def document_requests(self, doc_id: int) -> list[dict[str, Any]]:
        """The current (latest attempt) request of each task, with its answer if any."""
        return self.q("""SELECT r.*, b.api_id AS batch_api_id, res.message, res.cost_usd, res.custom_id AS res_custom_id,
               res.batch_api_id AS res_batch_api_id
            FROM requests r
            LEFT JOIN batches b ON b.id = r.batch_id
            LEFT JOIN results res ON res.request_id = COALESCE(r.reused_from, r.id)
            WHERE r.document_id=? AND r.state NOT IN ('retried','dropped') ORDER BY r.id""", (doc_id,))

    # -- batching ------------------------------------------------------------------

    def queued_summary(self) -> tuple[int, int, float | None]:
        """(count, bytes, oldest queued_at) of requests waiting for a batch."""
        row = self.conn.execute("SELECT count(*), coalesce(sum(size),0), min(queued_at) FROM requests"
                                " WHERE state='queued'").fetchone()
        return row[0], row[1], row[2]

    def take_queued(self, max_requests: int, max_bytes: int, overhead: int) -> list[dict[str, Any]]:
        """The oldest queued requests that fit in one create body."""
        chosen, total = [], overhead
        for row in self.conn.execute("SELECT id, document_id, task, custom_id, reuse_key, size FROM requests"
                                     " WHERE state='queued' ORDER BY id LIMIT ?", (max_requests,)):
            rid, doc_id, task, custom_id, key, size = row
            if chosen and total + size + 1 > max_bytes:
                break
            total += size + 1
            chosen.append({"id": rid, "document_id": doc_id, "task": task, "custom_id": custom_id,
                           "reuse_key": key, "size": size})
        return chosen

    def record_intent(self, request_ids: list[int], body_bytes: int, now: float, estimate_usd: float = 0.0) -> int:
        """Commit, synced, that these requests are about to go out in one create call."""
        with self.atomic(durable=True):
            cur = self.conn.execute("INSERT INTO batches (state, request_count, body_bytes, intent_at, estimate_usd)"
                                    " VALUES ('intent', ?, ?, ?, ?)", (len(request_ids), body_bytes, now, estimate_usd))
            batch_id = cur.lastrowid
            self._set_requests(request_ids, "state='submitting', batch_id=?", (batch_id,))
        return batch_id

    def _set_requests(self, ids: list[int], assignment: str, params: tuple = ()) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            self.conn.execute(f"UPDATE requests SET {assignment} WHERE id IN ({','.join('?' * len(chunk))})",
                              (*params, *chunk))

    def batch_created(self, batch_id: int, api_id: str, created_at: float, poll: float, now: float) -> None:
        with self.atomic():
            self.conn.execute("UPDATE batches SET api_id=?, state='in_progress', created_at=?, next_poll=?,"
                              " poll_interval=? WHERE id=?", (api_id, created_at, now + poll, poll, batch_id))
            self.conn.execute("UPDATE requests SET state='in_flight' WHERE batch_id=? AND state='submitting'",
                              (batch_id,))

    def batch_rejected(self, batch_id: int, error: str, *, requeue: bool, now: float) -> None:
        """The create was refused before any work: its requests wait again (or fail, if never sendable)."""
        with self.atomic():
            self.conn.execute("UPDATE batches SET state='rejected', error=?, failed_at=? WHERE id=?",
                              (error, now, batch_id))
            if requeue:
                self.conn.execute("UPDATE requests SET state='queued', batch_id=NULL WHERE batch_id=?"
                                  " AND state='submitting'", (batch_id,))
            else:
                ids = [r["id"] for r in self.q("SELECT id FROM requests WHERE batch_id=? AND state='submitting'",
                                               (batch_id,))]
                self._set_requests(ids, "state='final', outcome='errored', error=?", (error,))
                self._resolve_waiters_with_failure(ids)

    def batch_unknown(self, batch_id: int, error: str, now: float) -> None:
        """The create's outcome is unknown; its requests are held until it is resolved."""
        with self.atomic():
            self.conn.execute("UPDATE batches SET state='unknown', error=?, failed_at=coalesce(failed_at, ?)"
                              " WHERE id=?", (error, now, batch_id))

    def batch_never_created(self, batch_id: int, now: float) -> None:
        with self.atomic():
            self.conn.execute("UPDATE batches SET state='abandoned', error=coalesce(error,'') ||"
                              " ' (resolved: never created)' WHERE id=?", (batch_id,))
            self.conn.execute("UPDATE requests SET state='queued', batch_id=NULL WHERE batch_id=? AND"
                              " state='submitting'", (batch_id,))

    def unresolved_batches(self) -> list[dict[str, Any]]:
        return self.q("SELECT * FROM batches WHERE state IN ('intent','unknown') ORDER BY id")

    def batch_custom_ids(self, batch_id: int) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT custom_id FROM requests WHERE batch_id=?", (batch_id,))}

    def claimed_api_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT api_id FROM batches WHERE api_id IS NOT NULL")}

    def batches_to_poll(self, now: float) -> list[dict[str, Any]]:
        return self.q("SELECT * FROM batches WHERE state IN ('in_progress','ended') AND coalesce(next_poll,0) <= ?"
                      " ORDER BY next_poll", (now,))

    def next_poll_at(self) -> float | None:
        row = self.conn.execute("SELECT min(next_poll) FROM batches WHERE state='in_progress'").fetchone()
        return row[0]

    def batch_polled(self, batch_id: int, status: str, counts: dict[str, int], next_poll: float,
                     interval: float, ended_at: float | None) -> None:
        with self.atomic():
            self.conn.execute("UPDATE batches SET state=?, counts=?, next_poll=?, poll_interval=?, ended_at=?"
                              " WHERE id=?", ("ended" if status == "ended" else "in_progress",
                                             json.dumps(counts), next_poll, interval, ended_at, batch_id))

    def record_outcomes(self, batch_id: int, api_id: str, outcomes: list[Outcome], max_attempts: int,
                        costs: Callable[[dict[str, Any]], tuple[float | None, float | None]], now: float) -> list[str]:
        """Apply a chunk of results in one transaction; returns the errors that hold the queue."""
        holding: list[str] = []
        user_canceled = bool(self.conn.execute("SELECT user_canceled FROM batches WHERE id=?", (batch_id,)).fetchone()[0])
        with self.atomic():
            rows = self._requests_by_custom_id(batch_id, [out.custom_id for out in outcomes])
            for out in outcomes:
                # A line seen twice is applied once, as if its row had been read again.
                row = rows.pop(out.custom_id, None)
                if row is None or row[5] != "in_flight":
                    continue
                rid, doc_id, task, attempt, key, _ = row
                if out.type == "succeeded":
                    self._succeeded(rid, key, out, api_id, costs, now)
                elif out.error_type in HOLDING:
                    self.conn.execute("UPDATE requests SET state='queued', batch_id=NULL, error=? WHERE id=?",
                                      (out.error, rid))
                    holding.append(out.error or out.error_type)
                elif attempt < max_attempts and (out.error_type in RETRYABLE or out.type == "expired"
                                                  or (out.type == "canceled" and not user_canceled)):
                    self.conn.execute("UPDATE requests SET state='retried', outcome=?, error=? WHERE id=?",
                                      (out.type, out.error, rid))
                    self._insert_request(doc_id, task, attempt + 1, key,
                                         self.conn.execute("SELECT size FROM requests WHERE id=?", (rid,)).fetchone()[0],
                                         None, now)
                else:
                    self.conn.execute("UPDATE requests SET state='final', outcome=?, error=? WHERE id=?",
                                      (out.type, out.error, rid))
                    self._resolve_waiters_with_failure([rid])
        return holding

    def _requests_by_custom_id(self, batch_id: int, custom_ids: list[str]) -> dict[str, tuple]:
        """(id, document_id, task, attempt, reuse_key, state) of a batch's requests, by custom_id:
        one query per 500 results instead of one per result."""
        found: dict[str, tuple] = {}
        for start in range(0, len(custom_ids), 500):
            chunk = custom_ids[start:start + 500]
            for row in self.conn.execute("SELECT custom_id, id, document_id, task, attempt, reuse_key, state"
                                         f" FROM requests WHERE batch_id=? AND custom_id IN ({','.join('?' * len(chunk))})",
                                         (batch_id, *chunk)):
                found[row[0]] = row[1:]
        return found

    def _succeeded(self, rid: int, key: str, out: Outcome, api_id: str,
                   costs: Callable[[dict[str, Any]], tuple[float | None, float | None]], now: float) -> None:
        message = out.message or {}
        usage = message.get("usage") or {}
        cost, realtime = costs(message)
        self.conn.execute(
            "INSERT OR IGNORE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, rid, out.custom_id, api_id, message.get("model"), message.get("stop_reason"),
             usage.get("input_tokens"), usage.get("output_tokens"), usage.get("cache_creation_input_tokens"),
             usage.get("cache_read_input_tokens"), cost, realtime, json.dumps(message), now))
        self.conn.execute("UPDATE requests SET state='final', outcome='succeeded', error=NULL WHERE id=?", (rid,))
        leader = self.conn.execute("SELECT request_id FROM results WHERE reuse_key=?", (key,)).fetchone()[0]
        self.conn.execute("UPDATE requests SET state='final', outcome='succeeded', reused_from=? "
                          "WHERE state='waiting' AND reuse_key=?", (leader, key))

    def _resolve_waiters_with_failure(self, request_ids: list[int]) -> None:
        """Requests waiting on a key whose request failed for good take the same outcome."""
        for rid in request_ids:
            row = self.conn.execute("SELECT reuse_key, outcome, error FROM requests WHERE id=?", (rid,)).fetchone()
            if row and row[0]:
                self.conn.execute("UPDATE requests SET state='final', outcome=?, error=?, reused_from=? "
                                  "WHERE state='waiting' AND reuse_key=?", (row[1], row[2], rid, row[0]))

    def batch_collected(self, batch_id: int, max_attempts: int, now: float) -> None:
        """Results fully read: anything of this batch still in flight had no line, and is expired."""
        with self.atomic():
            missing = self.q("SELECT custom_id FROM requests WHERE batch_id=? AND state='in_flight'", (batch_id,))
            self.conn.execute("UPDATE batches SET state='collected' WHERE id=?", (batch_id,))
        if missing:
            api_id = self.one("SELECT api_id FROM batches WHERE id=?", (batch_id,))["api_id"]
            self.record_outcomes(batch_id, api_id, [Outcome(m["custom_id"], "expired", error="no result returned")
                                                    for m in missing], max_attempts, lambda m: (None, None), now)

    # -- reading -------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """Figures for ``batchd status``."""
        docs = {r["k"]: r["n"] for r in self.q(
            "SELECT CASE WHEN state='finished' THEN coalesce(status,'done') ELSE state END AS k, count(*) AS n"
            " FROM documents GROUP BY k")}
        reqs = {r["state"]: r["n"] for r in self.q("SELECT state, count(*) AS n FROM requests GROUP BY state")}
        usage = self.one("""SELECT coalesce(sum(input_tokens),0) AS input_tokens, coalesce(sum(output_tokens),0) AS output_tokens,
            coalesce(sum(cache_creation_input_tokens),0) AS cache_creation_input_tokens,
            coalesce(sum(cache_read_input_tokens),0) AS cache_read_input_tokens,
            sum(cost_usd) AS cost_usd, sum(realtime_usd) AS realtime_usd, count(*) AS answers FROM results""")
        reused = self.one("SELECT count(*) AS n FROM requests WHERE reused_from IS NOT NULL")["n"]
        oldest = self.one("SELECT min(queued_at) AS t FROM requests WHERE state='queued'")["t"]
        batches = self.q("SELECT id, api_id, state, request_count, intent_at, created_at, counts, error FROM batches"
                         " WHERE state IN ('intent','unknown','in_progress','ended') ORDER BY id")
        for b in batches:
            b["counts"] = json.loads(b["counts"]) if b["counts"] else None
        return {"documents": docs, "requests": reqs, "usage": usage, "reused": reused,
                "oldest_queued_at": oldest, "batches": batches, "hold": self.get_meta("hold")}
