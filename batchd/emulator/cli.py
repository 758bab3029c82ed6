"""``batchd emulate``: serve the emulator until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import sqlite3
import sys
import threading
from pathlib import Path

import click

from batchd.emulator.app import Emulator
from batchd.emulator.faults import Faults

_RATE = click.FloatRange(0.0, 1.0)
_SECONDS = click.FloatRange(min=0.0)

HELP = """Serve a local emulator of the Anthropic Messages and Message Batches API.

\b
The official SDK works against it through base_url (or ANTHROPIC_BASE_URL).
Answers come from a deterministic local engine: an extractive Markdown summary
for free text, and for a forced tool (tool_choice "tool" or "any") one tool_use
whose input fills the tool's input_schema from the text (contacts, categories
by keyword evidence, confidence, reasoning).

\b
Endpoints: POST/GET /v1/messages/batches, GET /v1/messages/batches/ID,
POST .../ID/cancel, DELETE .../ID, GET .../ID/results, POST /v1/messages,
POST /v1/messages/count_tokens.

\b
GET /_emulator/record returns what was sent and billed:
  {"created": [{"batch_id", "request_count", "custom_ids", "created_at"}],
   "billed":  [{"batch_id"|null, "custom_id"|null, "reuse_key", "model",
                "usage", "billed_at"}]}
one "billed" entry per succeeded batch result (once, when its batch ends)
and per POST /v1/messages answer. GET/PUT /_emulator/faults reads/changes the
fault settings (a JSON object of fault fields, e.g. {"error_rate": 0.1}).

\b
The emulator's own choices where the real API is undocumented: duplicate
custom_ids in one batch are rejected (400); canceling an ended batch,
deleting a batch that has not ended and fetching results before the end are
400 invalid_request_error; model ids not starting with "claude-" are 404
not_found_error ("errored" results in batches).

Prints "batchd emulator serving URL" once it listens, and exits 0 when stopped.
"""


@click.command("emulate", help=HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one (the URL printed shows it).")
@click.option("--state", "state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SQLite file keeping batches, results and the record across restarts (default: memory only).")
@click.option("--processing-time", type=_SECONDS, default=0.5, show_default=True,
              help="Seconds from create until a batch has ended.")
@click.option("--error-rate", type=_RATE, default=0.0, show_default=True,
              help="Fraction of batch requests that end errored (api_error or overloaded_error).")
@click.option("--expire-rate", type=_RATE, default=0.0, show_default=True,
              help="Fraction of batch requests that end expired.")
@click.option("--http-fault-rate", type=_RATE, default=0.0, show_default=True,
              help="Fraction of API calls answered 429 (with retry-after), 529 or 500 before any work is done.")
@click.option("--lost-response-rate", type=_RATE, default=0.0, show_default=True,
              help="Fraction of creates and messages calls whose work is done but whose answer is lost: "
                   "a 500, a dropped connection, or a stall with no answer.")
@click.option("--expire-after", type=_SECONDS, default=86400.0, show_default=True,
              help="Seconds from create to expires_at; requests not done by then end expired.")
@click.option("--retry-after", type=_SECONDS, default=1.0, show_default=True,
              help="retry-after (seconds) sent with injected 429, 529 and 500 answers.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for ids, result order and injected faults.")
@click.option("--latency", type=_SECONDS, default=0.0, show_default=True,
              help="Seconds added before every response.")
def emulate(host: str, port: int, state: Path | None, processing_time: float, error_rate: float,
            expire_rate: float, http_fault_rate: float, lost_response_rate: float, expire_after: float,
            retry_after: float, seed: int, latency: float) -> None:
    try:
        faults = Faults(processing_time=processing_time, error_rate=error_rate, expire_rate=expire_rate,
                        http_fault_rate=http_fault_rate, lost_response_rate=lost_response_rate,
                        expire_after=expire_after, retry_after=retry_after, latency=latency)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        emulator = Emulator(faults=faults, state_path=state, seed=seed)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise click.UsageError(f"--state {state}: {exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            url = emulator.start(host=host, port=port)
        except OSError as exc:
            raise click.UsageError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror}") from None
        click.echo(f"batchd emulator serving {url}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
