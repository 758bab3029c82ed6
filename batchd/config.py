"""The configuration file: every key known, typed and checked before anything starts."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A bad configuration; the message names the key and the reason, on one line."""


_NUMBER = (int, float)

#: section -> key -> (accepted types, default). Paths are resolved later.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "paths": {
        "inbox": ((str,), "inbox"),
        "outbox": ((str,), "outbox"),
        "state": ((str,), "batchd.db"),
        "plugins": ((str,), "plugins"),
    },
    "anthropic": {
        "model": ((str,), "claude-haiku-4-5"),
        "max_tokens": ((int,), 1024),
        "max_input_tokens": ((int,), 150_000),
    },
    "batch": {
        "max_requests": ((int,), 1000),
        "max_bytes": ((int,), 50_000_000),
        "max_wait": (_NUMBER, 60),
        "max_attempts": ((int,), 3),
        "poll_initial": (_NUMBER, 5),
        "poll_max": (_NUMBER, 300),
    },
    "watch": {
        "settle": (_NUMBER, 1.0),
        "ignore": ((list,), [".*", "*.tmp", "*.part", "*.crdownload", "~$*"]),
        "max_file_bytes": ((int,), 20_000_000),
        "polling": ((bool,), False),
        "rescan": (_NUMBER, 300),
    },
    "tasks": {
        "enabled": ((list,), ["summarize", "classify", "extract_contacts"]),
    },
    "log": {
        "level": ((str,), "info"),
        "format": ((str,), "auto"),
    },
    "service": {
        "umask": ((str,), "027"),
    },
    "budget": {
        "max_usd_per_day": (_NUMBER + (type(None),), None),
    },
}

#: Free-form tables: their keys are names (tasks, folders, models), checked elsewhere.
OPEN_TABLES = ("routes", "pricing")

PRICING_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")

LIMITS = {
    "batch.max_requests": (1, 100_000),
    "batch.max_bytes": (1_000, 256_000_000),
    "batch.max_attempts": (1, 100),
    "anthropic.max_tokens": (1, 300_000),
    "anthropic.max_input_tokens": (100, 10_000_000),
    "watch.max_file_bytes": (1, 32_000_000),
}


@dataclass
class Config:
    """The validated configuration. ``raw`` keeps the per-task tables for the tasks."""

    path: Path
    inbox: Path
    outbox: Path
    state: Path
    plugins: Path
    values: dict[str, dict[str, Any]]
    task_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: dict[str, list[str]] = field(default_factory=dict)
    pricing: dict[str, dict[str, float]] = field(default_factory=dict)

    def __getitem__(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self.values[section][key]

    @property
    def enabled_tasks(self) -> list[str]:
        return list(self.values["tasks"]["enabled"])


def default_path() -> Path:
    """``$BATCHD_CONFIG``, else ``./config.toml``."""
    return Path(os.environ.get("BATCHD_CONFIG") or "config.toml")


def load(path: Path | None = None) -> Config:
    """Read and validate a config file; a missing file means every default."""
    path = (path or default_path()).absolute()
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    elif path != default_path().absolute() or os.environ.get("BATCHD_CONFIG"):
        raise ConfigError(f"{path}: no such configuration file")
    return from_dict(raw, path)


def from_dict(raw: dict[str, Any], path: Path) -> Config:
    """Validate a parsed config; relative paths are relative to ``path``'s folder."""
    values: dict[str, dict[str, Any]] = {}
    for section in raw:
        if section not in SCHEMA and section not in OPEN_TABLES:
            raise ConfigError(f"unknown section [{section}]")
        if not isinstance(raw[section], dict):
            raise ConfigError(f"[{section}] must be a table")
    task_tables: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = dict(raw.get(section, {}))
        if section == "tasks":
            task_tables = {k: given.pop(k) for k in list(given) if isinstance(given[k], dict)}
        values[section] = {}
        for key, value in given.items():
            if key not in keys:
                raise ConfigError(f"unknown key {section}.{key}")
        for key, (types, default) in keys.items():
            value = given.get(key, default)
            values[section][key] = _check(f"{section}.{key}", value, types)
    _check_values(values)
    base = path.parent
    paths = {k: (base / v).resolve() for k, v in values["paths"].items()}
    _check_nesting(paths)
    for name, table in task_tables.items():
        for key in ("model",):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"tasks.{name}.{key} must be a string")
        if "max_tokens" in table and (type(table["max_tokens"]) is not int or table["max_tokens"] < 1):
            raise ConfigError(f"tasks.{name}.max_tokens must be a whole number of at least 1")
    return Config(
        path=path,
        inbox=paths["inbox"],
        outbox=paths["outbox"],
        state=paths["state"],
        plugins=paths["plugins"],
        values=values,
        task_tables=task_tables,
        routes=_routes(raw.get("routes", {})),
        pricing=_pricing(raw.get("pricing", {})),
    )


def _check(name: str, value: Any, types: tuple[type, ...]) -> Any:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        wanted = " or ".join(_type_word(t) for t in types)
        raise ConfigError(f"{name} must be {wanted}, not {_type_word(type(value))} {value!r}")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings")
    return value


def _check_values(values: dict[str, dict[str, Any]]) -> None:
    for dotted, (low, high) in LIMITS.items():
        section, key = dotted.split(".")
        if not low <= values[section][key] <= high:
            raise ConfigError(f"{dotted} must be between {low} and {high}, not {values[section][key]}")
    for dotted in ("batch.max_wait", "batch.poll_initial", "batch.poll_max", "watch.settle", "watch.rescan"):
        section, key = dotted.split(".")
        if values[section][key] < 0:
            raise ConfigError(f"{dotted} must not be negative")
    if values["batch"]["poll_max"] < values["batch"]["poll_initial"]:
        raise ConfigError("batch.poll_max must not be smaller than batch.poll_initial")
    level = values["log"]["level"].lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log.level must be debug, info, warning or error, not {level!r}")
    if values["log"]["format"] not in ("auto", "json", "console"):
        raise ConfigError(f"log.format must be auto, json or console, not {values['log']['format']!r}")
    umask = values["service"]["umask"]
    if not (len(umask) in (3, 4) and all(c in "01234567" for c in umask)):
        raise ConfigError(f"service.umask must be an octal string such as \"027\", not {umask!r}")
    budget = values["budget"]["max_usd_per_day"]
    if budget is not None and budget < 0:
        raise ConfigError("budget.max_usd_per_day must not be negative")


def _check_nesting(paths: dict[str, Path]) -> None:
    """Inbox and outbox must be apart, and the state file in neither."""
    inbox, outbox, state = paths["inbox"], paths["outbox"], paths["state"]
    if inbox == outbox or inbox.is_relative_to(outbox) or outbox.is_relative_to(inbox):
        raise ConfigError(f"paths.inbox ({inbox}) and paths.outbox ({outbox}) must not be inside each other")
    for name, folder in (("inbox", inbox), ("outbox", outbox)):
        if state.is_relative_to(folder):
            raise ConfigError(f"paths.state ({state}) must not be inside paths.{name} ({folder})")


def _routes(raw: dict[str, Any]) -> dict[str, list[str]]:
    routes = {}
    for folder, tasks in raw.items():
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise ConfigError(f"routes.{folder} must be a list of task names")
        routes[folder.strip("/")] = tasks
    return routes


def _pricing(raw: dict[str, Any]) -> dict[str, dict[str, float]]:
    pricing = {}
    for model, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"pricing.{model} must be a table")
        for key, value in table.items():
            if key not in PRICING_KEYS:
                raise ConfigError(f"unknown key pricing.{model}.{key} (known: {', '.join(PRICING_KEYS)})")
            if isinstance(value, bool) or not isinstance(value, _NUMBER) or value < 0:
                raise ConfigError(f"pricing.{model}.{key} must be a non-negative number (USD per million tokens)")
        for key in ("input", "output"):
            if key not in table:
                raise ConfigError(f"pricing.{model}.{key} is required")
        pricing[model] = {k: float(v) for k, v in table.items()}
    return pricing


def _type_word(t: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list", type(None): "absent", dict: "a table"}.get(t, t.__name__)
