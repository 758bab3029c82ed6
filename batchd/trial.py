"""``batchd try FILE``: one file through its tasks right now, the dry run before a big batch.

Everything but the transport is the daemon's own code: :meth:`Daemon.load` makes the
Document, :meth:`Daemon.tasks_for` picks the tasks (``[tasks] enabled``, ``[routes]`` for a
file inside the inbox, each task's ``applies``), :meth:`Daemon.params_for` builds and
adjusts the request exactly as it would be batched, and :meth:`Daemon.output_for` turns
the answer into the output file. Only the call differs: one Messages API call per task
(``client.messages.create``, streamed when ``max_tokens`` is large, as the SDK requires),
answered in seconds at the full real-time price instead of the batch's half price. With
``--offline`` the built-in emulator answers. Nothing is written: no state, no outbox.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

#: Above this ``max_tokens`` the SDK refuses a non-streaming call (it could take longer
#: than ten minutes: 3600 s x max_tokens / 128,000 > 600 s), so the answer is streamed.
STREAM_ABOVE_MAX_TOKENS = 21_333
#: Base64 strings longer than this are shown shortened by ``--show-request``.
SHOW_DATA_CHARS = 80


@click.command("try")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default ./config.toml, or $BATCHD_CONFIG).")
@click.option("--task", "task_names", multiple=True, metavar="NAME",
              help="Run this task (repeatable), enabled or not; default: the tasks batchd would run for the file.")
@click.option("--offline", is_flag=True, help="Ask the built-in emulator instead of the real API (no key, no cost).")
@click.option("--show-request", is_flag=True, help="Print each request's params as they would be batched.")
@click.pass_context
def try_cmd(ctx: click.Context, file: Path, config_path: Path | None, task_names: tuple[str, ...], offline: bool,
            show_request: bool) -> None:
    """Run the tasks for FILE now, through the Messages API, and print what would land in the outbox.

    Seconds instead of hours, at the full real-time price (twice the batch price): the
    dry run to do before sending thousands of documents. Nothing is written.
    """
    from batchd import cli, logs
    from batchd.credentials import MissingKey, api_key

    config = cli.open_config(ctx, config_path)
    logs.configure("warning", config["log.format"])
    plugins = cli.open_plugins(config)
    for name in task_names:
        if name not in plugins.tasks:
            cli._fail(f"--task {name}: no plugin provides that task (provided: {', '.join(sorted(plugins.tasks))})")
    try:
        key = api_key(offline)
    except MissingKey as exc:
        cli._fail(str(exc))
    emulator = None
    base_url = None
    if offline:
        from batchd.emulator import Emulator

        emulator = Emulator()
        base_url = emulator.start()
    try:
        code = run_trial(cli.open_builder(config, plugins), cli._pricing(config), file, list(task_names) or None,
                         _client(key, base_url), offline=offline, show_request=show_request, echo=click.echo)
    finally:
        if emulator is not None:
            emulator.close()
    sys.exit(code)


def run_trial(builder: Any, pricing: Any, path: Path, names: list[str] | None, client: Any, *, offline: bool = False,
              show_request: bool = False, echo: Callable[[str], None] = print) -> int:
    """Load ``path``, run each task through ``client`` and echo the outputs; 0 when every task succeeded."""
    import anthropic

    from batchd.documents import LoadError
    from batchd.plugins import PluginError

    config = builder.config
    data = path.read_bytes()
    source = _source(config.inbox, path)
    try:
        document = builder.load(path, source, data, hashlib.sha256(data).hexdigest())
    except LoadError as exc:
        echo(f"{source}: cannot be loaded: {exc}")
        return 1
    errors: dict[str, str] = {}
    chosen = builder.tasks_for(document, errors, names=names)
    echo(f"{source}: {document.kind} ({document.media_type}), {len(data):,} bytes"
         + (", cut to anthropic.max_input_tokens" if document.truncated else "")
         + f"; tasks: {', '.join(chosen + list(errors)) or 'none'}")
    for name in names or []:
        if name not in chosen and name not in errors:
            echo(f"\n== {name}: does not apply to this document (its applies() said no)")
    if not chosen and not errors:
        echo("no task applies to this document" + ("" if names else " (enabled tasks and [routes])"))
        return 1
    failures = 0
    for name, error in errors.items():
        failures += 1
        echo(f"\n== {name}: FAILED\n{error}")
    for name in chosen:
        task = builder.plugins.tasks[name]
        try:
            params = builder.params_for(document, name)
        except PluginError as exc:
            failures += 1
            echo(f"\n== {name}: FAILED\n{exc}")
            continue
        if show_request:
            echo(f"\n== {name}: request\n{json.dumps(_shorten(params), indent=2, ensure_ascii=False)}")
        try:
            message = ask(client, params, offline=offline)
        except (anthropic.APIError, ValueError, TypeError) as exc:
            failures += 1
            echo(f"\n== {name}: FAILED\nthe API call failed: {type(exc).__name__}: {exc}")
            continue
        head = f"\n== {name} -> {task.output}  ({_describe(message, pricing)})"
        try:
            content = builder.output_for(name, message)
        except PluginError as exc:
            failures += 1
            echo(f"{head}: FAILED\nplugin {exc.plugin} could not read the answer: {exc.reason}")
            continue
        echo(head)
        try:
            echo(content.decode("utf-8").rstrip("\n"))
        except UnicodeDecodeError:
            echo(f"({len(content):,} bytes, not text)")
    return 1 if failures else 0


def ask(client: Any, params: dict[str, Any], *, offline: bool = False) -> dict[str, Any]:
    """One Messages API call with batch request params; the Message as a dict, as a batch result has it."""
    known = set(inspect.signature(client.messages.create).parameters) - {"stream", "extra_body", "timeout"}
    kwargs = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known and k != "stream"}
    if extra:
        kwargs["extra_body"] = extra
    if offline:
        # The emulator answers at once and does not stream; an explicit timeout keeps the
        # SDK from asking for streaming on a large max_tokens.
        return client.messages.create(**kwargs, timeout=60.0).to_dict()
    if int(params.get("max_tokens") or 0) <= STREAM_ABOVE_MAX_TOKENS:
        try:
            return client.messages.create(**kwargs).to_dict()
        except ValueError as exc:  # the SDK's own refusal, before sending: this model must stream
            if "stream" not in str(exc).lower():
                raise
    with client.messages.stream(**kwargs) as stream:
        return stream.get_final_message().to_dict()


def _client(key: str, base_url: str | None) -> Any:
    import anthropic

    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=2)


def _source(inbox: Path, path: Path) -> str:
    """The file's path as the daemon would record it: relative to the inbox, else its name."""
    resolved = path.resolve()
    if resolved.is_relative_to(inbox):
        return resolved.relative_to(inbox).as_posix()
    return path.name


def _describe(message: dict[str, Any], pricing: Any) -> str:
    usage = message.get("usage") or {}
    parts = [str(message.get("model")), f"stop {message.get('stop_reason')}",
             f"{usage.get('input_tokens') or 0:,} in + {usage.get('output_tokens') or 0:,} out tokens"]
    cached = (usage.get("cache_read_input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
    if cached:
        parts[-1] += f" ({cached:,} through the cache)"
    if pricing is not None:
        now = pricing.cost(message.get("model") or "", usage, batch=False)
        batched = pricing.cost(message.get("model") or "", usage, batch=True)
        if now is not None and batched is not None:
            parts.append(f"${now:.4f} now, ${batched:.4f} in a batch")
    return ", ".join(parts)


def _shorten(value: Any) -> Any:
    """Params for showing: base64 data shortened, everything else as sent."""
    if isinstance(value, dict):
        out = {k: _shorten(v) for k, v in value.items()}
        if out.get("type") == "base64" and isinstance(value.get("data"), str) \
                and len(value["data"]) > SHOW_DATA_CHARS:
            out["data"] = value["data"][:SHOW_DATA_CHARS] + f"... ({len(value['data']):,} characters)"
        return out
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value
