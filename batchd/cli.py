"""The ``batchd`` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import structlog

from batchd import __version__
from batchd.commands import PluginCommandGroup
from batchd.config import Config, ConfigError, default_path, load

CONFIG_HELP = "Configuration file (default ./config.toml, or $BATCHD_CONFIG)."


def _config_option(f):
    return click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                        default=None, help=CONFIG_HELP, expose_value=True)(f)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"batchd: {message}", err=True)
    sys.exit(code)


def open_config(ctx: click.Context, config_path: Path | None) -> Config:
    """The validated configuration, from the subcommand's -c, else the group's, else the default."""
    path = config_path or (ctx.obj or {}).get("config_path") or default_path()
    try:
        return load(path)
    except ConfigError as exc:
        _fail(f"configuration: {exc}")
        raise AssertionError  # unreachable


def open_plugins(config: Config):
    """Plugins and their tasks, with the configuration checked against what they provide."""
    from batchd.plugins import Plugins

    plugins = Plugins(config.plugins)
    open_builder(config, plugins)
    return plugins


def open_builder(config: Config, plugins: Any):
    """The Builder of this configuration's requests; exit 2 naming the key if they do not fit."""
    from batchd.builder import Builder

    try:
        return Builder(config, plugins)
    except ConfigError as exc:
        _fail(f"configuration: {exc}")


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchd")
@_config_option
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """batchd: drop documents into a folder, get Claude's answers back through
    Message Batches at half price, without losing a result or paying twice."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@cli.command()
@_config_option
@click.option("--once", is_flag=True, help="Take what is in the inbox, wait for every result.json, then exit.")
@click.option("--offline", is_flag=True, help="Use the built-in emulator of the API instead of the real one (no key needed).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None,
              help="Override log.level.")
@click.pass_context
def run(ctx: click.Context, config_path: Path | None, once: bool, offline: bool, log_level: str | None) -> None:
    """Run the daemon until SIGTERM/SIGINT (or, with --once, until the inbox is done)."""
    from batchd import logs
    from batchd.credentials import MissingKey, api_key

    config = open_config(ctx, config_path)
    logs.configure(config["log.level"], config["log.format"], override=log_level)
    os.umask(int(config["service.umask"], 8))
    plugins = open_plugins(config)
    try:
        key = api_key(offline)
    except MissingKey as exc:
        _fail(str(exc))
    logs.add_secret(key)
    from batchd.api import Api
    from batchd.daemon import Daemon
    from batchd.store import StateLocked, Store

    for folder in (config.inbox, config.outbox):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        store = Store(config.state, lock=True)
    except StateLocked as exc:
        _fail(str(exc), 1)
    emulator = None
    base_url = None
    if offline:
        from batchd.emulator import Emulator

        emulator = Emulator(state_path=config.state.with_name(config.state.name + ".emulator"))
        base_url = emulator.start()
        structlog.get_logger("batchd").info("offline", emulator=base_url)
    try:
        daemon = Daemon(config, plugins, Api(key, base_url), store, once=once, pricing=_pricing(config))
        code = daemon.run()
    finally:
        store.close()
        if emulator is not None:
            emulator.close()
    sys.exit(code)


def _pricing(config: Config) -> Any:
    from batchd.pricing import Pricing

    return Pricing.load(config.pricing)


@cli.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (with --watch, one object per line).")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C, with a progress bar per batch in flight.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="With --watch, stop after this many refreshes.")
@click.pass_context
def status(ctx: click.Context, config_path: Path | None, as_json: bool, watch: bool, interval: float,
           count: int | None) -> None:
    """Documents by state, batches in flight with their progress and age, the oldest
    waiting request, tokens and cost so far (and what real-time calls would have cost)."""
    from batchd import statusview

    config = open_config(ctx, config_path)
    if watch:
        statusview.watch(config, interval=interval, count=count, as_json=as_json)
        return
    figures = statusview.collect(config)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(statusview.render(figures, time.time()))


@cli.command("plugins")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.pass_context
def plugins_cmd(ctx: click.Context, config_path: Path | None, as_json: bool, show_all: bool) -> None:
    """List plugins, where each came from, the tasks they provide, and load errors."""
    from batchd import logs
    from batchd.plugins import Plugins

    config = open_config(ctx, config_path)
    logs.configure("error", config["log.format"])  # on stderr: stdout is the listing
    plugins = Plugins(config.plugins)
    plugins.register_commands(cli, reserved=cli.commands)
    rows = []
    for name, info in plugins.info.items():
        if info.builtin and not show_all:
            continue
        plugin = plugins.pm.get_plugin(name)
        hooks = sorted(h.name for h in plugins.pm.get_hookcallers(plugin)) if plugin else []
        rows.append({"name": name, "source": info.source, "version": info.version, "hooks": hooks,
                     "tasks": info.tasks, "commands": info.commands, "error": info.error})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins besides the built-ins (see --all)")
    for row in rows:
        click.echo(f"{row['name']}  [{row['source']}]")
        if row["tasks"]:
            click.echo(f"  tasks: {', '.join(row['tasks'])}")
        if row["commands"]:
            click.echo(f"  commands: {', '.join(row['commands'])}")
        if row["hooks"]:
            click.echo(f"  hooks: {', '.join(row['hooks'])}")
        if row["error"]:
            click.echo(f"  ERROR: {row['error']}")


@cli.command()
@_config_option
@click.argument("batch_id", required=False)
@click.pass_context
def cancel(ctx: click.Context, config_path: Path | None, batch_id: str | None) -> None:
    """Cancel the batches in flight (or one, by its msgbatch_ id).

    The running daemon sends the cancel within a second (or at its next start); requests
    the API cancels are then final, not sent again.
    """
    from batchd.store import Store

    config = open_config(ctx, config_path)
    store = Store(config.state)
    try:
        targets = store.q("SELECT id, api_id FROM batches WHERE state IN ('in_progress','ended','intent','unknown')"
                          + (" AND api_id=?" if batch_id else ""), (batch_id,) if batch_id else ())
        if batch_id and not targets:
            _fail(f"no batch {batch_id} in flight", 1)
        with store.atomic():
            for t in targets:
                store.conn.execute("UPDATE batches SET user_canceled=1 WHERE id=? AND user_canceled=0", (t["id"],))
    finally:
        store.close()
    for t in targets:
        click.echo(f"cancel requested: {t['api_id'] or 'batch ' + str(t['id'])}")
    if not targets:
        click.echo("no batches in flight")


@cli.command()
@_config_option
@click.argument("source", required=False)
@click.option("--force", is_flag=True, help="Send the requests again even if identical ones were answered.")
@click.pass_context
def retry(ctx: click.Context, config_path: Path | None, source: str | None, force: bool) -> None:
    """Process failed documents again (or one, by its path relative to the inbox).

    The original goes back into the inbox and its outbox folder is removed, so the
    document is taken afresh.
    """
    import shutil

    from batchd.store import Store

    config = open_config(ctx, config_path)
    store = Store(config.state)
    try:
        if source:
            docs = store.q("SELECT * FROM documents WHERE source=? AND state='finished' ORDER BY id DESC LIMIT 1",
                           (source,))
            if not docs:
                _fail(f"no finished document {source!r}", 1)
        else:
            docs = store.q("SELECT * FROM documents WHERE state='finished' AND status='failed'")
        for doc in docs:
            folder = config.outbox / doc["folder"]
            dest = config.inbox / doc["source"]
            if dest.exists():
                click.echo(f"skipped {doc['source']}: a file of that name is in the inbox already", err=True)
                continue
            with store.atomic():
                store.conn.execute("UPDATE documents SET state='retried', folder=NULL WHERE id=?", (doc["id"],))
                if force:
                    store.conn.execute("DELETE FROM results WHERE reuse_key IN (SELECT reuse_key FROM requests"
                                       " WHERE document_id=?)", (doc["id"],))
            original = folder / doc["original"] if doc["original"] else None
            if original and original.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(original, dest)
            shutil.rmtree(folder, ignore_errors=True)
            click.echo(f"retrying {doc['source']}")
        if not docs:
            click.echo("no failed documents")
    finally:
        store.close()


def _add_emulate() -> None:
    try:
        from batchd.emulator.cli import emulate
    except ImportError:
        return
    cli.add_command(emulate)


_add_emulate()


def _add_try() -> None:
    from batchd.trial import try_cmd

    cli.add_command(try_cmd)


_add_try()


def _add_doctor() -> None:
    from batchd.doctor import doctor

    cli.add_command(doctor)


_add_doctor()


def main() -> None:
    cli(prog_name="batchd")
