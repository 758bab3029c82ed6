"""Noticing files in the inbox, and deciding when each has settled enough to be read.

The watchdog observer thread only enqueues paths; settling, reading and everything
else happens on the daemon's main thread. A start-up scan and periodic rescans cover
what events miss (files already there, network shares, lost events).
"""

from __future__ import annotations

import fnmatch
import os
import queue
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether any component of an inbox-relative path matches an ignore pattern."""
    return any(fnmatch.fnmatchcase(part, pat) for part in PurePosixPath(relative).parts for pat in patterns)


class _Enqueue(FileSystemEventHandler):
    def __init__(self, events: "queue.Queue[str]") -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory and event.event_type not in ("created", "moved"):
            return
        path = getattr(event, "dest_path", "") or event.src_path
        if event.event_type in ("created", "modified", "moved", "closed"):
            self.events.put(os.fsdecode(path))


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class Watcher:
    """Tracks candidate files until they have kept their size and mtime for ``settle`` seconds."""

    def __init__(self, inbox: Path, ignore: list[str], settle: float, *, polling: bool = False) -> None:
        self.inbox = inbox
        self.ignore = list(ignore)
        self.settle = settle
        self.polling = polling
        self.events: "queue.Queue[str]" = queue.Queue()
        self.pending: dict[Path, _Seen] = {}
        self.observer = None

    def start(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.observer = PollingObserver(timeout=1.0) if self.polling else Observer()
        self.observer.schedule(_Enqueue(self.events), str(self.inbox), recursive=True)
        self.observer.daemon = True
        self.observer.start()

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None

    def scan(self) -> int:
        """Walk the whole inbox (symlinks not followed) and note every candidate."""
        found = 0
        for root, dirs, files in os.walk(self.inbox, followlinks=False):
            rel_root = Path(root).relative_to(self.inbox)
            dirs[:] = [d for d in dirs if not ignored((rel_root / d).as_posix(), self.ignore)]
            for name in files:
                self.note(Path(root) / name)
                found += 1
        return found

    def note(self, path: Path) -> None:
        """Consider ``path``; directories that appear (moved in whole) are walked."""
        try:
            rel = path.relative_to(self.inbox).as_posix()
        except ValueError:
            return
        if rel == "." or ignored(rel, self.ignore):
            return
        try:
            st = os.lstat(path)
        except OSError:
            self.pending.pop(path, None)
            return
        if stat.S_ISDIR(st.st_mode):
            for root, dirs, files in os.walk(path, followlinks=False):
                for name in files:
                    self.note(Path(root) / name)
            return
        if not stat.S_ISREG(st.st_mode):
            return
        if path not in self.pending:
            self.pending[path] = _Seen(st.st_size, st.st_mtime_ns, _now())

    def drain_events(self, timeout: float) -> None:
        """Wait up to ``timeout`` for events, then take every event already queued."""
        try:
            first = self.events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return
        self.note(Path(first))
        while True:
            try:
                self.note(Path(self.events.get_nowait()))
            except queue.Empty:
                return

    def settled(self, now: float) -> list[Path]:
        """Files unchanged for ``settle`` seconds; they leave the pending set."""
        ready = []
        for path, seen in list(self.pending.items()):
            try:
                st = os.lstat(path)
            except OSError:
                del self.pending[path]
                continue
            if not stat.S_ISREG(st.st_mode):
                del self.pending[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                self.pending[path] = _Seen(st.st_size, st.st_mtime_ns, now)
            elif now - seen.since >= self.settle:
                ready.append(path)
                del self.pending[path]
        return ready

    def next_settle_at(self) -> float | None:
        if not self.pending:
            return None
        return min(s.since for s in self.pending.values()) + self.settle


def _now() -> float:
    import time

    return time.time()
