"""The daemon's main loop: intake → batches → polling → results → outbox, one thread.

Every step reads what to do from the state file and records what it did there before
the side effect that depends on it, so the loop can stop anywhere and start again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import structlog

from batchd import budget, outbox
from batchd.api import Api, Held, Invalid, Refused, TooLarge, Unknown
from batchd.builder import Builder
from batchd.batcher import BODY_OVERHEAD, Limits, flush_reason, next_flush_at, next_interval
from batchd.config import Config
from batchd.crashpoints import crashpoint
from batchd.documents import LoadError
from batchd.notify import Notifier
from batchd.plugins import PluginError, Plugins
from batchd.store import Outcome, Store
from batchd.watcher import Watcher

log = structlog.get_logger("batchd")

#: Files taken in one turn of the loop: a full inbox does not hold up sending and collecting.
INTAKE_CHUNK = 1500
#: Results are applied in transactions of this many lines.
RESULT_CHUNK = 1000
#: Complete documents written to the outbox per turn of the loop.
FINISH_CHUNK = 500
#: How long a hold (bad key, billing, permission) waits before trying again.
HOLD_RETRY = (30.0, 600.0)


class ExitCode:
    OK = 0
    FAILURE = 1
    USAGE = 2
    HELD = 3


@dataclass
class _Backoff:
    """Growing waits after failures of one kind of call, reset by a success."""

    initial: float
    maximum: float
    until: float = 0.0
    current: float = 0.0

    def fail(self, now: float, retry_after: float | None = None) -> float:
        """Wait what the server asked for (``retry-after``), else twice as long as last time."""
        self.current = min(self.maximum, self.current * 2 if self.current else self.initial)
        wait = max(0.1, retry_after) if retry_after is not None else self.current
        self.until = now + wait
        return wait

    def ok(self) -> None:
        self.current = 0.0
        self.until = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.until


@dataclass
class _Stop:
    requested: bool = False
    reload: bool = False
    interrupts: int = 0
    previous: dict[int, Any] = field(default_factory=dict)


class Daemon:
    """Runs batchd until stopped (or, with ``once``, until the inbox's documents are done)."""

    #: The last turn left complete documents for the next one (see finish_documents).
    more_to_finish = False

    def __init__(self, config: Config, plugins: Plugins, api: Api, store: Store, *, once: bool = False,
                 clock: Callable[[], float] = time.time, pricing: Any = None) -> None:
        self.config = config
        self.plugins = plugins
        self.api = api
        self.store = store
        self.once = once
        self.clock = clock
        self.pricing = pricing
        self.limits = Limits.from_config(config)
        self.builder = Builder(config, plugins)
        self.watcher = Watcher(config.inbox, config["watch.ignore"], float(config["watch.settle"]),
                               polling=config["watch.polling"])
        self.notifier = Notifier()
        self.stop = _Stop()
        self.create_backoff = _Backoff(1.0, 300.0)
        self.poll_backoff = _Backoff(1.0, 300.0)
        self.hold_backoff = _Backoff(*HOLD_RETRY)
        self.hold: str | None = store.get_meta("hold")
        self.budget_hold: str | None = store.get_meta("budget_hold")
        self.budget_backoff = _Backoff(5.0, 60.0)
        self.byte_cap = self.limits.max_bytes
        self.next_rescan = 0.0
        self.done_count = 0

    # -- the loop ----------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        try:
            for _ in self.plugins.call_each("batchd_startup", config=self.config):
                pass
            self.recover()
            self.watcher.start()
            self.watcher.scan()
            self.next_rescan = self.clock() + float(self.config["watch.rescan"] or 1e18)
            self.notifier.ready(self.status_line())
            log.info("started", inbox=str(self.config.inbox), outbox=str(self.config.outbox),
                     state=str(self.config.state), tasks=self.config.enabled_tasks, once=self.once)
            return self._loop()
        finally:
            self.notifier.stopping()
            self.watcher.stop()
            for _ in self.plugins.call_each("batchd_shutdown"):
                pass
            self._restore_signals()

    def _loop(self) -> int:
        while not self.stop.requested:
            if self.stop.reload:
                self.stop.reload = False
                self.reload()
            self.step()
            self.notifier.ping()
            self.notifier.status(self.status_line())
            if self.once:
                code = self._once_finished()
                if code is not None:
                    return code
            # Never sleep past a due WATCHDOG=1: a short WatchdogSec must not kill an idle loop.
            self.watcher.drain_events(min(self._sleep_for(), self.notifier.next_ping_in()))
        log.info("stopped", reason="signal")
        return ExitCode.OK

    def step(self) -> None:
        """One turn of the loop; each part catches what it can recover from."""
        now = self.clock()
        if self.config["watch.rescan"] and now >= self.next_rescan:
            self.watcher.scan()
            self.next_rescan = now + float(self.config["watch.rescan"])
        self.intake(self.watcher.settled(now, INTAKE_CHUNK))
        self.maybe_flush()
        self.resolve_unknown()
        self.poll()
        self.finish_documents()

    def _sleep_for(self) -> float:
        if self.more_to_finish:
            return 0.0
        now = self.clock()
        due = [now + 1.0]
        if self.watcher.pending:
            due.append(self.watcher.next_settle_at() or now)
        count, _, oldest = self.store.queued_summary()
        flush_at = next_flush_at(count, oldest, self.limits)
        if flush_at is not None:
            due.append(max(flush_at, self.create_backoff.until, self.hold_backoff.until if self.hold else 0))
        poll_at = self.store.next_poll_at()
        if poll_at is not None:
            due.append(max(poll_at, self.poll_backoff.until))
        if self.store.unresolved_batches():
            due.append(now + 0.5)
        return min(1.0, max(0.01, min(due) - now))

    def _once_finished(self) -> int | None:
        if self.watcher.pending:
            return None
        active = self.store.one("SELECT count(*) AS n FROM documents WHERE state IN ('active','finishing')")["n"]
        if active == 0:
            log.info("once_complete", documents=self.done_count)
            return ExitCode.OK
        held = self.hold or self.budget_hold
        in_flight = self.store.one("SELECT count(*) AS n FROM batches WHERE state IN"
                                   " ('intent','unknown','in_progress','ended')")["n"]
        if held and not in_flight:
            log.error("once_held", reason=held)
            return ExitCode.HELD
        return None

    def reload(self) -> bool:
        """SIGHUP: apply a changed configuration without dropping work, or keep the old one.

        Thresholds, tasks and their settings, ignore patterns, settle time, polling and
        logging change at once; paths, plugins and service.umask need a restart.
        """
        from batchd import logs
        from batchd.config import ConfigError, load

        try:
            new = load(self.config.path)
            builder = Builder(new, self.plugins)
        except ConfigError as exc:
            log.error("reload_rejected", config=str(self.config.path), error=str(exc))
            return False
        moved = [k for k in ("inbox", "outbox", "state", "plugins") if getattr(new, k) != getattr(self.config, k)]
        if moved:
            log.warning("reload_needs_restart", keys=[f"paths.{k}" for k in moved])
            for key in moved:
                setattr(new, key, getattr(self.config, key))
        self.config, self.builder = new, builder
        self.limits = Limits.from_config(new)
        self.byte_cap = self.limits.max_bytes
        self.watcher.ignore = list(new["watch.ignore"])
        self.watcher.settle = float(new["watch.settle"])
        if self.watcher.polling != new["watch.polling"]:
            self.watcher.stop()
            self.watcher.polling = new["watch.polling"]
            self.watcher.start()
            self.watcher.scan()
        self.next_rescan = self.clock() + float(new["watch.rescan"] or 1e18)
        logs.configure(new["log.level"], new["log.format"])
        log.info("reloaded", config=str(new.path), tasks=sorted(new.enabled_tasks))
        return True

    # -- signals -----------------------------------------------------------------

    def _install_signals(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            if signum == signal.SIGHUP:
                self.stop.reload = True
                self.watcher.events.put("")
                return
            if signum == signal.SIGINT:
                self.stop.interrupts += 1
                if self.stop.interrupts > 1:
                    os._exit(130)
            self.stop.requested = True
            self.watcher.events.put("")

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                self.stop.previous[sig] = signal.signal(sig, handler)
            except ValueError:
                pass  # not the main thread (tests): the caller stops us otherwise

    def _restore_signals(self) -> None:
        for sig, previous in self.stop.previous.items():
            signal.signal(sig, previous)

    # -- recovery ----------------------------------------------------------------

    def recover(self) -> None:
        """Make the state whole again after a stop or a crash, before taking new work."""
        with self.store.atomic():
            self.store.conn.execute("UPDATE batches SET state='unknown', failed_at=coalesce(failed_at, ?)"
                                    " WHERE state='intent'", (self.clock(),))
            self.store.conn.execute("UPDATE batches SET next_poll=0 WHERE state IN ('in_progress','ended')")
            self.store._wake_waiters_of_dropped()
        unresolved = self.store.unresolved_batches()
        in_flight = self.store.one("SELECT count(*) AS n FROM batches WHERE state IN ('in_progress','ended')")["n"]
        if unresolved or in_flight:
            log.info("recovering", unknown_creates=len(unresolved), batches_in_flight=in_flight)
        deadline = self.clock() + 30
        while self.store.unresolved_batches() and self.clock() < deadline and not self.stop.requested:
            if not self.resolve_unknown(force=True):
                break
            self.notifier.ping()
            time.sleep(0.2)
        for doc in self.store.finishing_documents():
            self.finish(doc)

    # -- intake ------------------------------------------------------------------

    def intake(self, paths: list[Path]) -> None:
        """Take settled files: load each and record it with its requests, many per commit."""
        items = []
        now = self.clock()
        for path in paths:
            item = self._take(path)
            if item is not None:
                items.append(item)
            if len(items) >= 500:
                self._record(items, now)
                items = []
        if items:
            self._record(items, now)

    def _record(self, items: list[tuple[dict, list[dict]]], now: float) -> None:
        ids = self.store.add_documents(items, now)
        for (doc, reqs), doc_id in zip(items, ids):
            log.info("document_taken", document=doc["source"], doc_id=doc_id, bytes=doc.get("bytes"),
                     tasks=[r["task"] for r in reqs], error=doc.get("error"))

    def _take(self, path: Path) -> tuple[dict, list[dict]] | None:
        source = path.relative_to(self.config.inbox).as_posix()
        if not _utf8(source):
            # The state, result.json and the log are UTF-8: such a name cannot be recorded.
            log.error("document_skipped", document=os.fsencode(source).decode("utf-8", "backslashreplace"),
                      reason="its name is not valid UTF-8; rename the file to have it read")
            return None
        try:
            st = os.lstat(path)
        except OSError:
            log.warning("document_vanished", document=source)
            return None
        active = self.store.active_document(source)
        if active and (active["size"], active["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return None
        if not active and self.store.finished_in_place(source, st.st_size, st.st_mtime_ns):
            return None
        if active and (active["state"] != "active" or self._sent(active["id"])):
            # Its answers are paid for or on their way: it ends with the version that was sent,
            # and the new one is taken once that is done (see _move_original).
            return None
        doc: dict[str, Any] = {"source": source, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        limit = self.config["watch.max_file_bytes"]
        if st.st_size > limit:
            if active:
                return None
            doc["error"] = (f"too large: {st.st_size:,} bytes, over the limit of {limit:,} "
                            f"(watch.max_file_bytes)")
            return doc, []
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.warning("document_vanished", document=source)
            return None
        except PermissionError:
            if active:
                return None
            doc["error"] = "cannot be read: permission denied"
            return doc, []
        except OSError as exc:
            doc["error"] = f"cannot be read: {exc.strerror or exc}"
            return doc, []
        sha = hashlib.sha256(data).hexdigest()
        doc.update(sha256=sha, bytes=len(data))
        if active:
            if active["sha256"] == sha:
                with self.store.atomic():
                    self.store.conn.execute("UPDATE documents SET size=?, mtime_ns=? WHERE id=?",
                                            (st.st_size, st.st_mtime_ns, active["id"]))
                return None
            if active["state"] != "active":
                return None
            self.store.abandon_document(active["id"], "replaced by a newer version of the file")
            log.warning("document_replaced", document=source, doc_id=active["id"])
        try:
            document = self.builder.load(path, source, data, sha)
        except LoadError as exc:
            doc["error"] = str(exc)
            return doc, []
        doc["truncated"] = document.truncated
        return doc, self.builder.build_all(document)

    # -- batches -----------------------------------------------------------------

    def maybe_flush(self) -> None:
        now = self.clock()
        if not self.create_backoff.ready(now) or (self.hold and not self.hold_backoff.ready(now)):
            return
        if self.budget_hold and not self.budget_backoff.ready(now):
            return
        if self.store.unresolved_batches():
            return
        drain = self.once and not self.watcher.pending
        while True:
            count, size, oldest = self.store.queued_summary()
            limits = Limits(self.limits.max_requests, self.byte_cap, self.limits.max_wait)
            reason = flush_reason(count, size, oldest, self.clock(), limits, drain=drain)
            if reason is None or not self.flush(reason):
                return

    def flush(self, reason: str) -> bool:
        """Send one batch; True when the create went through."""
        chosen = self.store.take_queued(self.limits.max_requests, self.byte_cap, BODY_OVERHEAD)
        by_doc: dict[int, list[dict]] = defaultdict(list)
        for req in chosen:
            by_doc[req["document_id"]].append(req)
        # The body is written into one growing buffer, entry by entry, and handed over
        # without a copy: a list of entries joined at the end held the body three times.
        out = io.BytesIO()
        out.write(b'{"requests":[')
        ends, ids, shapes = [], [], []
        for doc_id, reqs in by_doc.items():
            built = self._rebuild(doc_id, reqs)
            for req, params, encoded in built:
                out.write(b'{"custom_id":"' if not ids else b',{"custom_id":"')
                out.write(req["custom_id"].encode())
                out.write(b'","params":')
                out.write(encoded)
                out.write(b"}")
                ends.append(out.tell())
                ids.append(req["id"])
                shapes.append((params.get("model", ""), len(encoded), int(params.get("max_tokens") or 0)))
        del chosen, by_doc
        if not ids:
            return True
        costs = budget.estimate(self.pricing, self.store, shapes)
        keep = self._within_budget(costs)
        if keep == 0:
            return False
        ids, costs = ids[:keep], costs[:keep]
        out.truncate(ends[keep - 1])
        out.seek(ends[keep - 1])
        out.write(b"]}")
        body = out.getvalue()
        del out, ends, shapes
        now = self.clock()
        estimate = sum(costs)
        batch_id = self.store.record_intent(ids, len(body), now, estimate)
        crashpoint("after_intent")
        log.info("batch_submitting", batch=batch_id, requests=len(ids), bytes=len(body), reason=reason,
                 estimated_usd=round(estimate, 6))
        try:
            info = self.api.create(body)
        except Held as exc:
            self.store.batch_rejected(batch_id, str(exc), requeue=True, now=now)
            self._set_hold(str(exc))
            return False
        except TooLarge as exc:
            self.store.batch_rejected(batch_id, str(exc), requeue=True, now=now)
            self.byte_cap = max(1_000_000, len(body) // 2)
            log.warning("batch_too_large", batch=batch_id, bytes=len(body), new_cap=self.byte_cap, error=str(exc))
            return True
        except Refused as exc:
            self.store.batch_rejected(batch_id, str(exc), requeue=True, now=now)
            wait = self.create_backoff.fail(now, exc.retry_after)
            log.warning("batch_refused", batch=batch_id, error=str(exc), retry_in=round(wait, 2))
            return False
        except Invalid as exc:
            self.store.batch_rejected(batch_id, str(exc), requeue=False, now=now)
            log.error("batch_invalid", batch=batch_id, error=str(exc))
            return True
        except Unknown as exc:
            self.store.batch_unknown(batch_id, str(exc), now)
            log.warning("batch_create_unknown", batch=batch_id, error=str(exc))
            return False
        crashpoint("after_create")
        self.store.batch_created(batch_id, info.api_id, info.created_at, self._poll_initial, now)
        self.create_backoff.ok()
        self._clear_hold()
        log.info("batch_submitted", batch=batch_id, batch_id=info.api_id, requests=len(ids), bytes=len(body),
                 reason=reason)
        return True

    def _within_budget(self, costs: list[float]) -> int:
        """How many of these requests the daily budget lets go out now (all, without a budget)."""
        limit = self.config["budget.max_usd_per_day"]
        if limit is None:
            return len(costs)
        now = self.clock()
        room = limit - budget.spent_today(self.store, now)
        keep, total = 0, 0.0
        for cost in costs:
            if total + cost > room:
                break
            total += cost
            keep += 1
        if keep == 0:
            reason = (f"daily budget: ${limit:.2f} (budget.max_usd_per_day) would be exceeded; "
                      f"${max(room, 0):.4f} left today, the next request needs ${costs[0]:.4f}")
            if self.budget_hold != reason:
                log.warning("budget_held", limit_usd=limit, left_usd=round(max(room, 0), 6),
                            next_usd=round(costs[0], 6))
                self.store.set_meta("budget_hold", reason)
            self.budget_hold = reason
            self.budget_backoff.fail(now)
        elif self.budget_hold:
            log.info("budget_released")
            self.store.set_meta("budget_hold", None)
            self.budget_hold = None
            self.budget_backoff.ok()
        return keep

    def _rebuild(self, doc_id: int, reqs: list[dict]) -> list[tuple[dict, dict, bytes]]:
        """The requests' params (and their JSON), built again from the original, which must not have changed."""
        row = self.store.one("SELECT * FROM documents WHERE id=?", (doc_id,))
        path = self.config.inbox / row["source"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            data, changed = b"", f"the file could not be read again: {exc.strerror or exc}"
            log.warning("document_vanished", document=row["source"], doc_id=doc_id)
        else:
            changed = None if hashlib.sha256(data).hexdigest() == row["sha256"] else \
                "replaced by a newer version of the file"
            if changed:
                log.warning("document_replaced", document=row["source"], doc_id=doc_id)
                self.watcher.note(path)
        if changed and not self._sent(doc_id):
            self.store.abandon_document(doc_id, changed)
            return []
        sha = row["sha256"]
        out = []
        failed: list[tuple[dict, str]] = []
        try:
            if changed:  # part of it went out: it ends with that version's answers, and this part fails
                raise LoadError(f"not sent: {changed} after the document's other requests had gone out")
            document = self.builder.load(path, row["source"], data, sha)
        except LoadError as exc:
            failed = [(req, str(exc)) for req in reqs]
        else:
            for req in reqs:
                try:
                    out.append((req, *self.builder.encoded_params_for(document, req["task"])))
                except (PluginError, KeyError) as exc:
                    failed.append((req, str(exc) if isinstance(exc, PluginError) else f"task {exc} is not provided"))
        if failed:
            with self.store.atomic():
                for req, error in failed:
                    self.store.conn.execute("UPDATE requests SET state='final', outcome='failed', error=? WHERE id=?",
                                            (error, req["id"]))
                self.store._resolve_waiters_with_failure([req["id"] for req, _ in failed])
        return out

    @property
    def _poll_initial(self) -> float:
        return float(self.config["batch.poll_initial"])

    def resolve_unknown(self, force: bool = False) -> bool:
        """Settle creates whose outcome is unknown from what the API lists; True if all went fine."""
        now = self.clock()
        unresolved = self.store.unresolved_batches()
        if not unresolved or (not force and not self.poll_backoff.ready(now)):
            return True
        grace = max(2.0, 2 * self._poll_initial)
        claimed = self.store.claimed_api_ids()
        for batch in unresolved:
            since = batch["intent_at"] - 300
            try:
                candidates = [b for b in self.api.list_since(since)
                              if b.request_count == batch["request_count"] and b.api_id not in claimed]
            except (Refused, Held) as exc:
                self.poll_backoff.fail(now, getattr(exc, "retry_after", None))
                log.warning("resolve_failed", batch=batch["id"], error=str(exc))
                return False
            waiting = False
            ours = None
            for cand in candidates:
                if cand.status != "ended":
                    waiting = True
                    continue
                try:
                    seen = {o.custom_id for o in self.api.results(cand.api_id)}
                except (Refused, Held) as exc:
                    self.poll_backoff.fail(now, getattr(exc, "retry_after", None))
                    log.warning("resolve_failed", batch=batch["id"], batch_id=cand.api_id, error=str(exc))
                    return False
                if seen and seen == self.store.batch_custom_ids(batch["id"]):
                    ours = cand
                    break
            if ours is not None:
                self.store.batch_created(batch["id"], ours.api_id, ours.created_at, 0.0, now)
                claimed.add(ours.api_id)
                log.info("batch_create_resolved", batch=batch["id"], batch_id=ours.api_id, outcome="created")
            elif not waiting and now - (batch["failed_at"] or batch["intent_at"]) >= grace:
                self.store.batch_never_created(batch["id"], now)
                log.info("batch_create_resolved", batch=batch["id"], outcome="never created")
        self.poll_backoff.ok()
        return True

    def send_cancels(self) -> None:
        """Cancels asked for by ``batchd cancel``: the batch's canceled requests stay canceled."""
        for batch in self.store.q("SELECT * FROM batches WHERE user_canceled=1 AND state IN ('in_progress','ended')"):
            try:
                if batch["state"] == "in_progress":
                    self.api.cancel(batch["api_id"])
            except (Refused, Held) as exc:
                log.warning("cancel_failed", batch=batch["id"], batch_id=batch["api_id"], error=str(exc))
                return
            with self.store.atomic():
                self.store.conn.execute("UPDATE batches SET user_canceled=2, next_poll=0 WHERE id=?", (batch["id"],))
            log.info("batch_canceled", batch=batch["id"], batch_id=batch["api_id"])

    def poll(self) -> None:
        now = self.clock()
        if not self.poll_backoff.ready(now):
            return
        self.send_cancels()
        for batch in self.store.batches_to_poll(now):
            try:
                info = self.api.retrieve(batch["api_id"])
                interval = next_interval(batch["poll_interval"], self._poll_initial,
                                         float(self.config["batch.poll_max"]))
                self.store.batch_polled(batch["id"], info.status, info.counts, now + interval, interval,
                                        info.ended_at)
                if info.archived:
                    log.error("results_lost", batch=batch["id"], batch_id=batch["api_id"],
                              detail="the API no longer holds this batch's results (29 days after creation); "
                                     "its requests are sent again")
                    self.store.batch_collected(batch["id"], self.config["batch.max_attempts"], now)
                    continue
                if info.status != "ended":
                    continue
                self.collect(batch)
            except Held as exc:
                self._set_hold(str(exc))
                return
            except Refused as exc:
                wait = self.poll_backoff.fail(now, exc.retry_after)
                log.warning("poll_failed", batch=batch["id"], batch_id=batch["api_id"], error=str(exc),
                            retry_in=round(wait, 2))
                return
            self.poll_backoff.ok()

    def collect(self, batch: dict) -> None:
        """Stream a finished batch's results into the state, a chunk per transaction."""
        api_id = batch["api_id"]
        max_attempts = self.config["batch.max_attempts"]
        chunk: list[Outcome] = []
        holding: list[str] = []
        seen = 0
        started = time.monotonic()
        for outcome in self.api.results(api_id):
            chunk.append(outcome)
            crashpoint("mid_results")
            if len(chunk) >= RESULT_CHUNK:
                holding += self.store.record_outcomes(batch["id"], api_id, chunk, max_attempts, self._costs,
                                                      self.clock())
                seen += len(chunk)
                chunk = []
        if chunk:
            holding += self.store.record_outcomes(batch["id"], api_id, chunk, max_attempts, self._costs, self.clock())
            seen += len(chunk)
        self.store.batch_collected(batch["id"], max_attempts, self.clock())
        budget.calibrate(self.store, batch["id"], api_id)
        if holding:
            self._set_hold(f"{len(holding)} requests refused: {holding[0]}")
        row = self.store.one("""SELECT b.counts, b.estimate_usd, (SELECT sum(cost_usd) FROM results r
                                WHERE r.batch_api_id = b.api_id) AS cost FROM batches b WHERE b.id=?""", (batch["id"],))
        log.info("batch_collected", batch=batch["id"], batch_id=api_id, results=seen,
                 counts=json.loads(row["counts"]) if row["counts"] else None, cost_usd=row["cost"],
                 estimated_usd=row["estimate_usd"], seconds=round(time.monotonic() - started, 3))

    def _costs(self, message: dict) -> tuple[float | None, float | None]:
        if self.pricing is None:
            return None, None
        usage = message.get("usage") or {}
        model = message.get("model") or ""
        return self.pricing.cost(model, usage, batch=True), self.pricing.cost(model, usage, batch=False)

    def _set_hold(self, reason: str) -> None:
        wait = self.hold_backoff.fail(self.clock())
        if self.hold != reason:
            self.store.set_meta("hold", reason)
        self.hold = reason
        log.error("queue_held", reason=reason, retry_in=round(wait, 1),
                  hint="the API refuses batchd in a way no retry fixes; check the key, billing and model")

    def _clear_hold(self) -> None:
        if self.hold:
            log.info("queue_released", reason=self.hold)
            self.store.set_meta("hold", None)
            self.hold = None
            self.hold_backoff.until = 0.0

    # -- outbox ------------------------------------------------------------------

    def finish_documents(self) -> None:
        docs = self.store.complete_documents(FINISH_CHUNK)
        finished = self.finish_all(docs)
        # More complete documents wait: the loop comes straight back instead of sleeping
        # (unless writing failed, which the next turn would only repeat at once).
        self.more_to_finish = len(docs) >= FINISH_CHUNK and finished == len(docs)

    def finish(self, doc: dict) -> None:
        """Write a complete document's folder: outputs, original, result.json last."""
        self.finish_all([doc])

    def finish_all(self, docs: list[dict]) -> int:
        """Write complete documents' folders, each outputs, original, result.json last; how many finished.

        Each document goes through the same steps as one alone would; what many share is
        the cost: their folders are reserved in one transaction, their result.json files
        are staged under temporary names and put on disk together (one sync, not an fsync
        per document) before each is renamed into place, and they are marked finished in
        one transaction.
        """
        out_root = self.config.outbox
        planned = [(doc, *self.manifest(doc)) for doc in docs]
        placed = []
        with self.store.atomic():
            for doc, manifest, outputs in planned:
                if doc["state"] == "active":
                    folder = outbox.folder_name(out_root, doc["source"], self.store.folder_taken)
                    original = outbox.original_name(Path(doc["source"]).name, set(outputs))
                    self.store.reserve_folder(doc["id"], folder, original, manifest["status"], manifest["error"])
                else:
                    folder, original = doc["folder"], doc["original"]
                placed.append((doc, manifest, outputs, folder, original))
        staged = []
        for doc, manifest, outputs, folder, original in placed:
            target = out_root / folder
            try:
                outbox.write_outputs(target, outputs)
            except OSError as exc:
                log.error("outbox_write_failed", document=doc["source"], folder=folder, error=str(exc))
                continue
            crashpoint("after_outputs")
            try:
                moved = self._move_original(doc, target / original)
            except OSError as exc:
                moved = False
                log.error("original_not_moved", document=doc["source"], folder=folder, error=str(exc),
                          detail="the results are complete; the original stays in the inbox and is not taken again")
            crashpoint("after_move")
            manifest["original"] = original if moved else None
            staged.append((doc, manifest, folder, target, outbox.stage_manifest(target, manifest)))
        if not staged:
            return 0
        outbox.sync_staged([tmp for *_, tmp in staged])
        for doc, manifest, folder, target, tmp in staged:
            outbox.place_manifest(tmp, target)
            crashpoint("after_manifest")
        self.store.finish_many([(doc["id"], manifest["original"]) for doc, manifest, *_ in staged], self.clock())
        for doc, manifest, folder, target, _ in staged:
            self.done_count += 1
            for _ in self.plugins.call_each("batchd_document_finished", source=doc["source"], folder=target,
                                            result=manifest):
                pass
            log.info("document_finished", document=doc["source"], doc_id=doc["id"], folder=folder,
                     status=manifest["status"], error=manifest["error"])
        return len(staged)

    def _sent(self, doc_id: int) -> bool:
        """Whether any request of the document went out: from then on it ends with that version."""
        return self.store.one("SELECT count(*) AS n FROM requests WHERE document_id=? AND batch_id IS NOT NULL",
                              (doc_id,))["n"] > 0

    def _move_original(self, doc: dict, dest: Path) -> bool:
        src = self.config.inbox / doc["source"]
        if src.is_symlink() or (src.exists() and not src.is_file()):
            log.warning("original_changed", document=doc["source"],
                        detail="no longer a regular file: left where it is, not a document")
            return False
        if doc["sha256"] and src.exists() and not dest.exists():
            try:
                same = hashlib.sha256(src.read_bytes()).hexdigest() == doc["sha256"]
            except OSError:
                same = True
            if not same:
                log.warning("original_changed", document=doc["source"],
                            detail="left in the inbox to be taken again as a new document")
                self.watcher.note(src)
                return False
        return outbox.move_original(src, dest)

    def manifest(self, doc: dict) -> tuple[dict, dict[str, bytes]]:
        """result.json for a document, and the output files' contents."""
        tasks: dict[str, dict] = {}
        outputs: dict[str, bytes] = {}
        for req in self.store.document_requests(doc["id"]):
            entry, output = self._task_entry(doc, req)
            tasks[req["task"]] = entry
            if output is not None:
                outputs[entry["output"]] = output
        error = doc["error"]
        if error is None and tasks and all(t["status"] == "failed" for t in tasks.values()):
            error = "every task failed: " + "; ".join(f"{n}: {t['error']}" for n, t in tasks.items())
        if error is None and not tasks:
            error = "no enabled task applies to this document"
        status = "failed" if error else "done"
        costs = [t["cost_usd"] for t in tasks.values() if t["status"] == "succeeded"]
        return {
            "schema": 1,
            "source": doc["source"],
            "sha256": doc["sha256"],
            "bytes": doc["bytes"],
            "status": status,
            "error": error,
            "original": None,
            "tasks": tasks,
            "cost_usd": None if any(c is None for c in costs) else sum(costs),
            "finished_at": outbox.utc_now(),
        }, outputs

    def _task_entry(self, doc: dict, req: dict) -> tuple[dict, bytes | None]:
        name = req["task"]
        task = self.plugins.tasks.get(name)
        reused = req["reused_from"] is not None
        entry: dict[str, Any] = {
            "status": req["outcome"] or "failed",
            "output": None,
            "custom_id": req["res_custom_id"] if reused and req["res_custom_id"] else req["custom_id"],
            "batch_id": req["res_batch_api_id"] if reused and req["res_batch_api_id"] else req["batch_api_id"],
            "model": None,
            "stop_reason": None,
            "truncated": bool(doc["truncated"]),
            "usage": None,
            "cost_usd": None,
            "reused": reused,
            "error": req["error"],
        }
        output = None
        if req["outcome"] == "succeeded" and req["message"]:
            message = json.loads(req["message"])
            usage = message.get("usage") or {}
            entry.update(
                model=message.get("model"),
                stop_reason=message.get("stop_reason"),
                truncated=bool(doc["truncated"]) or message.get("stop_reason") == "max_tokens",
                usage={k: usage.get(k) or 0 for k in ("input_tokens", "output_tokens",
                                                      "cache_creation_input_tokens", "cache_read_input_tokens")},
                cost_usd=0.0 if reused else req["cost_usd"],
            )
            if task is None:
                entry.update(status="failed", error=f"task {name} is no longer provided by any plugin")
            else:
                try:
                    output = self.builder.output_for(name, message)
                    entry["output"] = task.output
                except PluginError as exc:
                    entry.update(status="failed", error=f"plugin {exc.plugin} could not read the answer: {exc.reason}")
                    log.error("task_failed", document=doc["source"], task=name, custom_id=entry["custom_id"],
                              error=entry["error"])
        elif entry["status"] != "failed" and not entry["error"]:
            entry["error"] = f"the request {entry['status']}"
        if entry["status"] in ("errored", "failed") and not entry["error"]:
            entry["error"] = "unknown error"
        return entry, output

    # -- reporting ---------------------------------------------------------------

    def status_line(self) -> str:
        count, _, _ = self.store.queued_summary()
        in_flight = self.store.one("SELECT count(*) AS n FROM batches WHERE state IN ('in_progress','ended')")["n"]
        text = f"{count} requests waiting, {in_flight} batches in flight, {self.done_count} documents done"
        if self.watcher.pending:
            text += f", {len(self.watcher.pending)} files settling"
        for hold in (self.hold, self.budget_hold):
            if hold:
                text += f"; HELD: {hold}"
        return text


def _utf8(name: str) -> bool:
    """Whether a path from the filesystem is valid UTF-8 (undecodable bytes come as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
