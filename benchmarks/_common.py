"""Shared parts of the benchmarks: the emulator process, a workspace, files, the daemon process.

Everything runs offline: the emulator is started as its own process (``batchd emulate``
with zero processing time) and the daemon reaches it through ``ANTHROPIC_BASE_URL``, as
a user's daemon would reach the real API. The daemon is its own process too, so that
its peak memory (``ru_maxrss`` from ``wait4`` on exactly that child) is the daemon's
alone, not the benchmark's nor the emulator's.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent

WORDS = ("invoice payment contract patient server budget meeting schedule report customer delivery "
         "warranty clinic software account quarter revenue lawyer ticket update contract hospital "
         "network court settlement pricing shipment laptop diagnosis dividend appeal license").split()
FIRST = "Ann Bob Carla Dev Emma Farid Grace Hugo Ines Jon Kira Liam Mona Nils Olga Pete".split()
LAST = "Smith Jones Novak Garcia Chen Okafor Silva Muller Rossi Dubois Kowalski Berg".split()
COMPANIES = "Acme Globex Initech Umbrella Hooli Stark Wayne Tyrell Cyberdyne Soylent".split()

#: Tasks of every benchmark unless told otherwise: the three built-in ones (3 requests a file).
TASKS = ["summarize", "classify", "extract_contacts"]


# -- the machine ---------------------------------------------------------------------


def machine() -> str:
    """One line: cores (and how many this process may use), CPU, memory, Python."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({usable} usable), {cpu}{mem}, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def print_header(title: str, **settings: Any) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")
    if settings:
        print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    sys.stdout.flush()


def figure(name: str, value: str, verdict: str | None = None) -> None:
    """One result line: ``name: value`` and, when there is a target, whether it is met."""
    print(f"{name}: {value}" + (f"  [{verdict}]" if verdict else ""))
    sys.stdout.flush()


def verdict(ok: bool, target: str) -> str:
    return f"{'MET' if ok else 'MISSED'}: target {target}"


def mb(kib: float) -> str:
    return f"{kib / 1024:.0f} MB"


# -- processes -------------------------------------------------------------------------


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


class Emulator:
    """``batchd emulate --port 0 --processing-time 0`` as its own process."""

    def __init__(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batchd", "emulate", "--port", "0", "--processing-time", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
        line = self.process.stdout.readline().strip()
        if not line.startswith("batchd emulator serving "):
            self.process.kill()
            raise SystemExit(f"the emulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]

    def peak_kib(self) -> int:
        return proc_status(self.process.pid).get("VmHWM", 0)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM... of a live process, in KiB."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.startswith("Vm"):
                found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


@dataclass
class Child:
    """A child process timed from launch to exit, its peak RSS taken from ``wait4``."""

    argv: list[str]
    env: dict[str, str]
    log_path: Path | None = None
    started: float = 0.0
    ended: float | None = None
    code: int | None = None
    peak_kib: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> "Child":
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.started = time.time()
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        if log is not subprocess.DEVNULL:
            log.close()
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> bool:
        """True once the child has exited (and then its exit code and peak RSS are known)."""
        if self.code is not None:
            return True
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.ended = time.time()
        self.code = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.code
        self.peak_kib = usage.ru_maxrss  # KiB on Linux
        return True

    def wait(self, timeout: float, interval: float = 0.005) -> int:
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                self.kill()
                raise SystemExit(f"{' '.join(self.argv[1:4])} did not finish within {timeout:.0f} s"
                                 + (f"; log: {self.log_path}" if self.log_path else ""))
            time.sleep(interval)
        return self.code

    def terminate(self, timeout: float = 60.0) -> int:
        if not self.poll():
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.code is None:
            self.process.kill()
            self.poll() or time.sleep(0.1)
            self.poll()

    @property
    def wall(self) -> float:
        return (self.ended or time.time()) - self.started


def daemon(workspace: "Workspace", url: str, *, once: bool) -> Child:
    """``batchd run [--once] -c config.toml`` against the emulator; JSON log into the workspace."""
    argv = [sys.executable, "-m", "batchd", "run", "-c", str(workspace.config)]
    if once:
        argv.append("--once")
    env = _env({"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "benchmark"})
    return Child(argv, env, log_path=workspace.log).start()


def python_script(script: Path, args: list[str], url: str, log_path: Path | None = None) -> Child:
    env = _env({"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "benchmark"})
    return Child([sys.executable, str(script), *args], env, log_path=log_path).start()


# -- the workspace ---------------------------------------------------------------------


class Workspace:
    """A folder with inbox, outbox, state and a config.toml for one benchmark run."""

    def __init__(self, name: str, base: str | None = None, keep: bool = False, **config: dict[str, Any]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"batchd-bench-{name}-", dir=base))
        self.keep = keep
        self.inbox = self.root / "inbox"
        self.outbox = self.root / "outbox"
        self.state = self.root / "state" / "batchd.db"
        self.config = self.root / "config.toml"
        self.log = self.root / "daemon.log"
        self.inbox.mkdir()
        self.outbox.mkdir()
        (self.root / "plugins").mkdir()
        tables: dict[str, dict[str, Any]] = {
            "paths": {"inbox": "inbox", "outbox": "outbox", "state": "state/batchd.db", "plugins": "plugins"},
            "batch": {"max_requests": 1000, "max_wait": 60, "poll_initial": 0.05, "poll_max": 1.0},
            "watch": {"settle": 0.05, "rescan": 0},
            "log": {"level": "info", "format": "json"},
            "tasks": {"enabled": list(TASKS)},
        }
        for section, values in config.items():
            tables.setdefault(section, {}).update(values)
        self.config.write_text(_toml(tables), encoding="utf-8")

    def cleanup(self) -> None:
        """Removed when the benchmark ends, not now: deleting thousands of files keeps the
        disk busy for a while, and the next measurement would pay for it."""
        if self.keep:
            print(f"(kept {self.root})")
        else:
            _LEFT.append(self.root)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def results(self) -> int:
        """How many result.json files the outbox holds."""
        return sum(1 for _ in self.outbox.rglob("result.json"))

    def db_count(self, sql: str) -> int:
        """A count from the state file, read-only, alongside the running daemon."""
        if not self.state.exists():
            return 0
        try:
            conn = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute(sql).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            return 0

    def events(self, *names: str) -> Iterator[dict[str, Any]]:
        """The daemon's JSON log lines (optionally only these events)."""
        if not self.log.exists():
            return
        with open(self.log, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if not names or event.get("event") in names:
                    yield event

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


_LEFT: list[Path] = []


@atexit.register
def _remove_workspaces() -> None:
    for root in _LEFT:
        shutil.rmtree(root, ignore_errors=True)


def run_once(workspace: "Workspace", url: str, files: int, timeout: float) -> Child:
    """``batchd run --once`` over ``files`` fresh files; exits the benchmark unless each got its result.json."""
    write_files(workspace.inbox, files)
    quiet_disk()
    child = daemon(workspace, url, once=True)
    code = child.wait(timeout)
    results = workspace.results()
    if code != 0 or results != files:
        raise SystemExit(f"batchd exited {code} with {results} of {files} result.json:\n{workspace.log_tail()}")
    return child


def quiet_disk(pause: float = 1.0) -> None:
    """Write out what earlier steps left dirty, then pause: each timed run starts on an idle disk."""
    os.sync()
    time.sleep(pause)


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in tables.items():
        out.append(f"[{section}]")
        for key, value in values.items():
            out.append(f"{key} = {json.dumps(value)}")
        out.append("")
    return "\n".join(out)


def timestamp(event: dict[str, Any]) -> float:
    """The epoch seconds of a log event's ISO timestamp."""
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


# -- documents -------------------------------------------------------------------------


def text_for(i: int, words: int = 60) -> str:
    """A small, distinct, somewhat realistic note (~0.5 KB) with a contact in it."""
    first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
    company = COMPANIES[(i * 7) % len(COMPANIES)]
    body = " ".join(WORDS[(i * 7 + j * 3 + j * j) % len(WORDS)] for j in range(words))
    return (f"Note {i}\n\nFrom: {first} {last}, {company} <{first.lower()}.{last.lower()}{i}@{company.lower()}.com>\n"
            f"Phone: +1 555 {i % 1000:03d} {i % 10000:04d}\n\n{body.capitalize()}.\n")


def file_name(i: int) -> str:
    return f"note-{i:06d}.txt"


def write_files(folder: Path, count: int, start: int = 0) -> int:
    """``count`` distinct text files straight in ``folder``; returns their total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(start, start + count):
        data = text_for(i).encode()
        (folder / file_name(i)).write_bytes(data)
        total += len(data)
    return total


# -- figures ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
