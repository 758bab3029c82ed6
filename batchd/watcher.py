"""Noticing files in the inbox, and deciding when each has settled enough to be read.

The watchdog observer thread only enqueues paths; settling, reading and everything
else happens on the daemon's main thread. A start-up scan and periodic rescans cover
what events miss (files already there, network shares, lost events).

Where inotify cannot see changes (an inbox on NFS, SMB, sshfs, a VM's or container
host's shared folder) or cannot be had at all (its watch limit reached), the polling
observer is used instead: with ``watch.polling = true`` always, otherwise when the
inbox's filesystem type says so or inotify fails to start. The choice is logged.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import queue
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

log = structlog.get_logger("batchd")

#: Filesystems on which inotify misses changes made elsewhere (another client of the
#: share, the host of a VM or container): their inbox is polled.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs", "lustre", "gpfs", "9p",
    "virtiofs", "vboxsf", "prl_fs", "vmhgfs", "fakeowner", "davfs", "fuse.sshfs", "fuse.rclone",
    "fuse.glusterfs", "fuse.cephfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.davfs2", "fuse.grpcfuse",
    "fuse.vmhgfs-fuse", "fuse.osxfs",
})
#: Seconds between two looks of the polling observer.
POLL_INTERVAL = 1.0


class _QuietStop(logging.Filter):
    """watchdog 7 logs a harmless race of its own stop as an error, at every stop of the
    inotify observer; an operator must not read "error" each time batchd stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("InotifyEmitter.queue_events() called when the thread is inactive")


logging.getLogger("watchdog.observers.inotify").addFilter(_QuietStop())


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether any component of an inbox-relative path matches an ignore pattern."""
    return any(fnmatch.fnmatchcase(part, pat) for part in PurePosixPath(relative).parts for pat in patterns)


class _Enqueue(FileSystemEventHandler):
    def __init__(self, events: "queue.SimpleQueue[str]") -> None:
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
        # SimpleQueue: its put() is reentrant, so a signal handler may wake the loop with
        # ``events.put("")`` even while the main thread is inside a get().
        self.events: "queue.SimpleQueue[str]" = queue.SimpleQueue()
        self.pending: dict[Path, _Seen] = {}
        self.observer = None
        #: "inotify" (or the platform's native events) or "polling", once started.
        self.mode: str | None = None

    def start(self) -> None:
        """Start the observer: polling if asked for or needed, native events otherwise."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        reason = "watch.polling = true" if self.polling else None
        fstype = filesystem_type(self.inbox)
        if reason is None and fstype in NETWORK_FILESYSTEMS:
            reason = f"the inbox is on {fstype}, where native events miss changes made elsewhere"
        if reason is None:
            try:
                self._start(Observer())
            except OSError as exc:
                reason = f"native file events unavailable: {exc.strerror or exc}"
                log.warning("watch_events_unavailable", inbox=str(self.inbox), error=str(exc))
            else:
                self.mode = "inotify" if type(self.observer).__name__.startswith("Inotify") else "native"
                log.info("watching", inbox=str(self.inbox), mode=self.mode, filesystem=fstype)
                return
        self._start(PollingObserver(timeout=POLL_INTERVAL))
        self.mode = "polling"
        log.info("watching", inbox=str(self.inbox), mode="polling", filesystem=fstype, reason=reason,
                 interval=POLL_INTERVAL)

    def _start(self, observer) -> None:
        observer.schedule(_Enqueue(self.events), str(self.inbox), recursive=True)
        observer.daemon = True
        observer.start()
        self.observer = observer

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
            self.mode = None

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

    def settled(self, now: float, limit: int | None = None) -> list[Path]:
        """Files unchanged for ``settle`` seconds (at most ``limit``); they leave the pending set."""
        ready: list[Path] = []
        for path, seen in list(self.pending.items()):
            if limit is not None and len(ready) >= limit:
                break
            try:
                st = os.lstat(path)
            except OSError:
                del self.pending[path]
                log.info("document_vanished", document=path.relative_to(self.inbox).as_posix(),
                         detail="deleted or moved away before it settled; nothing to do")
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


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (``nfs4``, ``ext4``...), from mountinfo;
    None where that cannot be known (not Linux)."""
    text = mountinfo
    if text is None:
        try:
            text = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None
    target = os.path.realpath(path)
    best, fstype = "", None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        mount = _unescape(fields[4])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, fstype = mount, right.split()[0]
    return fstype


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _now() -> float:
    import time

    return time.time()
