"""Never lose a result, never pay twice: the daemon killed with SIGKILL, again and again.

The daemon runs as its own process against the emulator, also its own process, with
faults on (per-request errors, expiry, HTTP 429/500/529, creates whose answer is lost).
It is killed at each named point of ``batchd.crashpoints`` and at random instants, and
restarted each time. The proof comes from the emulator's record of what it created and
billed, and from the outbox.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from batchd.crashpoints import POINTS

from helpers import check_folder

TASKS = ["summarize", "classify"]


def _env(base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BATCHD_"))}
    env.update(ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="test-key", **extra)
    return env


@pytest.fixture
def emulator_process(tmp_path):
    """``batchd emulate`` as its own process, with every kind of fault on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchd.emulator", "--port", "0", "--state", str(tmp_path / "emulator.db"),
         "--processing-time", "0.3", "--error-rate", "0.1", "--expire-rate", "0.05", "--http-fault-rate", "0.05",
         "--lost-response-rate", "0.2", "--retry-after", "0.05", "--seed", "11"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    base_url = line.split()[-1].strip()
    _put_faults(base_url, {"stall_seconds": 1.0})
    yield base_url
    proc.terminate()
    proc.wait(10)


def _put_faults(base_url: str, faults: dict) -> None:
    import urllib.request

    req = urllib.request.Request(base_url + "/_emulator/faults", data=json.dumps(faults).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _record(base_url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(base_url + "/_emulator/record", timeout=10) as resp:
        return json.loads(resp.read())


def _config(root: Path) -> Path:
    path = root / "config.toml"
    path.write_text(f"""
[paths]
inbox = "inbox"
outbox = "outbox"
state = "state/batchd.db"
plugins = "no-plugins"
[batch]
max_requests = 6
max_wait = 0.2
max_attempts = 6
poll_initial = 0.05
poll_max = 0.2
[watch]
settle = 0.05
rescan = 1
[tasks]
enabled = {json.dumps(TASKS)}
[log]
format = "json"
""")
    return path


def _run(config: Path, base_url: str, *, crash_at: str | None = None, kill_after: float | None = None,
         timeout: float = 60) -> int:
    env = _env(base_url, **({"BATCHD_CRASH_AT": crash_at} if crash_at else {}))
    proc = subprocess.Popen([sys.executable, "-m", "batchd", "run", "--once", "-c", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if kill_after is not None:
            try:
                proc.wait(kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"batchd did not finish within {timeout} s: {proc.stderr.read()[-3000:]}")
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr[-3000:]
    return code


def test_sigkill_anywhere_loses_nothing_and_bills_nothing_twice(tmp_path, emulator_process):
    base_url = emulator_process
    config = _config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rng = random.Random(5)
    sources = []

    def drop(n: int) -> None:
        for _ in range(n):
            i = len(sources)
            rel = f"batch{i % 3}/doc-{i}.txt"
            (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
            (inbox / rel).write_text(f"Document {i}. Invoice {rng.randint(1000, 9999)} from Acme Ltd "
                                     f"for {rng.randint(10, 999)} EUR; contact ann{i}@acme.example.\n")
            sources.append(rel)

    crashed = Counter()
    for point in POINTS:
        drop(4)
        code = _run(config, base_url, crash_at=point)
        crashed[point] += code == -signal.SIGKILL
    for _ in range(6):
        drop(3)
        code = _run(config, base_url, kill_after=rng.uniform(0.3, 1.5))
        crashed["random"] += code == -signal.SIGKILL
    assert _run(config, base_url, timeout=120) == 0

    # Every named point was really reached and killed the daemon at least once.
    assert all(crashed[p] >= 1 for p in POINTS), crashed
    assert crashed["random"] >= 1, crashed

    outbox = tmp_path / "outbox"
    manifests = [json.loads(p.read_text()) for p in outbox.rglob("result.json")]
    by_source = Counter(m["source"] for m in manifests)
    assert by_source == Counter(sources), "every input ends as exactly one complete folder"
    for folder in {p.parent for p in outbox.rglob("*") if p.is_file()}:
        assert (folder / "result.json").exists(), f"{folder} has files but no result.json"
    for m in manifests:
        m["_folder"] = str((outbox / m["source"]).relative_to(outbox))
        check_folder(outbox, m)
        assert m["original"] is not None
    assert not [p for p in inbox.rglob("*") if p.is_file()], "every original was moved out of the inbox"

    record = _record(base_url)
    db = sqlite3.connect(tmp_path / "state" / "batchd.db")
    owner = {cid: (src, task) for cid, src, task in db.execute(
        "SELECT r.custom_id, d.source, r.task FROM requests r JOIN documents d ON d.id = r.document_id"
        " WHERE r.custom_id IS NOT NULL")}
    billed = [b for b in record["billed"] if b["custom_id"]]
    assert billed and all(b["custom_id"] in owner for b in billed)
    paid = Counter(owner[b["custom_id"]] for b in billed)
    twice = {k: n for k, n in paid.items() if n > 1}
    assert not twice, f"billed more than once: {twice}"
    keys = Counter(b["reuse_key"] for b in billed)
    assert max(keys.values()) == 1
    # Every succeeded task entry is one of the billed answers; nothing was paid and lost.
    succeeded = {t["custom_id"] for m in manifests for t in m["tasks"].values() if t["status"] == "succeeded"}
    assert succeeded == {b["custom_id"] for b in billed}
    # The lost responses really happened and were resolved from the API's list, not resent.
    created_ids = [c["batch_id"] for c in record["created"]]
    known = {row[0] for row in db.execute("SELECT api_id FROM batches WHERE api_id IS NOT NULL")}
    assert set(created_ids) <= known, "every batch the API created was found and collected"
    resolved = db.execute("SELECT count(*) FROM batches WHERE api_id IS NOT NULL AND error IS NOT NULL").fetchone()[0]
    never = db.execute("SELECT count(*) FROM batches WHERE state='abandoned'").fetchone()[0]
    assert resolved >= 1, "some create's answer was lost and the batch was recognised as ours"
    assert never >= 1, "some intent was never sent (killed after_intent) and was resolved as never created"
