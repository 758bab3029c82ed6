"""The command line as a user meets it: exit codes and one-line errors that name the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def batchd(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BATCHD_", "CREDENTIALS_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "batchd", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("toml, key", [
    ("[batch]\nmax_requestz = 5\n", "batch.max_requestz"),
    ("[batch]\nmax_requests = \"many\"\n", "batch.max_requests"),
    ("[watch]\nsettle = true\n", "watch.settle"),
    ("[nonsense]\n", "[nonsense]"),
    ("[paths]\ninbox = \"box\"\noutbox = \"box/out\"\n", "paths.inbox"),
    ("[tasks]\nenabled = [\"summarize\", \"translate\"]\n", "translate"),
    ("[tasks.classify]\ncategoriez = []\n", "tasks.classify.categoriez"),
    ("[batch]\nmax_requests = 200000\n", "batch.max_requests"),
])
def test_bad_config_stops_startup_naming_the_key(tmp_path, toml, key):
    (tmp_path / "config.toml").write_text(toml)
    result = batchd("run", "--offline", "--once", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_config_option_before_or_after_the_subcommand(tmp_path):
    (tmp_path / "elsewhere.toml").write_text("[batch]\nbogus = 1\n")
    for args in (("-c", "elsewhere.toml", "status"), ("status", "-c", "elsewhere.toml")):
        result = batchd(*args, cwd=tmp_path)
        assert result.returncode == 2 and "batch.bogus" in result.stderr
    result = batchd("status", cwd=tmp_path, env={"BATCHD_CONFIG": str(tmp_path / "elsewhere.toml")})
    assert result.returncode == 2 and "batch.bogus" in result.stderr


def test_missing_key_names_both_ways_and_offline(tmp_path):
    result = batchd("run", "--once", cwd=tmp_path)
    assert result.returncode == 2
    for word in ("ANTHROPIC_API_KEY", "CREDENTIALS_DIRECTORY", "--offline"):
        assert word in result.stderr


def test_version(tmp_path):
    from batchd import __version__

    result = batchd("--version", cwd=tmp_path)
    assert result.returncode == 0 and __version__ in result.stdout


def test_offline_once_over_examples_then_status(tmp_path):
    """The README's first command, in a copy of the project layout."""
    shutil_copy(ROOT / "config.toml", tmp_path / "config.toml")
    (tmp_path / "inbox").mkdir()
    for path in (ROOT / "examples").iterdir():
        shutil_copy(path, tmp_path / "inbox" / path.name)
    secret = "sk-ant-never-log-this-0123456789"
    result = batchd("run", "--offline", "--once", cwd=tmp_path, env={"ANTHROPIC_API_KEY": secret})
    assert result.returncode == 0, result.stderr
    manifests = list((tmp_path / "outbox").rglob("result.json"))
    assert len(manifests) == len(list((ROOT / "examples").iterdir()))
    assert all(json.loads(m.read_text())["status"] == "done" for m in manifests)
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {"started", "batch_submitted", "batch_collected", "document_finished"} <= {e["event"] for e in events}
    finished = [e for e in events if e["event"] == "document_finished"]
    assert all("document" in e for e in finished)
    submitted = [e for e in events if e["event"] == "batch_submitted"]
    assert all(e["batch_id"].startswith("msgbatch_") for e in submitted)
    status = batchd("status", "--json", cwd=tmp_path)
    assert status.returncode == 0
    figures = json.loads(status.stdout)
    assert figures["documents"] == {"done": len(manifests)}
    assert figures["usage"]["input_tokens"] > 0
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.stderr


def shutil_copy(src: Path, dest: Path) -> None:
    dest.write_bytes(src.read_bytes())
