"""Each task's settings: the configuration's defaults, the task's own, its ``[tasks.NAME]``."""

from __future__ import annotations

from typing import Any

from batchd.config import Config, ConfigError
from batchd.plugins import Plugins


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

