"""``batchd doctor``: is this installation able to work? One line per check, ✓ or ✗.

It checks, without changing anything: the configuration and the plugins it names; the
folders (inbox readable and writable, outbox writable, the state's folder writable and
private); where the API key comes from (never the key itself); and that the API accepts
one real request of each enabled task, through ``count_tokens`` (free of charge) with the
params batchd would send for a tiny document. ``--offline`` asks the built-in emulator
instead, as ``batchd run --offline`` does.

A check that cannot run because of a failure already reported says so on a "-" line.
Exit codes: 0 when every check passes, 1 when one fails, 2 for a bad configuration.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import click

from batchd.config import Config, ConfigError, default_path, load

#: The document every task's request is built for: short, plain, with a contact in it.
TINY_NAME = "batchd-doctor.txt"
TINY_TEXT = ("batchd doctor check. Ann Example (ann@example.com, +1 555 0100) of Example Corp asks "
             "for the March invoice to be sent again.\n")


class Report:
    """Collects ✓/✗ lines as they are printed; ``failed`` once any check fails."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.failed = False
        self.config_failed = False
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        try:
            "✓✗".encode(encoding)
            self.marks = ("✓", "✗", "-")
        except (UnicodeEncodeError, LookupError):
            self.marks = ("ok  ", "FAIL", "skip")

    def ok(self, text: str) -> None:
        self.echo(f"{self.marks[0]} {text}")

    def fail(self, text: str, *, config: bool = False) -> None:
        self.failed = True
        self.config_failed = self.config_failed or config
        self.echo(f"{self.marks[1]} {text}")

    def skip(self, text: str) -> None:
        """A check that cannot run because of a failure already reported."""
        self.echo(f"{self.marks[2]} {text}")

    @property
    def exit_code(self) -> int:
        return 2 if self.config_failed else 1 if self.failed else 0


@click.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default ./config.toml, or $BATCHD_CONFIG).")
@click.option("--offline", is_flag=True, help="Check the request against the built-in emulator (no key needed).")
@click.pass_context
def doctor(ctx: click.Context, config_path: Path | None, offline: bool) -> None:
    """Check the configuration, folders, key and API; say what is wrong, one line each."""
    path = config_path or (ctx.obj or {}).get("config_path") or default_path()
    report = Report(click.echo)
    run_checks(path, offline, report)
    sys.exit(report.exit_code)


def run_checks(config_path: Path, offline: bool, report: Report) -> None:
    """Every check, in the order an operator would fix things."""
    from batchd import logs

    try:
        config = load(config_path)
    except ConfigError as exc:
        report.fail(f"configuration: {exc}", config=True)
        return
    logs.configure("error", config["log.format"])  # plugins' own warnings would drown the lines
    builder = check_config(config, report)
    check_folders(config, report)
    key = check_key(offline, report)
    if builder is None:
        report.skip("request check skipped: fix the configuration first")
    elif key is None:
        report.skip("request check skipped: no API key")
    else:
        check_requests(builder, key, offline, report)


def check_config(config: Config, report: Report) -> Any:
    """The configuration and the plugins it names; returns what builds requests, or None."""
    from batchd.builder import Builder
    from batchd.plugins import Plugins

    plugins = Plugins(config.plugins)
    for name, error in plugins.errors().items():
        report.fail(f"plugin {name} failed to load: {error}")
    try:
        builder = Builder(config, plugins)
    except ConfigError as exc:
        report.fail(f"configuration {config.path}: {exc}", config=True)
        return None
    report.ok(f"configuration {config.path}: tasks {', '.join(config.enabled_tasks) or '(none)'}")
    return builder


def check_folders(config: Config, report: Report) -> None:
    from batchd.watcher import NETWORK_FILESYSTEMS, filesystem_type

    fstype = filesystem_type(config.inbox)
    note = ""
    if config["watch.polling"]:
        note = " (polled: watch.polling = true)"
    elif fstype in NETWORK_FILESYSTEMS:
        note = f" (on {fstype}: it will be polled, native events miss changes made elsewhere)"
    _check_folder(report, "inbox", config.inbox, read=True, note=note)
    _check_folder(report, "outbox", config.outbox, read=False)
    _check_folder(report, "state folder", config.state.parent, read=False, private=True)
    state = config.state
    if state.exists():
        if not state.is_file():
            report.fail(f"state file {state}: not a regular file")
        elif not os.access(state, os.R_OK | os.W_OK):
            report.fail(f"state file {state}: not readable and writable by this user")
        elif state.stat().st_mode & 0o007:
            report.fail(f"state file {state}: readable by everyone ({_mode(state)}); run chmod o-rwx {state}")
        else:
            report.ok(f"state file {state}: present ({_size(state.stat().st_size)})")


def _check_folder(report: Report, label: str, folder: Path, *, read: bool, private: bool = False,
                  note: str = "") -> None:
    if not folder.exists():
        parent = _existing_parent(folder)
        if parent is None or not parent.is_dir():
            report.fail(f"{label} {folder}: does not exist, and {parent} is not a folder it could be created in")
            return
        problem = _write_probe(parent)
        if problem:
            report.fail(f"{label} {folder}: does not exist, and cannot be created in {parent}: {problem}")
            return
        how = " private (0700)" if private else ""
        report.ok(f"{label} {folder}: does not exist yet; batchd run creates it{how}{note}")
        return
    if not folder.is_dir():
        report.fail(f"{label} {folder}: not a folder")
        return
    if read:
        try:
            os.listdir(folder)
        except OSError as exc:
            report.fail(f"{label} {folder}: cannot be read: {exc.strerror or exc}")
            return
    problem = _write_probe(folder)
    if problem:
        report.fail(f"{label} {folder}: not writable: {problem}")
        return
    if private and folder.stat().st_mode & 0o077:
        note += (f" (shared: {_mode(folder)}; the state file itself is checked below — a folder of its"
                 f" own, chmod 700, is safer)")
        private = False
    what = "readable and writable" if read else "writable"
    report.ok(f"{label} {folder}: {what}{', private' if private else ''}{note}")


def _write_probe(folder: Path) -> str | None:
    """None if a file can be created and removed in ``folder``, else why not.

    A real write, not os.access: that says yes to root on a read-only mount, and no to
    nothing an ACL grants. The name is one the watcher ignores by default.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".batchd-doctor-", suffix=".tmp", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    try:
        os.unlink(name)
    except OSError as exc:
        return f"a file could be created but not removed: {exc.strerror or exc}"
    return None


def _existing_parent(folder: Path) -> Path | None:
    for parent in folder.parents:
        if parent.exists():
            return parent
    return None


def _mode(path: Path) -> str:
    return f"{stat.filemode(path.stat().st_mode)}, {stat.S_IMODE(path.stat().st_mode):04o}"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def check_key(offline: bool, report: Report) -> str | None:
    """Where the key comes from, never what it is; the key, or None."""
    from batchd.credentials import MissingKey, api_key

    if offline:
        report.ok("API key: not needed with --offline (the built-in emulator answers)")
        return "offline"
    try:
        key = api_key(False)
    except MissingKey as exc:
        report.fail(f"API key: {exc}")
        return None
    if os.environ.get("ANTHROPIC_API_KEY", "").strip():
        where = "the environment variable ANTHROPIC_API_KEY"
    else:
        where = "$CREDENTIALS_DIRECTORY/anthropic_api_key (systemd LoadCredential=)"
    report.ok(f"API key: found in {where} (not shown)")
    return key


def check_requests(builder: Any, key: str, offline: bool, report: Report) -> None:
    """Each enabled task's request for a tiny document, as count_tokens sees it."""
    import anthropic

    from batchd.documents import LoadError
    from batchd.plugins import PluginError

    data = TINY_TEXT.encode()
    try:
        document = builder.load(Path(TINY_NAME), TINY_NAME, data, hashlib.sha256(data).hexdigest())
    except LoadError as exc:
        report.fail(f"request check: a plain text document cannot be loaded: {exc}")
        return
    tasks = builder.tasks_for(document)
    if not tasks:
        report.fail("request check: no enabled task applies to a plain text document")
        return
    emulator = None
    base_url = None
    if offline:
        from batchd.emulator import Emulator

        emulator = Emulator()
        base_url = emulator.start()
    where = "the built-in emulator" if offline else (os.environ.get("ANTHROPIC_BASE_URL") or "the API")
    try:
        with anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=1, timeout=30.0) as client:
            accepted = set(inspect.signature(client.messages.count_tokens).parameters)
            for name in tasks:
                try:
                    params = builder.params_for(document, name)
                except PluginError as exc:
                    report.fail(f"request of task {name}: cannot be built: {exc}")
                    continue
                # count_tokens takes the prompt, not the answer's settings (max_tokens, ...).
                shape = {k: v for k, v in params.items() if k in accepted}
                try:
                    counted = client.messages.count_tokens(**shape)
                except anthropic.AuthenticationError as exc:
                    report.fail(f"API key: refused by {where}: {_api_error(exc)}")
                    return
                except anthropic.PermissionDeniedError as exc:
                    report.fail(f"API key: not allowed by {where}: {_api_error(exc)}")
                    return
                except anthropic.NotFoundError as exc:
                    report.fail(f"request of task {name}: model {params.get('model')!r} not found: "
                                f"{_api_error(exc)}")
                    continue
                except anthropic.APIStatusError as exc:
                    report.fail(f"request of task {name}: rejected by {where}: {_api_error(exc)}")
                    continue
                except anthropic.APIConnectionError as exc:
                    report.fail(f"API: cannot reach {where}: {type(exc).__name__}: {exc}")
                    return
                report.ok(f"request of task {name}: accepted by {where} (model {params.get('model')}, "
                          f"{counted.input_tokens} input tokens)")
    finally:
        if emulator is not None:
            emulator.close()


def _api_error(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"HTTP {exc.status_code} {err.get('type')}: {err.get('message')}"
    return f"HTTP {getattr(exc, 'status_code', '?')}: {getattr(exc, 'message', exc)}"
