"""batchd as a service: sd_notify, signals, watching, permissions, logs, status and doctor.

Where the environment or signals are what is tested, batchd runs as a real process
(``python -m batchd run ...``) with its own environment: $NOTIFY_SOCKET is a unix datagram
socket bound in the test's folder and read here, signals are sent with ``kill``, and
stderr is read line by line as the process writes it. Waits are on conditions, with
deadlines.
"""

from __future__ import annotations

import ctypes
import json
import os
import pty
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from batchd import logs, statusview
from batchd.notify import Notifier
from batchd.store import Store
from batchd.testing import wait_until
from batchd.watcher import NETWORK_FILESYSTEMS, filesystem_type
from watchdog.observers.polling import PollingObserver

SECRET = "sk-ant-api03-SERVICE-TEST-never-log-me-0123456789abcdef"
#: A sentence that exists only in a document: it must never reach a log line.
MARKER = "The aubergine treaty of Quillfeather Lane was signed by seven herons."
CLEAR = "\x1b[H\x1b[2J"


# -- helpers -------------------------------------------------------------------------


def clean_env(**extra: Any) -> dict[str, str]:
    """This process's environment without anything batchd or systemd would read, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "BATCHD_", "CREDENTIALS_", "NOTIFY_", "WATCHDOG_"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def write_config(root: Path, **sections: dict[str, Any]) -> Path:
    """A config.toml in ``root`` with fast test timings; ``sections`` override whole keys."""
    data: dict[str, dict[str, Any]] = {
        "paths": {"inbox": "inbox", "outbox": "outbox", "state": "state/batchd.db", "plugins": "plugins"},
        "batch": {"max_wait": 0.1, "poll_initial": 0.05, "poll_max": 0.2},
        "watch": {"settle": 0.1, "rescan": 0},
        "tasks": {"enabled": ["summarize"]},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    text = "".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()) + "\n"
                   for section, values in data.items())
    path = root / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def drop(inbox: Path, name: str, text: str) -> None:
    """Write a file into the inbox under a temporary (ignored) name, then rename it."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox / f".{name}.part"
    tmp.write_text(text, encoding="utf-8")
    os.rename(tmp, inbox / name)


def results(outbox: Path) -> dict[str, dict[str, Any]]:
    return {(m := json.loads(p.read_text()))["source"]: m for p in outbox.rglob("result.json")}


def batch_states(state: Path) -> list[str]:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT state FROM batches ORDER BY id")]


class Proc:
    """A ``batchd`` process; its stdout and stderr are read as they come, line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "batchd", *args], cwd=cwd, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, encoding="utf-8")
        self.out: list[str] = []
        self.err: list[str] = []
        self.cond = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, lines), daemon=True)
                        for s, lines in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self.cond:
                lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def events(self) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(line) for line in self.err if line.startswith("{")]

    def wait_line(self, found: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = found()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not any(r.is_alive() for r in self.readers)):
                    raise AssertionError(f"{what} not seen within {timeout} s; stderr:\n" + "\n".join(self.err[-40:]))
                self.cond.wait(min(left, 0.1))

    def wait_event(self, name: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for line in self.err:
                if line.startswith("{"):
                    event = json.loads(line)
                    if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                        return event
            return None

        return self.wait_line(found, f"log event {name}", timeout)

    def finish(self, timeout: float) -> int:
        """Wait for the exit, and for the last lines of its output."""
        code = self.p.wait(timeout)
        for reader in self.readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


@pytest.fixture
def procs():
    """Starts batchd processes; any still running at the end of the test is killed."""
    started: list[Proc] = []

    def start(args: list[str], cwd: Path, env: dict[str, str]) -> Proc:
        proc = Proc(args, cwd, env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


class NotifySocket:
    """The systemd side of sd_notify: a unix datagram socket, read in arrival order."""

    def __init__(self, path: Path) -> None:
        assert len(str(path)) < 100, f"unix socket path too long: {path}"
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[tuple[float, str]] = []
        self.cursor = 0

    def next(self, match: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The first message after the last one returned that matches; later ones stay unread."""
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.received):
                message = self.received[self.cursor][1]
                self.cursor += 1
                if match(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching notification within {timeout} s; got "
                                     f"{[m for _, m in self.received]}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def drain(self) -> list[str]:
        """Whatever has arrived but not been read yet, without waiting."""
        self.sock.settimeout(0)
        try:
            while True:
                self.received.append((time.monotonic(), self.sock.recv(4096).decode()))
        except (BlockingIOError, TimeoutError):
            pass
        return [m for _, m in self.received]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def private(path: Path) -> bool:
    """No permission at all for users other than the owner and the group."""
    return stat.S_IMODE(path.stat().st_mode) & 0o007 == 0


def without_dac_override() -> None:
    """In the child, before exec: root loses the capabilities that let it ignore file modes.

    Run as root, ``chmod 555`` stops nothing; dropping CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set makes the exec'd root process obey modes
    like any user. As another user this is a no-op.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def batchd(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60,
           **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batchd", *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout, **kwargs)


# -- sd_notify -----------------------------------------------------------------------


def test_sd_notify_ready_after_recovery_then_status_watchdog_stopping(tmp_path, notify_socket, procs):
    """READY=1 comes once recovery is done and the inbox scanned; WATCHDOG=1 from the loop.

    An earlier run is killed (SIGKILL, like a power cut) right after it committed a
    batch's intent row and before the create call: the create's outcome is unknown to the
    next run, which must settle it from the API's list of batches (here: never created,
    after a grace of 2 s) before it says READY=1. So at READY=1 that batch is already
    resolved in the state file, and the STATUS sent with READY counts the files the first
    scan found.
    """
    config = write_config(tmp_path)
    inbox, outbox, state = tmp_path / "inbox", tmp_path / "outbox", tmp_path / "state" / "batchd.db"
    drop(inbox, "first.txt", "Quarterly revenue grew while the harbour project stayed on budget.")
    crashed = batchd("run", "--offline", "-c", str(config), cwd=tmp_path,
                     env=clean_env(BATCHD_CRASH_AT="after_intent"))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert batch_states(state) == ["intent"]
    drop(inbox, "second.txt", "The clinic moves to new premises in May; patients will be told by letter.")

    watchdog_usec = 400_000
    proc = procs(["run", "--offline", "-c", str(config)], tmp_path,
                 clean_env(NOTIFY_SOCKET=notify_socket.path, WATCHDOG_USEC=watchdog_usec))
    ready = notify_socket.next(lambda m: "READY=1" in m.splitlines(), timeout=30)
    # Read at once: recovery has settled the unknown create before READY=1 was sent.
    assert batch_states(state)[0] == "abandoned"
    assert "STATUS=" in ready and "2 files settling" in ready, ready

    wait_until(lambda: {"first.txt", "second.txt"} <= set(results(outbox)), timeout=30, message="both results")
    notify_socket.next(lambda m: m.startswith("STATUS=") and "2 documents done" in m)
    # Idle now: pings keep coming at half of WATCHDOG_USEC, not at the loop's longest sleep (1 s).
    pings = []
    while len(pings) < 5:
        notify_socket.next(lambda m: m == "WATCHDOG=1")
        pings.append(notify_socket.received[notify_socket.cursor - 1][0])
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 2 * watchdog_usec / 1e6, gaps

    before = time.monotonic()
    proc.p.send_signal(signal.SIGTERM)
    assert proc.finish(timeout=5) == 0
    assert time.monotonic() - before < 3
    notify_socket.next(lambda m: m == "STOPPING=1", timeout=1)
    messages = notify_socket.drain()
    assert messages.index("STOPPING=1") > max(i for i, m in enumerate(messages) if "READY=1" in m)
    assert proc.wait_event("stopped")


def test_notifier_is_silent_without_systemd(tmp_path, notify_socket):
    quiet = Notifier({})
    assert not quiet.enabled and quiet.send("READY=1") is False
    quiet.ready("x")  # nothing to send to, nothing raised
    quiet.ping()
    quiet.stopping()
    assert quiet.next_ping_in() == float("inf")
    # WATCHDOG_PID names another process (a parent's environment we inherited): no pings.
    other = Notifier({"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000",
                      "WATCHDOG_PID": str(os.getppid())})
    other.ping()
    mine = Notifier({"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000",
                     "WATCHDOG_PID": str(os.getpid())})
    mine.ping()
    mine.status("line one\nline two")
    assert notify_socket.next(lambda m: True, timeout=2) == "WATCHDOG=1"
    assert notify_socket.next(lambda m: True, timeout=2) == "STATUS=line one line two"


# -- signals -------------------------------------------------------------------------


def test_sighup_reloads_good_config_and_rejects_bad(tmp_path, notify_socket, procs):
    config = write_config(tmp_path, tasks={"enabled": ["summarize", "classify"]}, service={"umask": "077"})
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    proc = procs(["run", "--offline", "-c", str(config)], tmp_path, clean_env(NOTIFY_SOCKET=notify_socket.path))
    notify_socket.next(lambda m: "READY=1" in m.splitlines(), timeout=30)

    write_config(tmp_path, tasks={"enabled": ["summarize"]}, service={"umask": "077"})
    proc.p.send_signal(signal.SIGHUP)
    assert proc.wait_event("reloaded")["tasks"] == ["summarize"]
    drop(inbox, "after-reload.txt", "Minutes of the board meeting about the new warehouse.")
    wait_until(lambda: "after-reload.txt" in results(outbox), timeout=20, message="result after reload")
    assert set(results(outbox)["after-reload.txt"]["tasks"]) == {"summarize"}

    config.write_text(config.read_text().replace("[batch]\n", "[batch]\nmax_requestz = 5\n"))
    proc.p.send_signal(signal.SIGHUP)
    rejected = proc.wait_event("reload_rejected")
    assert "batch.max_requestz" in rejected["error"] and rejected["level"] == "error"
    drop(inbox, "after-bad-reload.txt", "A second note, sent after a broken configuration.")
    wait_until(lambda: "after-bad-reload.txt" in results(outbox), timeout=20, message="result after bad reload")
    assert set(results(outbox)["after-bad-reload.txt"]["tasks"]) == {"summarize"}

    proc.p.send_signal(signal.SIGTERM)
    assert proc.finish(timeout=5) == 0
    assert not any(m == "WATCHDOG=1" for m in notify_socket.drain())  # no WATCHDOG_USEC, no pings
    # service.umask = "077": what batchd created is for its user alone.
    for path in (outbox, outbox / "after-reload.txt", outbox / "after-reload.txt" / "result.json"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_second_sigint_exits_at_once(tmp_path, notify_socket, procs, batchd_emulator):
    """The first SIGINT is graceful: it waits for the create call in flight (held 60 s by
    the emulator). The second one ends the process at once, with 130."""
    config = write_config(tmp_path)
    proc = procs(["run", "-c", str(config)], tmp_path,
                 clean_env(NOTIFY_SOCKET=notify_socket.path, ANTHROPIC_API_KEY=SECRET,
                           ANTHROPIC_BASE_URL=batchd_emulator.base_url))
    notify_socket.next(lambda m: "READY=1" in m.splitlines(), timeout=30)
    batchd_emulator.faults.latency = 60.0
    drop(tmp_path / "inbox", "slow.txt", "A document whose batch takes its time.")
    proc.wait_event("batch_submitting")
    proc.p.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.p.wait(0.5)  # graceful: still waiting for the create call
    before = time.monotonic()
    proc.p.send_signal(signal.SIGINT)
    assert proc.finish(timeout=5) == 130
    assert time.monotonic() - before < 2
    assert not any("Traceback" in line for line in proc.err)


# -- watching ------------------------------------------------------------------------


def test_polling_observer_sees_new_files(batchd_harness):
    h = batchd_harness({"watch": {"polling": True, "rescan": 0}, "tasks": {"enabled": ["summarize"]}})
    h.start()
    wait_until(lambda: h.daemon.next_rescan > 0, message="the start-up scan")
    assert h.daemon.watcher.mode == "polling"
    assert isinstance(h.daemon.watcher.observer, PollingObserver)
    # The start-up scan is over and rescans are off: only the polling observer can see this.
    h.drop({"polled/new.txt": "A file on a share where inotify would say nothing."})
    assert h.wait_for(["polled/new.txt"], timeout=15)["polled/new.txt"]["status"] == "done"


def test_network_filesystems_are_recognised_from_mountinfo():
    """Made-up mount table: the inbox's filesystem is that of the longest mount point above it."""
    mountinfo = ("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
                 "40 22 0:50 / /mnt/share rw,relatime - nfs4 server:/export rw\n"
                 "41 22 0:51 / /mnt/with\\040space rw,relatime - cifs //server/x rw\n")
    assert filesystem_type(Path("/mnt/share/inbox"), mountinfo) == "nfs4"
    assert filesystem_type(Path("/mnt/shared/inbox"), mountinfo) == "ext4"
    assert filesystem_type(Path("/mnt/with space/inbox"), mountinfo) == "cifs"
    assert {"nfs4", "cifs", "fuse.sshfs", "9p"} <= NETWORK_FILESYSTEMS and "ext4" not in NETWORK_FILESYSTEMS


def test_rescan_finds_a_file_whose_events_were_lost(batchd_harness):
    """After start-up the daemon's observer is stopped (through the Harness), so the file
    dropped afterwards produces no event at all, as on a share where inotify is silent or
    when the kernel's event queue overflowed. Only the periodic rescan can find it."""
    h = batchd_harness({"watch": {"polling": False, "rescan": 0.3}, "tasks": {"enabled": ["summarize"]}})
    h.start()
    wait_until(lambda: h.daemon.next_rescan > 0, message="the start-up scan")
    assert h.daemon.watcher.mode == "inotify"
    h.daemon.watcher.stop()
    assert h.daemon.watcher.observer is None
    h.drop({"unseen.txt": "Nobody told the daemon about this file."})
    assert h.wait_for(["unseen.txt"], timeout=15)["unseen.txt"]["status"] == "done"


# -- files, permissions, logs ----------------------------------------------------------


def test_private_state_folder_is_created_0700(tmp_path):
    store = Store(tmp_path / "new-state" / "batchd.db")
    store.close()
    assert stat.S_IMODE((tmp_path / "new-state").stat().st_mode) == 0o700


def test_json_logs_without_secrets_or_text_and_private_files(tmp_path, batchd_emulator):
    """A run against the API (the emulator, with a recognizable key) at --log-level debug:
    every stderr line is one JSON event with level and event; neither the key nor the
    document's text is in any of them; the key is in no file either. Files and folders
    batchd created are closed to other users (umask 027), the state's folder to the group too."""
    config = write_config(tmp_path)
    drop(tmp_path / "inbox", "memo.txt", f"{MARKER} Contact: Ann Example, ann@example.com.")
    result = batchd("run", "--once", "--log-level", "debug", "-c", str(config), cwd=tmp_path,
                    env=clean_env(ANTHROPIC_API_KEY=SECRET, ANTHROPIC_BASE_URL=batchd_emulator.base_url))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"level", "event", "timestamp"} <= set(e) for e in events)
    assert not [e for e in events if e["level"] in ("error", "critical")], result.stderr
    names = {e["event"] for e in events}
    assert {"started", "document_taken", "batch_submitted", "batch_collected", "document_finished"} <= names
    assert all(e.get("doc_id") for e in events if e["event"] in ("document_taken", "document_finished"))
    assert all(e["batch_id"].startswith("msgbatch_") for e in events if e["event"] == "batch_submitted")
    assert SECRET not in result.stderr and "never-log-me" not in result.stderr
    assert "aubergine" not in result.stderr and "Quillfeather" not in result.stderr
    written = [p for p in (tmp_path / "state").rglob("*")] + [p for p in (tmp_path / "outbox").rglob("*")]
    assert any(p.name == "result.json" for p in written)
    for path in written:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    # Permissions: umask 027 unless set (group may read, others nothing); the state folder private.
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for path in [tmp_path / "outbox", *written]:
        if path.name != "memo.txt":  # the original keeps the mode it came with
            assert private(path), (path, oct(path.stat().st_mode))
    folder = tmp_path / "outbox" / "memo.txt"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "result.json").stat().st_mode) == 0o640


def test_redaction_of_secrets_in_log_events():
    logs.add_secret("a-custom-credential-value")
    event = logs.redact(None, "error", {"event": "x", "error": f"bad key {SECRET} and a-custom-credential-value",
                                        "nested": {"list": [SECRET, 3]}})
    text = json.dumps(event)
    assert SECRET not in text and "a-custom-credential-value" not in text
    assert event["nested"]["list"] == [logs.REDACTED, 3]


# -- status --------------------------------------------------------------------------


@pytest.fixture
def busy_harness(batchd_harness, batchd_emulator):
    """A running daemon with one document done and one batch in flight (it takes 120 s)."""
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"done.txt": "Invoice 42: the harbour crane repair costs 12,000 EUR, due in March."})
    h.start()
    h.wait_for(["done.txt"])
    batchd_emulator.faults.processing_time = 120.0
    h.drop({"flying.txt": "A letter about the summer schedule of the ferry to the islands."})
    state = h.root / "state" / "batchd.db"

    def polled() -> bool:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM batches WHERE state='in_progress' AND counts IS NOT NULL"
                                ).fetchone()[0] == 1

    wait_until(polled, timeout=20, message="a batch in flight, polled once")
    return h


def test_status_json_and_text(busy_harness):
    h = busy_harness
    result = batchd("status", "--json", "-c", str(h.config_path), cwd=h.root)
    assert result.returncode == 0, result.stderr
    f = json.loads(result.stdout)
    assert f["documents"] == {"done": 1, "active": 1}
    [batch] = f["batches"]
    assert batch["state"] == "in_progress" and batch["api_id"].startswith("msgbatch_")
    assert batch["request_count"] == 1 and batch["done"] == 0 and batch["age_s"] >= 0
    assert f["usage"]["input_tokens"] > 0 and 0 < f["usage"]["cost_usd"] < f["usage"]["realtime_usd"]
    assert f["oldest_queued"] is None

    text = batchd("status", "-c", str(h.config_path), cwd=h.root).stdout
    assert "documents: 1 active, 1 done" in text
    assert "batches in flight: 1" in text
    assert re.search(r"msgbatch_\w+ \[-+\] 0/1 +0%  in progress, \d+ s old", text), text
    assert re.search(r"cost \$\d+\.\d{4} \(real-time price of the same tokens \$\d+\.\d{4}, saved", text), text


def test_status_watch_refreshes_and_stops_cleanly(busy_harness, procs):
    h = busy_harness
    # --count: a fixed number of refreshes, plain text when not on a terminal.
    piped = batchd("status", "--watch", "--interval", "0.1", "--count", "3", "-c", str(h.config_path), cwd=h.root)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count("batchd status at ") == 3 and CLEAR not in piped.stdout
    assert len(re.findall(r"msgbatch_\w+ \[-+\] 0/1", piped.stdout)) == 3
    lines = batchd("status", "--watch", "--json", "--interval", "0.1", "--count", "2", "-c", str(h.config_path),
                   cwd=h.root).stdout.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["batches"][0]["request_count"] == 1 for line in lines)

    # On a terminal: each refresh clears the screen and redraws.
    master, slave = pty.openpty()
    tty = subprocess.Popen([sys.executable, "-m", "batchd", "status", "--watch", "--interval", "0.1", "--count",
                            "2", "-c", str(h.config_path)], cwd=h.root, env=clean_env(), stdout=slave,
                           stderr=subprocess.PIPE)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert tty.wait(10) == 0
    assert screen.decode().count(CLEAR) == 2

    # Without --count it runs until Ctrl-C, and stops cleanly on it.
    watch = procs(["status", "--watch", "--interval", "0.1", "-c", str(h.config_path)], h.root, clean_env())
    watch.wait_line(lambda: sum("batchd status at" in line for line in watch.out) >= 2, "two refreshes")
    watch.p.send_signal(signal.SIGINT)
    assert watch.finish(timeout=5) == 0
    assert not watch.err, watch.err


def test_status_names_the_oldest_waiting_request(batchd_harness):
    from batchd.config import load

    h = batchd_harness({"batch": {"max_wait": 3600}, "tasks": {"enabled": ["summarize"]}})
    h.start()
    h.drop({"letters/waiting.txt": "A request that waits for its batch to fill up."})
    config = load(h.config_path)
    figures = wait_until(lambda: (f := statusview.collect(config))["oldest_queued"] and f, message="a queued request")
    assert figures["oldest_queued"]["document"] == "letters/waiting.txt"
    assert figures["oldest_queued"]["task"] == "summarize" and figures["requests"]["queued"] == 1
    text = statusview.render(figures, figures["oldest_queued"]["queued_at"] + 75)
    assert "oldest waiting request: 1 min 15 s (letters/waiting.txt, summarize)" in text


def test_status_text_shows_progress_age_and_hold():
    now = 1_000_000.0
    figures = {"documents": {"active": 2}, "requests": {"queued": 3, "in_flight": 14}, "reused": 0,
               "oldest_queued_at": None, "oldest_queued": None, "usage": None, "hold": "HTTP 401 authentication_error",
               "batches": [
                   {"id": 3, "api_id": None, "state": "unknown", "request_count": 10, "intent_at": now - 5,
                    "created_at": None, "counts": None},
                   {"id": 4, "api_id": "msgbatch_x", "state": "in_progress", "request_count": 4,
                    "intent_at": now - 3700, "created_at": now - 3700, "counts": {"processing": 1, "succeeded": 3}}]}
    lines = statusview.render(figures, now).splitlines()
    assert "requests: 3 waiting, 14 in flight, 0 final (0 reused)" in lines
    assert "  (batch 3) [------------------] 0/10   0%  create outcome unknown, resolving, 5 s old" in lines
    assert "  msgbatch_x [##############----] 3/4  75%  in progress, 1 h 1 min old" in lines
    assert lines[-1] == "HELD: HTTP 401 authentication_error"


# -- doctor --------------------------------------------------------------------------


def test_doctor_offline_passes(tmp_path):
    config = write_config(tmp_path, tasks={"enabled": ["summarize", "classify", "extract_contacts"]})
    (tmp_path / "inbox").mkdir()
    (tmp_path / "outbox").mkdir()
    result = batchd("doctor", "--offline", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("✓ ") for line in lines), result.stdout
    text = result.stdout
    for expected in ("configuration", "inbox", "outbox", "state folder", "API key: not needed with --offline",
                     "request of task summarize: accepted", "request of task classify: accepted",
                     "request of task extract_contacts: accepted"):
        assert expected in text, (expected, text)


def test_doctor_names_an_unwritable_outbox_and_a_missing_key_and_notes_a_shared_state_folder(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    outbox = tmp_path / "outbox"
    outbox.mkdir(mode=0o555)
    outbox.chmod(0o555)
    (tmp_path / "state").mkdir()
    (tmp_path / "state").chmod(0o755)
    try:
        result = batchd("doctor", "-c", str(config), cwd=tmp_path, preexec_fn=without_dac_override)
    finally:
        outbox.chmod(0o755)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
    assert len(failed) == 2, result.stdout
    assert "outbox" in failed[0] and "not writable" in failed[0] and "ermission denied" in failed[0]
    assert failed[1].startswith("✗ API key:") and "ANTHROPIC_API_KEY" in failed[1] and "--offline" in failed[1]
    shared = [line for line in result.stdout.splitlines() if line.startswith("✓ state folder")]
    assert shared and "shared" in shared[0] and "chmod 700" in shared[0], result.stdout
    assert "- request check skipped: no API key" in result.stdout
    assert any(line.startswith("✓ inbox") for line in result.stdout.splitlines())


def test_doctor_with_a_credential_file_asks_the_api_and_never_shows_the_key(tmp_path, batchd_emulator):
    config = write_config(tmp_path, tasks={"enabled": ["summarize", "classify"]})
    with config.open("a") as f:
        f.write('[tasks.classify]\nmodel = "no-such-model-9"\n')
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "anthropic_api_key").write_text(SECRET + "\n")
    result = batchd("doctor", "-c", str(config), cwd=tmp_path,
                    env=clean_env(CREDENTIALS_DIRECTORY=credentials, ANTHROPIC_BASE_URL=batchd_emulator.base_url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "✓ API key: found in $CREDENTIALS_DIRECTORY/anthropic_api_key" in result.stdout
    assert re.search(r"✓ request of task summarize: accepted by http://\S+ \(model claude-haiku-4-5, \d+ input",
                     result.stdout), result.stdout
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
    assert "task classify" in failed and "no-such-model-9" in failed and "404" in failed


def test_doctor_bad_config_exits_2_naming_the_key(tmp_path):
    (tmp_path / "config.toml").write_text("[watch]\npolling = \"sometimes\"\n")
    result = batchd("doctor", "--offline", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [result.stdout.strip()] and "watch.polling" in result.stdout
    assert result.stdout.startswith("✗ configuration")
