"""A pytest plugin for testing batchd plugins end to end, shipped with batchd.

Installed as the ``pytest11`` entry point, so a plugin author's test is three lines::

    def test_my_task(batchd_run):
        results = batchd_run({"memo.txt": "Call Ann at ann@example.com"}, plugins=["plugins/my.py"], tasks=["my_task"])
        assert results["memo.txt"]["tasks"]["my_task"]["status"] == "succeeded"

Fixtures: ``batchd_run`` (files in, result.jsons out), ``batchd_harness`` (a Harness to
drive by hand: start, drop files, wait, stop) and ``batchd_emulator`` (the emulator, whose
``record`` shows what was sent and billed).

The run is real: files in a temporary inbox, the daemon with its state file, the
official SDK against the emulator on loopback, the outbox read back.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

import pytest

from batchd.outbox import atomic_write


class Harness:
    """A batchd with its own inbox, outbox, state and configuration under one folder."""

    def __init__(self, root: Path, base_url: str, config: dict[str, Any] | None = None,
                 plugins: Iterable[ModuleType | object] = (), plugins_dir: Path | None = None) -> None:
        self.root = root
        self.base_url = base_url
        self.inbox = root / "inbox"
        self.outbox = root / "outbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.extra_plugins = list(plugins)
        self.plugins_dir = plugins_dir or root / "plugins"
        self.config_data = _merge({
            "paths": {"inbox": "inbox", "outbox": "outbox", "state": "state/batchd.db",
                      "plugins": str(self.plugins_dir)},
            "batch": {"max_wait": 0.2, "poll_initial": 0.05, "poll_max": 0.2},
            "watch": {"settle": 0.1, "rescan": 0},
        }, config or {})
        self.thread: threading.Thread | None = None
        self.daemon = None
        self.exit_code: int | None = None
        self.error: BaseException | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    def write_config(self) -> Path:
        self.config_path.write_text(_to_toml(self.config_data), encoding="utf-8")
        return self.config_path

    def drop(self, files: dict[str, str | bytes]) -> None:
        """Write files into the inbox (through a temporary name, as a careful user would)."""
        for rel, content in files.items():
            path = self.inbox / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, content.encode("utf-8") if isinstance(content, str) else content)

    def build(self, *, once: bool = False):
        """A Daemon for this harness, built exactly as ``batchd run`` builds it."""
        from batchd.api import Api
        from batchd.config import load
        from batchd.builder import Builder
        from batchd.daemon import Daemon
        from batchd.plugins import Plugins
        from batchd.pricing import Pricing
        from batchd.store import Store

        config = load(self.write_config())
        plugins = Plugins(config.plugins, load_installed=False, extra=self.extra_plugins)
        Builder(config, plugins)  # as ``batchd run``: a configuration that does not fit raises ConfigError
        store = Store(config.state, lock=True)
        return Daemon(config, plugins, Api("test-key", self.base_url), store, once=once,
                      pricing=Pricing.load(config.pricing))

    def start(self, *, once: bool = False) -> None:
        """Run the daemon in a background thread."""
        self.daemon = self.build(once=once)

        def target() -> None:
            try:
                self.exit_code = self.daemon.run()
            except BaseException as exc:  # noqa: BLE001 - reported by stop()/wait
                self.error = exc
            finally:
                self.daemon.store.close()

        self.thread = threading.Thread(target=target, name="batchd-test-daemon", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.thread is None:
            return
        self.daemon.stop.requested = True
        self.daemon.watcher.events.put("")
        self.thread.join(timeout)
        alive = self.thread.is_alive()
        self.thread = None
        if alive:
            raise AssertionError(f"the daemon did not stop within {timeout} s")
        if self.error:
            raise self.error

    def run_once(self, timeout: float = 60.0) -> int:
        """``batchd run --once``: returns the exit code."""
        self.start(once=True)
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.stop()
            raise AssertionError(f"batchd run --once did not finish within {timeout} s")
        self.thread = None
        if self.error:
            raise self.error
        return self.exit_code

    def results(self) -> dict[str, dict[str, Any]]:
        """Every result.json in the outbox, by its document's source path."""
        out = {}
        for path in self.outbox.rglob("result.json"):
            if not path.is_file():  # the folder of an input named result.json
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            data["_folder"] = str(path.parent.relative_to(self.outbox))
            out[data["source"]] = data
        return out

    def wait_for(self, sources: Iterable[str], timeout: float = 30.0) -> dict[str, dict[str, Any]]:
        """Wait until each of ``sources`` has its result.json, failing after ``timeout``."""
        wanted = set(sources)
        deadline = time.monotonic() + timeout
        while True:
            got = self.results()
            if wanted <= set(got):
                return got
            if self.error:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"no result.json for {sorted(wanted - set(got))} within {timeout} s")
            time.sleep(0.02)

    def output(self, source: str, name: str) -> str:
        folder = self.results()[source]["_folder"]
        return (self.outbox / folder / name).read_text(encoding="utf-8")


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout} s")
        time.sleep(0.02)


def _merge(base: dict, extra: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _to_toml(data: dict, prefix: str = "") -> str:
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"{_key(key)} = {_value(value)}")
    text = ""
    if prefix and scalars:
        text += f"[{prefix}]\n"
    text += "".join(s + "\n" for s in scalars)
    for key, value in tables:
        text += _to_toml(value, f"{prefix}.{_key(key)}" if prefix else _key(key))
    tomllib.loads(text)
    return text


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


@pytest.fixture
def batchd_emulator():
    """The Anthropic API emulator on an ephemeral loopback port, answering at once."""
    from batchd.emulator import Emulator, Faults

    emu = Emulator(faults=Faults(processing_time=0.0))
    emu.start()
    yield emu
    emu.close()


@pytest.fixture
def batchd_harness(tmp_path, batchd_emulator) -> Callable[..., Harness]:
    """Make a Harness under tmp_path against the emulator; stopped at the end of the test."""
    made: list[Harness] = []

    def make(config: dict | None = None, plugins: Iterable = (), name: str = "batchd") -> Harness:
        h = Harness(tmp_path / name, batchd_emulator.base_url, config, plugins)
        made.append(h)
        return h

    yield make
    for h in made:
        if h.thread is not None:
            h.stop()


@pytest.fixture
def batchd_run(batchd_harness) -> Callable[..., dict[str, dict[str, Any]]]:
    """Run ``batchd run --once`` over some files with some plugins; returns each result.json by source.

    ``files`` maps inbox paths to contents (str or bytes). ``plugins`` are plugin modules,
    objects with ``@hookimpl`` methods, or paths of plugin files (loaded as if they were in
    the plugins folder). ``tasks`` are the tasks to enable (default: the built-in three);
    ``config`` is merged into the configuration (``{"tasks": {"NAME": {...}}}``, ``{"routes":
    ...}``). Besides the result.json keys, each result has ``_folder`` (its outbox folder,
    relative), ``_dir`` (the same, absolute) and ``_outputs`` (each output file's text, by
    file name).
    """

    def run(files: dict[str, str | bytes], plugins: Iterable = (), tasks: list[str] | None = None,
            config: dict | None = None) -> dict[str, dict[str, Any]]:
        cfg = dict(config or {})
        if tasks is not None:
            cfg["tasks"] = {**cfg.get("tasks", {}), "enabled": list(tasks)}
        h = batchd_harness(cfg, plugins, name=f"batchd-run-{len(run.harnesses)}")
        run.harnesses.append(h)
        h.drop(files)
        code = h.run_once()
        if code != 0:
            raise AssertionError(f"batchd run --once exited {code}")
        results = h.results()
        for manifest in results.values():
            folder = h.outbox / manifest["_folder"]
            manifest["_dir"] = str(folder)
            manifest["_outputs"] = {
                task["output"]: (folder / task["output"]).read_bytes().decode("utf-8", errors="replace")
                for task in manifest["tasks"].values() if task["output"]}
        return results

    run.harnesses = []  # type: ignore[attr-defined]
    return run
