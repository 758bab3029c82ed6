"""Example plugin: the action items a document asks for, in ``action_items.json``.

A complete batchd task in one file. batchd loads every ``*.py`` file of the plugins
folder; this task runs only once you enable it in config.toml::

    [tasks]
    enabled = ["summarize", "classify", "extract_contacts", "action_items"]

    [tasks.action_items]        # optional: its own settings
    max_items = 5
    model = "claude-sonnet-4-5"  # any task may use another model

The answer comes through a forced tool, so it always has the shape of the schema below.
Try it on one file before enabling it (``--offline``: the built-in emulator answers)::

    batchd try examples/acme-invoice.txt --task action_items --offline --show-request

Its test, tests/test_plugins.py::test_shipped_example_plugin, is three lines with the
``batchd_run`` fixture. See docs/plugins.md for the hooks and the testing fixture.
"""

from __future__ import annotations

from typing import Any

from batchd.hookspecs import hookimpl
from batchd.tasks import Task, ask, dump_json, forced_tool, system_blocks, tool_input

TOOL = "save_action_items"

SYSTEM = """You read documents and list what the reader is asked to do.

Record each action the document requests or implies, with the save_action_items tool:
- action: what has to be done, as a short imperative sentence,
- owner: who must do it, as named in the document (null if not said),
- due: the deadline exactly as written in the document (null if none).
List the most important actions first. If the document asks for nothing, save an empty list."""


class ActionItems(Task):
    name = "action_items"
    output = "action_items.json"
    defaults = {"max_items": 10}

    def build(self, document, settings: dict[str, Any]) -> dict[str, Any]:
        schema = {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "maxItems": settings["max_items"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "action": {"type": "string"},
                            "owner": {"type": ["string", "null"]},
                            "due": {"type": ["string", "null"]},
                        },
                        "required": ["action", "owner", "due"],
                    },
                },
            },
            "required": ["items"],
        }
        return {
            # Shared by every document: marked for caching once it is long enough for the model.
            "system": system_blocks(SYSTEM + f"\nList at most {settings['max_items']} actions.",
                                    model=settings["model"]),
            "messages": ask(document, "List the action items of this document."),
            **forced_tool(TOOL, "Save the action items found in the document.", schema),
        }

    def parse(self, message: dict[str, Any], settings: dict[str, Any]) -> str:
        items = tool_input(message, TOOL).get("items")
        if not isinstance(items, list):
            raise ValueError("items is not a list")
        return dump_json({"items": items[: settings["max_items"]]})


@hookimpl
def batchd_register_tasks(register):
    register(ActionItems())
