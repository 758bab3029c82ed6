"""Plugins as their authors meet them: discovery, isolation, routing, the kit (fixture, docs, ``batchd try``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import anthropic
import pytest
from structlog.testing import capture_logs

from batchd.plugins import DEFAULT_PLUGINS, Plugins
from batchd.tasks import cache_min_tokens, system_blocks

from helpers import check_folder, check_manifest

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
MEMO = ("Memo from Dana Whitfield (dana.whitfield@example.org), Operations.\n"
        "Please send the signed supplier contract to legal by Friday 14 March. "
        "Quarterly revenue grew 12% and the budget review is on Monday.\n")


def plugin_source(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def write_plugin(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(plugin_source(text), encoding="utf-8")
    return path


def task_plugin(name: str, *, applies: str = "return True", build: str | None = None,
                parse: str = "return message_text(message) or 'empty'", attrs: str = "") -> str:
    """A plugin file providing one task ``name`` that writes ``name.txt``; each part replaceable."""
    build = build or ('return {"messages": [{"role": "user", "content": '
                      '[*document.content(), {"type": "text", "text": "Summarize."}]}]}')
    return f'''
from batchd.hookspecs import hookimpl
from batchd.tasks import Task, message_text


class T(Task):
    name = "{name}"
    output = "{name}.txt"
    {attrs}

    def applies(self, document, settings):
        {applies}

    def build(self, document, settings):
        {build}

    def parse(self, message, settings):
        {parse}


@hookimpl
def batchd_register_tasks(register):
    register(T())
'''


def batchd(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m batchd ...`` with a clean environment (no key, no BATCHD_* settings)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "BATCHD_", "CREDENTIALS_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "batchd", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real installed distribution ``batchd-ep-demo 1.2.3`` whose entry point ``epdemo`` is in group batchd."""
    site = tmp_path / "site"
    dist = site / "batchd_ep_demo-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: batchd-ep-demo\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[batchd]\nepdemo = batchd_ep_demo\n")
    (site / "batchd_ep_demo.py").write_text(plugin_source(task_plugin("ep_task")))
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("batchd_ep_demo", None)


# -- discovery ---------------------------------------------------------------------


def test_builtins_are_ordinary_default_plugins():
    plugins = Plugins(None, load_installed=False)
    assert list(plugins.info) == list(DEFAULT_PLUGINS)
    assert all(info.builtin and info.source == "built-in" and not info.error for info in plugins.info.values())
    assert plugins.task_owner == {"summarize": "batchd.default_plugins.summarize",
                                  "classify": "batchd.default_plugins.classify",
                                  "extract_contacts": "batchd.default_plugins.extract_contacts"}
    loaders = plugins.pm.hook.batchd_load_document.get_hookimpls()
    assert all(impl.trylast for impl in loaders), "a user's loader must win over the built-ins"


def test_installed_entry_point_plugin(installed_plugin, monkeypatch):
    monkeypatch.setenv("BATCHD_LOAD_PLUGINS", "epdemo")  # whatever else is installed stays out
    plugins = Plugins(None)
    info = plugins.info["epdemo"]
    assert (info.source, info.version, info.tasks, info.error) == ("package batchd-ep-demo 1.2.3", "1.2.3",
                                                                  ["ep_task"], None)
    assert plugins.task_owner["ep_task"] == "epdemo"
    assert "epdemo" not in Plugins(None, load_installed=False).info


def test_allow_list_limits_installed_and_folder_plugins(installed_plugin, tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    write_plugin(folder, "folder_one", task_plugin("one"))
    write_plugin(folder, "folder_two", task_plugin("two"))

    def loaded(value: str | None) -> set[str]:
        if value is None:
            monkeypatch.delenv("BATCHD_LOAD_PLUGINS", raising=False)
        else:
            monkeypatch.setenv("BATCHD_LOAD_PLUGINS", value)
        plugins = Plugins(folder)
        return {name for name, info in plugins.info.items() if not info.builtin}

    assert loaded(None) >= {"epdemo", "folder_one", "folder_two"}, "no allow-list: everything"
    assert loaded("") == set(), "empty: only the built-ins"
    assert loaded("folder_two") == {"folder_two"}
    assert loaded(" epdemo , folder_one ") == {"epdemo", "folder_one"}
    assert loaded("batchd-ep-demo") == {"epdemo"}, "a package by its distribution's name too"


def test_plugins_folder_task_runs_end_to_end(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize", "shout"]}})
    write_plugin(h.plugins_dir, "shout", task_plugin("shout", parse="return message_text(message).upper()"))
    h.drop({"memo.txt": MEMO})
    assert h.run_once() == 0
    manifest = h.results()["memo.txt"]
    check_folder(h.outbox, manifest)
    assert {n: t["status"] for n, t in manifest["tasks"].items()} == {"summarize": "succeeded", "shout": "succeeded"}
    shout = h.output("memo.txt", "shout.txt")
    assert shout.strip() and shout == shout.upper()
    assert h.daemon.plugins.info["shout"].source == str(h.plugins_dir / "shout.py")


def test_tracing_logs_every_call_into_plugins(batchd_harness, monkeypatch):
    monkeypatch.setenv("BATCHD_TRACE_PLUGINS", "1")
    h = batchd_harness({"tasks": {"enabled": ["summarize"]}})
    h.drop({"memo.txt": MEMO})
    with capture_logs() as logs:
        assert h.run_once() == 0
    hooks = {(e["hook"], e["plugin"]) for e in logs if e["event"] == "hook_call"}
    assert ("batchd_load_document", "batchd.default_plugins.text") in hooks
    assert {h for h, _ in hooks} >= {"batchd_register_tasks", "batchd_load_document"}
    load = next(e for e in logs if e["event"] == "hook_call" and e["hook"] == "batchd_load_document"
                and e["result"] == "Document")
    assert load["document"] == "memo.txt" and load["ms"] >= 0 and "data" in load["args"]
    assert MEMO[:20] not in json.dumps(logs, default=str), "traces never carry document text"
    calls = {(e["task"], e["method"]) for e in logs if e["event"] == "task_call"}
    assert calls >= {("summarize", "applies"), ("summarize", "build"), ("summarize", "parse")}

    monkeypatch.setenv("BATCHD_TRACE_PLUGINS", "0")
    h2 = batchd_harness({"tasks": {"enabled": ["summarize"]}}, name="quiet")
    h2.drop({"memo.txt": MEMO})
    with capture_logs() as logs:
        assert h2.run_once() == 0
    assert not [e for e in logs if e["event"] in ("hook_call", "task_call")]


# -- isolation ---------------------------------------------------------------------

BROKEN = {
    "bad_import": "import batchd_no_such_module_anywhere\n",
    "register_raises": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_register_tasks(register):
            raise RuntimeError("cannot register today")
    """,
    "register_junk": task_plugin("t_registered_ok").replace(
        "    register(T())", "    register('not a task')\n    register(T)\n    register(T())"),
    "t_fine": task_plugin("t_fine"),
    "applies_raises": task_plugin("t_applies", applies="raise KeyError('no such setting')"),
    "build_raises": task_plugin("t_build", build="raise ValueError('cannot build')"),
    "build_string": task_plugin("t_build_str", build="return 'params, honestly'"),
    "parse_raises": task_plugin("t_parse", parse="raise ValueError('cannot read that')"),
    "parse_number": task_plugin("t_parse_num", parse="return 42"),
    "adjust_raises": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_adjust_request(task, params):
            if task == "classify":
                raise RuntimeError("adjusting failed")
    """,
    "adjust_junk": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_adjust_request(task, document, params):
            if task == "extract_contacts":
                return "a string, not params"
    """,
    "loader_raises": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_load_document(path):
            if path.suffix == ".boom":
                raise OSError("the loader fell over")
    """,
    "loader_junk": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_load_document(path):
            if path.suffix == ".junk":
                return {"text": "a dict, not a Document"}
    """,
    "lifecycle_raises": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_startup(config):
            raise RuntimeError("startup failed")

        @hookimpl
        def batchd_shutdown():
            raise RuntimeError("shutdown failed")
    """,
    "finished_raises": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_document_finished(source, folder, result):
            raise RuntimeError("notification failed")
    """,
    "commands_raise": """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_register_commands(cli):
            raise RuntimeError("no commands")
    """,
}

BROKEN_TASKS = ["t_fine", "t_registered_ok", "t_applies", "t_build", "t_build_str", "t_parse", "t_parse_num"]


def test_broken_plugins_fail_only_their_own_work(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["summarize", "classify", "extract_contacts", *BROKEN_TASKS]}})
    for name, text in BROKEN.items():
        write_plugin(h.plugins_dir, name, text)
    h.drop({"memo.txt": MEMO, "report.boom": "the loader plugin raises on these",
            "data.junk": "the loader plugin answers junk for these"})
    with capture_logs() as logs:
        assert h.run_once() == 0
    results = h.results()
    for manifest in results.values():
        check_folder(h.outbox, manifest)

    memo = results["memo.txt"]
    assert memo["status"] == "done" and memo["error"] is None
    tasks = memo["tasks"]
    for good in ("summarize", "t_fine", "t_registered_ok"):
        assert tasks[good]["status"] == "succeeded", (good, tasks[good])
    outputs = sorted(p.name for p in (h.outbox / memo["_folder"]).iterdir())
    assert outputs == ["memo.txt", "result.json", "summary.md", "t_fine.txt", "t_registered_ok.txt"]
    expected = {
        "classify": ("adjust_raises", "RuntimeError: adjusting failed"),
        "extract_contacts": ("adjust_junk", "returned str"),
        "t_applies": ("applies_raises", "KeyError: 'no such setting' (in applies)"),
        "t_build": ("build_raises", "ValueError: cannot build"),
        "t_build_str": ("build_string", "built str without messages"),
        "t_parse": ("parse_raises", "could not read the answer: ValueError: cannot read that"),
        "t_parse_num": ("parse_number", "could not read the answer: T.parse returned int, not str or bytes"),
    }
    for task, (plugin, reason) in expected.items():
        entry = tasks[task]
        assert entry["status"] == "failed" and entry["output"] is None, (task, entry)
        assert f"plugin {plugin}" in entry["error"] and reason in entry["error"], (task, entry["error"])

    boom = results["report.boom"]
    assert boom["status"] == "failed" and "loader_raises" in boom["error"] and "the loader fell over" in boom["error"]
    assert results["data.junk"]["status"] == "failed"
    assert "loader_junk returned dict, not a Document" in results["data.junk"]["error"]

    errors = h.daemon.plugins.errors()
    assert "ModuleNotFoundError" in errors["bad_import"] and "batchd_no_such_module_anywhere" in errors["bad_import"]
    assert errors["register_raises"] == "batchd_register_tasks failed: RuntimeError: cannot register today"
    assert "registered 'str'" in errors["register_junk"] and "register(T())" in errors["register_junk"]
    assert set(errors) == {"bad_import", "register_raises", "register_junk"}

    def failures(hook: str) -> list[dict]:
        return [e for e in logs if e["event"] == "plugin_hook_failed" and e.get("hook") == hook]

    assert [(e["plugin"], e["error"]) for e in failures("batchd_startup")] == [
        ("lifecycle_raises", "RuntimeError: startup failed")]
    assert [(e["plugin"], e["error"]) for e in failures("batchd_shutdown")] == [
        ("lifecycle_raises", "RuntimeError: shutdown failed")]
    finished = failures("batchd_document_finished")
    assert {e["document"] for e in finished} == set(results) and {e["plugin"] for e in finished} == {"finished_raises"}
    task_failures = {(e.get("plugin"), e.get("document"), e["task"]) for e in logs if e["event"] == "task_failed"}
    assert ("applies_raises", "memo.txt", "t_applies") in task_failures


def test_register_commands_failure_is_reported_not_fatal(tmp_path):
    plugins = Plugins(tmp_path / "plugins", load_installed=False, extra=[
        write_plugin(tmp_path / "elsewhere", "commands_raise", BROKEN["commands_raise"]),
        write_plugin(tmp_path / "elsewhere", "hello", HELLO_COMMAND),
        write_plugin(tmp_path / "elsewhere", "squatter", SQUATTER_COMMAND),
    ])
    import click

    group = click.Group("batchd", commands={"run": click.Command("run")})
    added = plugins.register_commands(group, reserved=group.commands)
    assert sorted(added) == ["hello"]
    assert plugins.info["hello"].commands == ["hello"]
    errors = plugins.errors()
    assert errors["commands_raise"] == "batchd_register_commands failed: RuntimeError: no commands"
    assert errors["squatter"] == "command 'run' is taken already; not added"


def test_slips_that_silence_a_hook_are_reported(tmp_path):
    folder = tmp_path / "plugins"
    write_plugin(folder, "typo", """
        from batchd.hookspecs import hookimpl

        @hookimpl
        def batchd_register_task(register):
            pass

        def batchd_startup(config):
            pass
    """)
    error = Plugins(folder, load_installed=False).errors()["typo"]
    assert "batchd_register_task, which is not a batchd hook (did you mean batchd_register_tasks?)" in error
    assert "defines batchd_startup without the @hookimpl decorator" in error


# -- routing -----------------------------------------------------------------------


def test_routes_and_task_restrictions(batchd_run, tmp_path):
    folder = tmp_path / "authored"
    default_applies = "return super().applies(document, settings)"  # Task.applies: kinds, suffixes, folders
    plugins = [
        write_plugin(folder, "only_letters", task_plugin("only_letters", applies=default_applies,
                                                         attrs='folders = ("letters/",)')),
        write_plugin(folder, "only_md", task_plugin("only_md", applies=default_applies,
                                                    attrs='suffixes = ("MD", ".markdown")')),
    ]
    files = {"a.txt": MEMO, "b.md": MEMO + "b", "letters/c.txt": MEMO + "c", "letters/2026/d.markdown": MEMO + "d",
             "invoices/e.md": MEMO + "e", "invoices/sub/f.txt": MEMO + "f", "lettersx/g.txt": MEMO + "g"}
    results = batchd_run(files, plugins=plugins, tasks=["summarize", "only_letters", "only_md"],
                         config={"routes": {"invoices": ["extract_contacts", "only_md"]}})
    assert {source: set(m["tasks"]) for source, m in results.items()} == {
        "a.txt": {"summarize"},
        "b.md": {"summarize", "only_md"},
        "letters/c.txt": {"summarize", "only_letters"},
        "letters/2026/d.markdown": {"summarize", "only_letters", "only_md"},
        "invoices/e.md": {"extract_contacts", "only_md"},
        "invoices/sub/f.txt": {"extract_contacts"},
        "lettersx/g.txt": {"summarize"},
    }
    for manifest in results.values():
        check_manifest(manifest)
        assert all(t["status"] == "succeeded" for t in manifest["tasks"].values()), manifest


def test_prompt_caching_threshold_follows_the_model():
    assert cache_min_tokens("claude-haiku-4-5-20251001") == 4096
    assert cache_min_tokens("claude-opus-4-5") == 4096
    assert cache_min_tokens("claude-3-5-haiku-20241022") == 2048
    assert cache_min_tokens("claude-sonnet-4-5") == 1024
    assert cache_min_tokens("claude-some-future-model") == 1024
    assert cache_min_tokens(None) == 4096
    mid = "Instructions. " * 300  # 4,200 characters: long enough for Sonnet, not for Haiku 4.5
    assert "cache_control" in system_blocks(mid, model="claude-sonnet-4-5")[0]
    assert "cache_control" not in system_blocks(mid, model="claude-haiku-4-5")[0]
    assert "cache_control" not in system_blocks(mid)[0]
    long = "Instructions. " * 1000
    assert system_blocks(long, model="claude-haiku-4-5")[0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in system_blocks("Short.", model="claude-sonnet-4-5")[0]


def test_long_shared_instructions_are_cached_in_the_batched_request(batchd_harness):
    h = batchd_harness({"tasks": {"enabled": ["long_prompt"], "long_prompt": {"model": "claude-sonnet-4-5"}}})
    write_plugin(h.plugins_dir, "long_prompt", task_plugin("long_prompt", build=(
        'return {"system": system_blocks("Follow the house style. " * 200, model=settings["model"]), '
        '"messages": [{"role": "user", "content": document.content()}]}')).replace(
        "from batchd.tasks import Task, message_text", "from batchd.tasks import Task, message_text, system_blocks"))
    daemon = h.build()
    try:
        path = EXAMPLES / "acme-invoice.txt"
        document = daemon.builder.load(path, path.name, path.read_bytes(), "0" * 64)
        params = daemon.builder.params_for(document, "long_prompt")
    finally:
        daemon.store.close()
    assert params["model"] == "claude-sonnet-4-5"
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}


# -- the kit for authors -----------------------------------------------------------


def test_shipped_example_plugin(batchd_run):
    results = batchd_run({"memo.txt": MEMO}, plugins=[ROOT / "plugins" / "action_items.py"], tasks=["action_items"])
    assert results["memo.txt"]["tasks"]["action_items"]["status"] == "succeeded"
    assert isinstance(json.loads(results["memo.txt"]["_outputs"]["action_items.json"])["items"], list)


def test_worked_example_in_the_docs_runs(batchd_run, tmp_path):
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = re.search(r"### `plugins/invoice_fields.py`\s*```python\n(.*?)```", docs, re.S).group(1)
    plugin = tmp_path / "invoice_fields.py"
    plugin.write_text(code, encoding="utf-8")
    invoice = (EXAMPLES / "acme-invoice.txt").read_text(encoding="utf-8")
    results = batchd_run({"invoices/acme.txt": invoice, "notes.txt": MEMO}, plugins=[plugin],
                         tasks=["invoice_fields"], config={"tasks": {"invoice_fields": {"currency": "GBP"}}})
    entry = results["invoices/acme.txt"]["tasks"]["invoice_fields"]
    assert entry["status"] == "succeeded" and entry["output"] == "invoice.json", entry
    fields = json.loads(results["invoices/acme.txt"]["_outputs"]["invoice.json"])
    assert set(fields) == {"number", "issuer", "customer", "total", "currency", "due"}
    assert fields["currency"]
    assert results["notes.txt"]["tasks"] == {}, "folders = ('invoices',) keeps it out of the inbox's top level"


def test_the_fixture_refuses_a_task_no_plugin_provides(batchd_run, tmp_path):
    broken = write_plugin(tmp_path, "half_written", "def oops(:\n")
    from batchd.config import ConfigError

    with pytest.raises(ConfigError, match=r"'half_written_task'.*half_written.*SyntaxError"):
        batchd_run({"memo.txt": MEMO}, plugins=[broken], tasks=["half_written_task"])


# -- the command line --------------------------------------------------------------

HELLO_COMMAND = """
    import click

    from batchd.hookspecs import hookimpl


    @hookimpl
    def batchd_register_commands(cli):
        @cli.command()
        @click.pass_context
        def hello(ctx):
            \"\"\"Say hello from the configuration in effect.\"\"\"
            from batchd.cli import open_config

            click.echo(f"hello from {open_config(ctx, None).path.name}")
"""

SQUATTER_COMMAND = """
    import click

    from batchd.hookspecs import hookimpl


    @hookimpl
    def batchd_register_commands(cli):
        @cli.command()
        def run():
            click.echo("not the real run")
"""


def test_plugin_commands_on_the_command_line(tmp_path):
    project = tmp_path / "project"
    write_plugin(project / "plugins", "hello", HELLO_COMMAND)
    write_plugin(project / "plugins", "commands_raise", BROKEN["commands_raise"])
    write_plugin(project / "plugins", "squatter", SQUATTER_COMMAND)
    (project / "config.toml").write_text("")
    other = tmp_path / "other"
    write_plugin(other / "extra", "hello", HELLO_COMMAND)
    (other / "other.toml").write_text('[paths]\nplugins = "extra"\n')

    result = batchd("hello", cwd=project)
    assert (result.returncode, result.stdout) == (0, "hello from config.toml\n"), result.stderr
    assert "commands_raise" in result.stderr and "RuntimeError: no commands" in result.stderr
    assert "squatter" in result.stderr and "'run' is taken" in result.stderr
    help_text = batchd("--help", cwd=project)
    assert help_text.returncode == 0 and re.search(r"^  hello\s+Say hello", help_text.stdout, re.M)
    for args in (["-c", str(other / "other.toml"), "hello"], ["hello", "-c", str(other / "other.toml")],
                 ["hello", f"--config={other / 'other.toml'}"]):
        result = batchd(*args, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (0, "hello from other.toml\n"), (args, result.stderr)
    result = batchd("hello", cwd=tmp_path, env={"BATCHD_CONFIG": str(other / "other.toml")})
    assert result.stdout == "hello from other.toml\n", result.stderr
    nothing = batchd("hello", cwd=tmp_path)
    assert nothing.returncode == 2 and "No such command 'hello'" in nothing.stderr


def test_plugins_command_lists_every_source_and_error(installed_plugin, tmp_path):
    write_plugin(tmp_path / "plugins", "folder_task", task_plugin("folder_task"))
    write_plugin(tmp_path / "plugins", "bad_import", BROKEN["bad_import"])
    write_plugin(tmp_path / "plugins", "hello", HELLO_COMMAND)
    env = {"PYTHONPATH": os.pathsep.join([str(installed_plugin), os.environ.get("PYTHONPATH", "")])}
    result = batchd("plugins", "--json", "--all", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {*DEFAULT_PLUGINS, "epdemo", "folder_task", "bad_import", "hello"}
    assert rows["batchd.default_plugins.classify"] == {
        "name": "batchd.default_plugins.classify", "source": "built-in", "version": None,
        "hooks": ["batchd_register_tasks"], "tasks": ["classify"], "commands": [], "error": None}
    assert rows["batchd.default_plugins.pdf"]["hooks"] == ["batchd_load_document"]
    assert rows["epdemo"]["source"] == "package batchd-ep-demo 1.2.3" and rows["epdemo"]["version"] == "1.2.3"
    assert rows["epdemo"]["tasks"] == ["ep_task"] and rows["epdemo"]["hooks"] == ["batchd_register_tasks"]
    assert rows["folder_task"]["source"] == str(tmp_path / "plugins" / "folder_task.py")
    assert rows["folder_task"]["tasks"] == ["folder_task"] and rows["folder_task"]["error"] is None
    assert rows["hello"]["commands"] == ["hello"]
    assert rows["bad_import"]["hooks"] == [] and "ModuleNotFoundError" in rows["bad_import"]["error"]

    plain = batchd("plugins", cwd=tmp_path, env={**env, "BATCHD_LOAD_PLUGINS": "bad_import,hello"})
    assert plain.returncode == 0
    assert "bad_import  [" in plain.stdout and "ERROR: ModuleNotFoundError" in plain.stdout
    assert "hello  [" in plain.stdout and "epdemo" not in plain.stdout and "default_plugins" not in plain.stdout

    (tmp_path / "config.toml").write_text('[tasks]\nenabled = ["summarize", "bad_import_task"]\n')
    run = batchd("run", "--offline", "--once", cwd=tmp_path, env=env)
    assert run.returncode == 2 and "bad_import_task" in run.stderr
    assert "bad_import: ModuleNotFoundError" in run.stderr.strip().splitlines()[-1]


def test_try_offline_prints_what_would_land_in_the_outbox(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "action_items.py").write_bytes((ROOT / "plugins" / "action_items.py").read_bytes())
    (tmp_path / "config.toml").write_text('[tasks]\nenabled = ["summarize", "classify"]\n')
    sample = str(EXAMPLES / "acme-invoice.txt")

    result = batchd("try", sample, "--offline", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "acme-invoice.txt: text (text/plain)" in result.stdout and "tasks: summarize, classify" in result.stdout
    sections = dict(re.findall(r"^== (\S+ -> \S+)  \((.*)\)$", result.stdout, re.M))
    assert set(sections) == {"summarize -> summary.md", "classify -> classification.json"}
    assert "in a batch" in sections["classify -> classification.json"]
    classification = json.loads(result.stdout.split("== classify -> classification.json", 1)[1].split("\n", 1)[1])
    assert classification["category"] == "finance"
    assert not (tmp_path / "batchd.db").exists() and not (tmp_path / "outbox").exists(), "try writes nothing"

    shown = batchd("try", sample, "--offline", "--show-request", "--task", "action_items", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    request = shown.stdout.split("== action_items: request\n", 1)[1].split("\n== ", 1)[0]
    params = json.loads(request)
    assert params["model"] == "claude-haiku-4-5" and params["tool_choice"]["name"] == "save_action_items"
    items = json.loads(shown.stdout.split("== action_items -> action_items.json", 1)[1].split("\n", 1)[1])
    assert isinstance(items["items"], list)
    assert "== summarize" not in shown.stdout

    (tmp_path / "empty.txt").write_text("")
    empty = batchd("try", str(tmp_path / "empty.txt"), "--offline", cwd=tmp_path)
    assert empty.returncode == 1 and "empty.txt: cannot be loaded:" in empty.stdout and "empty" in empty.stdout[20:]
    unknown = batchd("try", sample, "--offline", "--task", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "--task nope" in unknown.stderr
    no_key = batchd("try", sample, cwd=tmp_path)
    assert no_key.returncode == 2 and "ANTHROPIC_API_KEY" in no_key.stderr


def test_try_streams_when_max_tokens_is_large(batchd_emulator):
    from batchd.trial import STREAM_ABOVE_MAX_TOKENS, ask

    params = {"model": "claude-haiku-4-5", "max_tokens": 1024,
              "messages": [{"role": "user", "content": "Hello there, emulator."}], "metadata": {"user_id": "u1"}}
    with anthropic.Anthropic(api_key="test", base_url=batchd_emulator.base_url, max_retries=0) as client:
        message = ask(client, params)
        assert message["type"] == "message" and message["content"]
        large = {**params, "max_tokens": STREAM_ABOVE_MAX_TOKENS + 1}
        # The emulator does not stream: its refusal proves the call asked for a stream.
        with pytest.raises(anthropic.BadRequestError, match="does not stream"):
            ask(client, large)
        assert ask(client, large, offline=True)["type"] == "message"
