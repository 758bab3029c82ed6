"""The plugin manager: where plugins come from, and the error boundary around each.

Plugins come from three places, in this order: the built-ins (:data:`DEFAULT_PLUGINS`),
installed packages with an entry point in the group ``batchd``, and ``*.py`` files in the
plugins folder. ``BATCHD_LOAD_PLUGINS`` (comma-separated names; empty for none) limits
the last two; ``BATCHD_TRACE_PLUGINS=1`` logs every call batchd makes into a plugin.

pluggy aborts a whole hook call when one implementation raises, so batchd calls every
implementation on its own (:meth:`Plugins.call_each`, :meth:`Plugins.first`,
:meth:`Plugins.adjust_request`, :meth:`Plugins.run_task`) and reports a failure under the
plugin's name instead of letting it take the daemon down.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import time
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

#: The hooks a plugin may implement, by name.
HOOK_NAMES = tuple(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
                   if name.startswith("batchd_"))


@dataclass
class PluginInfo:
    """Where a plugin came from, for ``batchd plugins`` and error messages."""

    name: str
    source: str  # "built-in", "package NAME VERSION", the file's path, or "registered in code"
    builtin: bool = False
    error: str | None = None
    tasks: list[str] = field(default_factory=list)
    version: str | None = None
    commands: list[str] = field(default_factory=list)


class PluginError(Exception):
    """A plugin raised or returned something unusable; names the plugin."""

    def __init__(self, plugin: str, exc: BaseException | str) -> None:
        self.plugin = plugin
        reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.reason = reason
        super().__init__(f"plugin {plugin}: {reason}")


class Plugins:
    """The loaded plugins, the tasks they registered, and what failed to load.

    ``extra`` adds plugins from code (tests, the pytest fixture): module objects, any
    object with ``@hookimpl`` methods, or paths of ``*.py`` files loaded as if they were
    in the plugins folder.
    """

    def __init__(self, plugins_dir: Path | None = None, *, load_installed: bool = True,
                 extra: Iterable[object] = ()) -> None:
        self.pm = pluggy.PluginManager("batchd")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.tasks: dict[str, Task] = {}
        self.task_owner: dict[str, str] = {}
        self.plugins_dir = plugins_dir
        self.trace = _flag(os.environ.get("BATCHD_TRACE_PLUGINS"))
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
            if isinstance(plugin, (str, Path)):
                self._load_file(Path(plugin))
            else:
                self._register_object(plugin)
        self._check_hooks()
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
            dist = ep.dist
            if allow is not None and ep.name not in allow and not (dist and dist.name in allow):
                continue
            source = f"package {dist.name} {dist.version}" if dist else "package"
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # noqa: BLE001
                self._failed(ep.name, source, exc)
                continue
            self.info[ep.name] = PluginInfo(ep.name, source, version=dist.version if dist else None)

    def _load_file(self, path: Path) -> None:
        name = path.stem
        module_name = f"batchd_plugin_{name}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"{path} cannot be imported as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            self.pm.register(module, name=name)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin's import is a load error too
            if isinstance(exc, KeyboardInterrupt):
                raise
            sys.modules.pop(module_name, None)
            self._failed(name, str(path), exc)
            return
        self.info[name] = PluginInfo(name, str(path))

    def _register_object(self, plugin: object) -> None:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001
            self._failed(name, "registered in code", exc)
            return
        self.info[name] = PluginInfo(name, "registered in code")

    def _failed(self, name: str, source: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.info[name] = PluginInfo(name, source, error=reason)
        log.error("plugin_load_failed", plugin=name, source=source, error=reason)

    def _problem(self, plugin_name: str, problem: str) -> None:
        """A loaded plugin that cannot work as its author meant: shown by ``batchd plugins``, logged."""
        info = self.info.get(plugin_name)
        if info is not None:
            info.error = f"{info.error}; {problem}" if info.error else problem
        log.error("plugin_problem", plugin=plugin_name, error=problem)

    def _check_hooks(self) -> None:
        """Report the slips that make a hook silently do nothing: a misspelled name, a missing ``@hookimpl``."""
        for hook_name, caller in vars(self.pm.hook).items():
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(hook_name, HOOK_NAMES, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self._problem(impl.plugin_name, f"implements {hook_name}, which is not a batchd hook{hint}")
        for plugin_name, info in self.info.items():
            plugin = self.pm.get_plugin(plugin_name)
            if plugin is None or info.builtin:
                continue
            for hook_name in HOOK_NAMES:
                function = getattr(plugin, hook_name, None)
                if callable(function) and not hasattr(function, "batchd_impl"):
                    self._problem(plugin_name, f"defines {hook_name} without the @hookimpl decorator,"
                                               " so batchd never calls it")

    def _collect_tasks(self) -> None:
        outputs: dict[str, str] = {}
        for plugin_name, tasks in self.call_each("batchd_register_tasks", collect=True):
            for task in tasks:
                problem = _task_problem(task)
                if problem is None and task.name in self.tasks:
                    problem = f"task {task.name!r} is already provided by {self.task_owner[task.name]}"
                if problem is None and task.output in outputs:
                    problem = (f"task {task.name!r} writes {task.output}, which task {outputs[task.output]!r}"
                               " writes already")
                if problem:
                    self._problem(plugin_name, problem)
                    continue
                self.tasks[task.name] = task
                self.task_owner[task.name] = plugin_name
                outputs[task.output] = task.name
                if plugin_name in self.info:
                    self.info[plugin_name].tasks.append(task.name)

    # -- calling -----------------------------------------------------------------

    def _invoke(self, impl: Any, hook_name: str, args: dict[str, Any]) -> Any:
        """One implementation, with the arguments it names; traced when tracing is on."""
        kwargs = {a: args[a] for a in impl.argnames}
        if not self.trace:
            return impl.function(**kwargs)
        return self._traced(impl.function, kwargs, "hook_call", plugin=impl.plugin_name, hook=hook_name,
                            args=sorted(kwargs), document=_document_of(args))

    def _traced(self, function: Any, kwargs: dict[str, Any], event: str, **fields: Any) -> Any:
        started = time.perf_counter()
        fields = {k: v for k, v in fields.items() if v is not None}
        try:
            result = function(**kwargs)
        except Exception as exc:
            log.info(event, **fields, ms=_ms(started), error=f"{type(exc).__name__}: {exc}")
            raise
        log.info(event, **fields, ms=_ms(started), result=_describe(result))
        return result

    def call_each(self, hook_name: str, *, collect: bool = False, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call each implementation of a hook on its own, in pluggy's order.

        Yields ``(plugin_name, result)``; a failing implementation is logged with its
        plugin's name (and the document, for hooks about one) and skipped. With
        ``collect``, the hook receives a ``register`` callback and the result is the list
        of what it registered.
        """
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            registered: list[Any] = []
            args = dict(kwargs)
            if collect:
                args["register"] = registered.append
            try:
                result = self._invoke(impl, hook_name, args)
            except Exception as exc:  # noqa: BLE001
                reason = f"{type(exc).__name__}: {exc}"
                info = self.info.get(impl.plugin_name)
                if collect and info is not None:
                    failure = f"{hook_name} failed: {reason}"
                    info.error = f"{info.error}; {failure}" if info.error else failure
                fields = {"document": _document_of(kwargs)} if _document_of(kwargs) else {}
                log.error("plugin_hook_failed", plugin=impl.plugin_name, hook=hook_name, error=reason, **fields)
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
                result = self._invoke(impl, hook_name, kwargs)
            except LoadError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise PluginError(impl.plugin_name, exc) from exc
            if result is not None:
                return impl.plugin_name, result
        return None, None

    def adjust_request(self, task: str, document: Any, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` after every ``batchd_adjust_request``, each getting the previous one's answer.

        Raises :class:`PluginError` naming the plugin that raised or answered something
        that is not request params.
        """
        hook_name = "batchd_adjust_request"
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            try:
                result = self._invoke(impl, hook_name, {"task": task, "document": document, "params": params})
            except Exception as exc:  # noqa: BLE001
                raise PluginError(impl.plugin_name, exc) from exc
            if result is None:
                continue
            if not isinstance(result, dict) or not isinstance(result.get("messages"), list) or not result["messages"]:
                raise PluginError(impl.plugin_name, f"{hook_name} returned {type(result).__name__} without messages,"
                                                    " not request params")
            params = result
        return params

    def run_task(self, name: str, method: str, *args: Any) -> Any:
        """Call a task's ``applies``, ``build`` or ``parse``; any exception becomes a PluginError naming its plugin."""
        task = self.tasks[name]
        owner = self.task_owner[name]
        function = getattr(task, method)
        try:
            if not self.trace:
                return function(*args)
            return self._traced(lambda: function(*args), {}, "task_call", plugin=owner, task=name, method=method,
                                document=_document_of({"document": args[0] if args else None}))
        except Exception as exc:  # noqa: BLE001
            raise PluginError(owner, exc) from exc

    def register_commands(self, cli: Any, reserved: Iterable[str] = ()) -> dict[str, Any]:
        """Each plugin's ``batchd_register_commands``, on a group of its own: the commands by name.

        A plugin that raises adds nothing; a command whose name is ``reserved`` (the
        built-in commands) or already added is refused. Both are reported as the plugin's
        error.
        """
        import click

        hook_name = "batchd_register_commands"
        taken = set(reserved)
        added: dict[str, Any] = {}
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            scratch = click.Group(name=getattr(cli, "name", None) or "batchd")
            try:
                self._invoke(impl, hook_name, {"cli": scratch})
            except Exception as exc:  # noqa: BLE001
                self._problem(impl.plugin_name, f"{hook_name} failed: {type(exc).__name__}: {exc}")
                continue
            for command_name, command in scratch.commands.items():
                if command_name in taken:
                    self._problem(impl.plugin_name, f"command {command_name!r} is taken already; not added")
                    continue
                taken.add(command_name)
                added[command_name] = command
                if impl.plugin_name in self.info:
                    self.info[impl.plugin_name].commands.append(command_name)
        return added

    def errors(self) -> dict[str, str]:
        """Load errors (and problems found at load) by plugin name."""
        return {name: info.error for name, info in self.info.items() if info.error}


def _allow_list() -> set[str] | None:
    """``BATCHD_LOAD_PLUGINS``: comma-separated names to load beyond the built-ins."""
    value = os.environ.get("BATCHD_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _task_problem(task: Any) -> str | None:
    if isinstance(task, type) and issubclass(task, Task):
        return f"registered the class {task.__name__}; register an instance: register({task.__name__}())"
    if not isinstance(task, Task):
        return f"registered {type(task).__name__!r}, which is not a batchd.tasks.Task"
    if not task.name or not isinstance(task.name, str):
        return f"task {type(task).__name__} has no name"
    if not isinstance(task.output, str) or not task.output or "/" in task.output \
            or task.output in ("result.json", ".", ".."):
        return f"task {task.name!r} has an invalid output file name {task.output!r}"
    if not isinstance(task.defaults, dict):
        return f"task {task.name!r} has defaults that are not a dict"
    return None


def _document_of(args: dict[str, Any]) -> str | None:
    """The document a hook call is about, for logs: its source path, never its content."""
    document = args.get("document")
    source = getattr(document, "source", None) or args.get("source")
    return source if isinstance(source, str) and source else None


def _describe(result: Any) -> str:
    return "None" if result is None else type(result).__name__


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

