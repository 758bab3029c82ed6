"""``batchd status`` for operators: the figures, as text or JSON, once or refreshed.

The figures come from the state file, read alongside a running daemon (SQLite WAL lets
a reader see the last committed state without blocking the writer). Batch progress is
what the daemon saw at its last poll of each batch.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import datetime, timezone
from typing import Any, TextIO

from batchd.config import Config

#: Clears a terminal and puts the cursor home, before each redraw of ``--watch``.
CLEAR = "\x1b[H\x1b[2J"
BAR_WIDTH = 24
#: Batch states a batch is "in flight" in, with how to say them.
FLIGHT_STATES = {"intent": "creating", "unknown": "create outcome unknown, resolving",
                 "in_progress": "in progress", "ended": "ended, collecting results"}


def empty_figures() -> dict[str, Any]:
    return {"documents": {}, "requests": {}, "usage": None, "reused": 0, "oldest_queued_at": None,
            "oldest_queued": None, "batches": [], "hold": None}


def collect(config: Config, now: float | None = None) -> dict[str, Any]:
    """The figures of ``batchd status --json``: the store's counts, with ages and progress added."""
    from batchd.store import Store

    now = time.time() if now is None else now
    if not config.state.exists():
        figures = empty_figures()
    else:
        store = Store(config.state)
        try:
            figures = store.counts()
            oldest = store.one(
                "SELECT r.queued_at, r.task, d.source FROM requests r JOIN documents d ON d.id = r.document_id"
                " WHERE r.state='queued' ORDER BY r.queued_at, r.id LIMIT 1")
        finally:
            store.close()
        figures["oldest_queued"] = None if oldest is None else {
            "document": oldest["source"], "task": oldest["task"], "queued_at": oldest["queued_at"],
            "age_s": round(max(0.0, now - oldest["queued_at"]), 1)}
    for batch in figures["batches"]:
        batch.update(_progress(batch, now))
    figures["generated_at"] = now
    return figures


def _progress(batch: dict[str, Any], now: float) -> dict[str, Any]:
    counts = batch.get("counts") or {}
    done = sum(v for k, v in counts.items() if k != "processing") if counts else 0
    since = batch.get("created_at") or batch.get("intent_at") or now
    return {"done": done, "age_s": round(max(0.0, now - since), 1)}


def render(f: dict[str, Any], now: float, width: int = 80) -> str:
    """The figures as a few lines a person reads at a glance."""
    docs = f.get("documents") or {}
    lines = ["documents: " + (", ".join(f"{n} {k}" for k, n in sorted(docs.items())) or "none")]
    reqs = f.get("requests") or {}
    in_flight = reqs.get("submitting", 0) + reqs.get("in_flight", 0)
    lines.append(f"requests: {reqs.get('queued', 0)} waiting, {in_flight} in flight, "
                 f"{reqs.get('final', 0)} final ({f.get('reused', 0)} reused)")
    oldest = f.get("oldest_queued")
    if oldest:
        lines.append(f"oldest waiting request: {age(now - oldest['queued_at'])} "
                     f"({oldest['document']}, {oldest['task']})")
    elif f.get("oldest_queued_at"):
        lines.append(f"oldest waiting request: {age(now - f['oldest_queued_at'])}")
    batches = f.get("batches") or []
    lines.append(f"batches in flight: {len(batches)}")
    for b in batches:
        lines.append("  " + batch_line(b, now, width - 2))
    u = f.get("usage")
    if u and u.get("answers"):
        cost = f"${u['cost_usd']:.4f}" if u.get("cost_usd") is not None else "unknown (no price for the model)"
        line = f"tokens: {u['input_tokens']:,} in, {u['output_tokens']:,} out"
        cached = (u.get("cache_creation_input_tokens") or 0) + (u.get("cache_read_input_tokens") or 0)
        if cached:
            line += f", {cached:,} cache"
        line += f"; cost {cost}"
        if u.get("realtime_usd"):
            line += f" (real-time price of the same tokens ${u['realtime_usd']:.4f}"
            if u.get("cost_usd") is not None:
                line += f", saved ${u['realtime_usd'] - u['cost_usd']:.4f}"
            line += ")"
        lines.append(line)
    else:
        lines.append("tokens: none yet")
    if f.get("hold"):
        lines.append(f"HELD: {f['hold']}")
    return "\n".join(lines)


def batch_line(b: dict[str, Any], now: float, width: int = 78) -> str:
    """``msgbatch_... [#####-----] 12/40  30%  in progress, 3 min 2 s old``."""
    total = b.get("request_count") or 0
    progress = _progress(b, now)
    done = progress["done"]
    share = done / total if total else 0.0
    bar_width = max(10, min(BAR_WIDTH, width - 60))
    filled = int(round(share * bar_width))
    bar = "[" + "#" * filled + "-" * (bar_width - filled) + "]"
    name = b.get("api_id") or f"(batch {b.get('id')})"
    state = FLIGHT_STATES.get(b.get("state", ""), b.get("state", ""))
    return f"{name} {bar} {done}/{total} {share:4.0%}  {state}, {age(now - (b.get('created_at') or b.get('intent_at') or now))} old"


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def watch(config: Config, *, interval: float = 2.0, count: int | None = None, as_json: bool = False,
          out: TextIO | None = None) -> None:
    """Refresh every ``interval`` seconds until Ctrl-C (or ``count`` refreshes).

    On a terminal each refresh redraws the screen; elsewhere refreshes follow each other,
    separated by a blank line, and with ``as_json`` each is one JSON object on one line.
    """
    out = out or sys.stdout
    tty = out.isatty()
    shown = 0
    try:
        while True:
            now = time.time()
            figures = collect(config, now)
            if as_json:
                out.write(json.dumps(figures, separators=(",", ":")) + "\n")
            else:
                stamp = datetime.fromtimestamp(now, timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")
                width = shutil.get_terminal_size((80, 24)).columns if tty else 80
                header = f"batchd status at {stamp} (every {interval:g} s; Ctrl-C to stop)"
                body = render(figures, now, width)
                out.write((CLEAR if tty else ("\n" if shown else "")) + header + "\n" + body + "\n")
            out.flush()
            shown += 1
            if count is not None and shown >= count:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        if tty:
            out.write("\n")
            out.flush()
    except BrokenPipeError:  # `batchd status --watch | head`: the reader has seen enough
        if out is sys.stdout:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
