"""The plugin manager: where plugins come from, and the error boundary around each.

pluggy aborts a whole hook call when one implementation raises, so batchd calls every
implementation on its own (:func:`call_each`) and reports a failure under the plugin's
name instead of letting it take the daemon down.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pluggy
import structlog

from batchd import hookspecs
from batchd.tasks import Task

log = structlog.get_logger("batchd.plugins")

DEFAULT_PLUGINS = (
    "batchd.default_plugins.text",
    "batchd.default_plugins.pdf",
    "batchd.default_plugins.image",
    "batchd.default_plugins.html",
    "batchd.default_plugins.eml",
    "batchd.default_plugins.docx",
    "batchd.default_plugins.fallback",
    "batchd.default_plugins.summarize",
    "batchd.default_plugins.classify",
    "batchd.default_plugins.extract_contacts",
)


@dataclass
class PluginInfo:
    """Where a plugin came from, for ``batchd plugins`` and error messages."""

    name: str
    source: str  # "built-in", "package NAME VERSION", or the file's path
    builtin: bool = False
    error: str | None = None
    tasks: list[str] = field(default_factory=list)


class Plugins:
    """The loaded plugins, the tasks they registered, and what failed to load."""

    def __init__(self, plugins_dir: Path | None = None, *, load_installed: bool = True,
                 extra: Iterable[object] = ()) -> None:
        self.pm = pluggy.PluginManager("batchd")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.tasks: dict[str, Task] = {}
        self.task_owner: dict[str, str] = {}
        for module_name in DEFAULT_PLUGINS:
            self._register_module(module_name, "built-in", builtin=True)
        allow = _allow_list()
        if load_installed:
            self._load_entry_points(allow)
        if plugins_dir is not None and plugins_dir.is_dir():
            for path in sorted(plugins_dir.glob("*.py")):
                if allow is None or path.stem in allow:
                    self._load_file(path)
        for plugin in extra:
            name = self.pm.register(plugin)
            self.info[name] = PluginInfo(name, "registered in code")
        if os.environ.get("BATCHD_TRACE_PLUGINS"):
            self._trace()
        self._collect_tasks()

    # -- loading -----------------------------------------------------------------

    def _register_module(self, module_name: str, source: str, *, builtin: bool = False) -> None:
        try:
            module = importlib.import_module(module_name)
            self.pm.register(module, name=module_name)
        except Exception as exc:  # noqa: BLE001 - a plugin's import may raise anything
            self._failed(module_name, source, exc)
            return
        self.info[module_name] = PluginInfo(module_name, source, builtin=builtin)

    def _load_entry_points(self, allow: set[str] | None) -> None:
        for ep in importlib.metadata.entry_points(group="batchd"):
            if allow is not None and ep.name not in allow:
                continue
            dist = ep.dist
            source = f"package {dist.name} {dist.version}" if dist else "package"
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # noqa: BLE001
                self._failed(ep.name, source, exc)
                continue
            self.info[ep.name] = PluginInfo(ep.name, source)

    def _load_file(self, path: Path) -> None:
        name = path.stem
        try:
            spec = importlib.util.spec_from_file_location(f"batchd_plugin_{name}", path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            self.pm.register(module, name=name)
        except Exception as exc:  # noqa: BLE001
            sys.modules.pop(f"batchd_plugin_{name}", None)
            self._failed(name, str(path), exc)
            return
        self.info[name] = PluginInfo(name, str(path))

    def _failed(self, name: str, source: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.info[name] = PluginInfo(name, source, error=reason)
        log.error("plugin_load_failed", plugin=name, source=source, error=reason)

    def _trace(self) -> None:
        def before(hook_name: str, impls: list, kwargs: dict) -> None:
            log.debug("hook_call", hook=hook_name, plugins=[i.plugin_name for i in impls])

        def after(outcome: Any, hook_name: str, impls: list, kwargs: dict) -> None:
            log.debug("hook_done", hook=hook_name, error=repr(outcome.exception) if outcome.exception else None)

        self.pm.add_hookcall_monitoring(before, after)

    def _collect_tasks(self) -> None:
        for plugin_name, tasks in self.call_each("batchd_register_tasks", collect=True):
            for task in tasks:
                problem = _task_problem(task)
                if problem is None and task.name in self.tasks:
                    problem = f"task {task.name!r} is already provided by {self.task_owner[task.name]}"
                if problem:
                    self.info[plugin_name].error = problem
                    log.error("plugin_task_rejected", plugin=plugin_name, error=problem)
                    continue
                self.tasks[task.name] = task
                self.task_owner[task.name] = plugin_name
                self.info[plugin_name].tasks.append(task.name)

    # -- calling -----------------------------------------------------------------

    def call_each(self, hook_name: str, *, collect: bool = False, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call each implementation of a hook on its own, in pluggy's order.

        Yields ``(plugin_name, result)``; a failing implementation is logged with its
        plugin's name and skipped. With ``collect``, the hook receives a ``register``
        callback and the result is the list of what it registered.
        """
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            registered: list[Any] = []
            args = dict(kwargs)
            if collect:
                args["register"] = registered.append
            try:
                result = impl.function(**{a: args[a] for a in impl.argnames})
            except Exception as exc:  # noqa: BLE001
                reason = f"{type(exc).__name__}: {exc}"
                if impl.plugin_name in self.info and collect:
                    self.info[impl.plugin_name].error = reason
                log.error("plugin_hook_failed", plugin=impl.plugin_name, hook=hook_name, error=reason)
                continue
            yield impl.plugin_name, registered if collect else result

    def first(self, hook_name: str, **kwargs: Any) -> tuple[str, Any] | tuple[None, None]:
        """The first non-None answer of a hook, as ``(plugin_name, result)``.

        Exceptions propagate, wrapped in :class:`PluginError` unless the caller expects
        them (``LoadError``), so the caller can fail just the work at hand.
        """
        hook = getattr(self.pm.hook, hook_name)
        from batchd.documents import LoadError

        for impl in reversed(hook.get_hookimpls()):
            try:
                result = impl.function(**{a: kwargs[a] for a in impl.argnames})
            except LoadError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise PluginError(impl.plugin_name, exc) from exc
            if result is not None:
                return impl.plugin_name, result
        return None, None

    def errors(self) -> dict[str, str]:
        """Load errors by plugin name."""
        return {name: info.error for name, info in self.info.items() if info.error}


class PluginError(Exception):
    """A plugin raised or returned something unusable; names the plugin."""

    def __init__(self, plugin: str, exc: BaseException | str) -> None:
        self.plugin = plugin
        reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        super().__init__(f"plugin {plugin}: {reason}")


def _allow_list() -> set[str] | None:
    """``BATCHD_LOAD_PLUGINS``: comma-separated names to load beyond the built-ins."""
    value = os.environ.get("BATCHD_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _task_problem(task: Any) -> str | None:
    if not isinstance(task, Task):
        return f"registered {type(task).__name__!r}, which is not a batchd.tasks.Task"
    if not task.name or not isinstance(task.name, str):
        return f"task {type(task).__name__} has no name"
    if not task.output or "/" in task.output or task.output in ("result.json", ".", ".."):
        return f"task {task.name!r} has an invalid output file name {task.output!r}"
    return None
