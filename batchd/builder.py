"""From a file's bytes to request params, and from an answer to an output file.

This is the one place where documents meet the task plugins: the daemon, ``batchd try``
and ``batchd doctor`` all build through it, so what they show is exactly what is batched.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from batchd.config import Config, ConfigError
from batchd.documents import Document, LoadError
from batchd.keys import canonical
from batchd.plugins import PluginError, Plugins
from batchd.tasks import Task

log = structlog.get_logger("batchd")

#: Characters per token when cutting a long text to ``anthropic.max_input_tokens``; low
#: on purpose, so that a cut document fits whatever the language.
CHARS_PER_TOKEN = 3


class Builder:
    """A configuration's tasks, ready to build requests; ConfigError if the two do not fit."""

    def __init__(self, config: Config, plugins: Plugins) -> None:
        errors = plugins.errors()
        detail = "; ".join(f"{p}: {e}" for p, e in errors.items())
        detail = f" (plugin load errors: {detail})" if detail else ""
        for name in config.enabled_tasks + [t for route in config.routes.values() for t in route]:
            if name not in plugins.tasks:
                raise ConfigError(f"tasks.enabled names {name!r}, which no plugin provides{detail}")
        for name in config.task_tables:
            if name not in plugins.tasks:
                raise ConfigError(f"[tasks.{name}] is for a task no plugin provides{detail}")
        self.config = config
        self.plugins = plugins
        self.settings = task_settings(config, plugins)

    def load(self, path: Path, source: str, data: bytes, sha: str) -> Document:
        """The Document for a file's bytes, through the loader plugins."""
        try:
            plugin, document = self.plugins.first("batchd_load_document", path=path, source=source, data=data,
                                                  config=self.config)
        except PluginError as exc:
            raise LoadError(f"the loader {exc}") from exc
        if document is None:
            raise LoadError(f"unsupported type: no loader takes {path.suffix or 'files without an extension'}")
        if not isinstance(document, Document):
            raise LoadError(f"the loader plugin {plugin} returned {type(document).__name__}, not a Document")
        document = document.cut_to(self.config["anthropic.max_input_tokens"] * CHARS_PER_TOKEN)
        return replace(document, source=source, sha256=sha, bytes=len(data))

    def tasks_for(self, document: Document, errors: dict[str, str] | None = None,
                  names: list[str] | None = None) -> list[str]:
        """Enabled tasks (or the route's, for a routed subfolder; or ``names``) that apply to the document.

        A task whose ``applies`` raises is left out and, with ``errors``, recorded there
        with the plugin's name, so that its result.json entry can say so.
        """
        if names is None:
            names = self.config.enabled_tasks
            best = -1
            for folder, route in self.config.routes.items():
                if (document.source.startswith(folder + "/") or folder == "") and len(folder) > best:
                    names, best = route, len(folder)
        chosen = []
        for name in names:
            if name not in self.plugins.tasks:
                continue
            try:
                if self.plugins.run_task(name, "applies", document, self.settings[name]):
                    chosen.append(name)
            except PluginError as exc:
                log.error("task_failed", plugin=exc.plugin, task=name, document=document.source,
                          error=f"applies: {exc.reason}")
                if errors is not None:
                    errors[name] = f"{exc} (in applies)"
        return chosen

    def build_all(self, document: Document) -> list[dict]:
        errors: dict[str, str] = {}
        chosen = self.tasks_for(document, errors)
        reqs = [{"task": name, "error": error} for name, error in errors.items()]
        for name in chosen:
            try:
                _, body = self.encoded_params_for(document, name)
            except PluginError as exc:
                log.error("task_failed", document=document.source, task=name, error=str(exc))
                reqs.append({"task": name, "error": str(exc)})
                continue
            reqs.append({"task": name, "reuse_key": hashlib.sha256(body).hexdigest(), "size": len(body) + 48})
        return reqs

    def params_for(self, document: Document, name: str) -> dict[str, Any]:
        """A task's request params for a document, adjusted by the plugins that want to."""
        return self.encoded_params_for(document, name)[0]

    def encoded_params_for(self, document: Document, name: str) -> tuple[dict[str, Any], bytes]:
        """:meth:`params_for` and their canonical JSON, encoded once for the check and every use."""
        owner = self.plugins.task_owner[name]
        settings = self.settings[name]
        body = self.plugins.run_task(name, "build", document, settings)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise PluginError(owner, f"task {name} built {type(body).__name__} without messages, not request params")
        params = {"model": settings["model"], "max_tokens": settings["max_tokens"], **body}
        params = self.plugins.adjust_request(task=name, document=document, params=params)
        try:
            encoded = canonical(params)
        except (TypeError, ValueError) as exc:
            raise PluginError(owner, f"params are not JSON: {exc}") from exc
        return params, encoded


    def output_for(self, name: str, message: dict) -> bytes:
        """The content of task ``name``'s output file, from its answer; PluginError naming the plugin if unusable."""
        task: Task = self.plugins.tasks[name]
        content = self.plugins.run_task(name, "parse", message, self.settings.get(name, {}))
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not isinstance(content, bytes):
            raise PluginError(self.plugins.task_owner[name],
                              f"{type(task).__name__}.parse returned {type(content).__name__}, not str or bytes")
        return content


def task_settings(config: Config, plugins: Plugins) -> dict[str, dict[str, Any]]:
    """Each provided task's settings: model and max_tokens, its defaults, its ``[tasks.NAME]``."""
    settings = {}
    for name, task in plugins.tasks.items():
        table = config.task_tables.get(name, {})
        merged = {"model": config["anthropic.model"], "max_tokens": config["anthropic.max_tokens"],
                  **dict(task.defaults)}
        for key, value in table.items():
            if key not in merged:
                known = ", ".join(sorted(merged))
                raise ConfigError(f"unknown key tasks.{name}.{key} (known: {known})")
            default = merged[key]
            if default is not None and not _same_kind(default, value):
                raise ConfigError(f"tasks.{name}.{key} must be of the same type as its default {default!r}")
            merged[key] = value
        settings[name] = merged
    return settings


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))

