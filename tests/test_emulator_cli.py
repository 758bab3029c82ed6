"""``batchd emulate`` / ``python -m batchd.emulator`` as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest
from click.testing import CliRunner

from batchd.emulator.cli import emulate
from batchd.emulator.testing import requests, wait_ended

ROOT = Path(__file__).resolve().parent.parent


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "batchd.emulator", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    match = re.fullmatch(r"batchd emulator serving (http://127\.0\.0\.1:\d+)\n", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, match.group(1)


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


def test_help_documents_every_option():
    result = CliRunner().invoke(emulate, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--state", "--processing-time", "--error-rate", "--expire-rate",
                   "--http-fault-rate", "--lost-response-rate", "--expire-after", "--seed", "--latency",
                   "--retry-after"):
        assert option in result.output
    flat = " ".join(result.output.split())
    assert "duplicate custom_ids in one batch are rejected" in flat
    assert "/_emulator/record" in flat and '"reuse_key"' in flat


@pytest.mark.parametrize("args", [["--error-rate", "2"], ["--port", "-1"], ["--processing-time", "-1"],
                                  ["--error-rate", "0.6", "--expire-rate", "0.6"]])
def test_bad_options_are_usage_errors(args):
    assert CliRunner().invoke(emulate, args).exit_code == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_the_sdk_and_exits_0_on_a_signal(sig):
    process, url = _start("--processing-time", "0", "--seed", "3")
    try:
        with anthropic.Anthropic(api_key="test", base_url=url, max_retries=0) as client:
            batch = client.messages.batches.create(requests=requests(2))
            wait_ended(client, batch.id)
            assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"succeeded"}
    finally:
        code = _stop(process, sig)
    assert code == 0


def test_state_survives_a_restart_of_the_process(tmp_path):
    state = str(tmp_path / "emu.db")
    process, url = _start("--state", state, "--processing-time", "0")
    try:
        with anthropic.Anthropic(api_key="test", base_url=url, max_retries=0) as client:
            batch = client.messages.batches.create(requests=requests(3))
    finally:
        assert _stop(process) == 0
    process, url = _start("--state", state)
    try:
        with anthropic.Anthropic(api_key="test", base_url=url, max_retries=0) as client:
            ended = wait_ended(client, batch.id)
            assert ended.request_counts.succeeded == 3
            assert ended.results_url.startswith(url)
    finally:
        assert _stop(process) == 0


def test_a_state_file_that_is_not_one_is_a_usage_error(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database, just some words that go on for a while " * 20)
    result = CliRunner().invoke(emulate, ["--state", str(bogus), "--port", "0"])
    assert result.exit_code == 2 and "--state" in result.output
