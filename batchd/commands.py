"""Commands that plugins add to ``batchd`` through ``batchd_register_commands``.

The ``batchd`` click group looks for plugin commands only when it is asked for a command
it does not have (or lists them all, for ``--help``), so the built-in commands never pay
for loading plugins. The plugins are those of the configuration in effect: ``-c``/
``--config`` wherever it is on the command line, else ``$BATCHD_CONFIG``, else
``./config.toml`` (a configuration that does not load: the default plugins folder beside
it). A plugin that fails to load, whose hook raises, or that reuses a taken name is
logged on stderr and adds nothing; every other command works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import structlog


class PluginCommandGroup(click.Group):
    """A click group that adds plugins' commands to its own, on first need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._from_plugins: dict[Path, dict[str, click.Command]] = {}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["batchd.args"] = list(args)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self.plugin_commands(ctx).get(cmd_name)
        return command

    def plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """The commands the configuration's plugins add, loaded once per plugins folder."""
        from batchd.config import ConfigError, default_path, load

        root = ctx.find_root()
        # The last -c on the line wins, as for the built-in commands (the subcommand's over the group's).
        path = config_in_args(root.meta.get("batchd.args", [])) or root.params.get("config_path") or default_path()
        try:
            plugins_dir = load(Path(path)).plugins
        except ConfigError:
            # The default plugins folder: the command itself reports the configuration's error.
            plugins_dir = Path(path).absolute().parent / "plugins"
        if plugins_dir not in self._from_plugins:
            self._from_plugins[plugins_dir] = self._load(plugins_dir)
        return self._from_plugins[plugins_dir]

    def _load(self, plugins_dir: Path) -> dict[str, click.Command]:
        from batchd import logs
        from batchd.plugins import Plugins

        if not structlog.is_configured():
            # Load errors and failing hooks are logged on stderr: stdout is the commands' output.
            logs.configure("warning", "auto")
        plugins = Plugins(plugins_dir)
        commands = plugins.register_commands(self, reserved=self.commands)
        for command in commands.values():
            _accept_config_option(command)
        return commands


def config_in_args(args: list[str]) -> str | None:
    """The last ``-c PATH`` / ``--config PATH`` / ``--config=PATH`` / ``-cPATH`` before ``--``."""
    found = None
    it = iter(args)
    for arg in it:
        if arg == "--":
            break
        if arg in ("-c", "--config"):
            found = next(it, None)
        elif arg.startswith("--config="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"):
            found = arg[2:]
    return found or None


def _accept_config_option(command: click.Command) -> None:
    """Let a plugin command take ``-c/--config`` after its name too, as the built-in ones do.

    The value lands where :func:`batchd.cli.open_config` looks (``ctx.obj["config_path"]``).
    """
    taken = {opt for param in command.params for opt in getattr(param, "opts", [])}
    if taken & {"-c", "--config"}:
        return

    def remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.ensure_object(dict)["config_path"] = value

    command.params.append(click.Option(["-c", "--config", "batchd_config_path"], default=None, expose_value=False,
                                       is_eager=True, callback=remember,
                                       type=click.Path(dir_okay=False, path_type=Path),
                                       help="Configuration file (default ./config.toml, or $BATCHD_CONFIG)."))
