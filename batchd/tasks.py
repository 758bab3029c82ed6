"""What a task is: a request builder, an answer parser and the name of its output file.

Plugins subclass :class:`Task` and hand instances to ``register`` in their
``batchd_register_tasks`` hook.
"""

from __future__ import annotations

import json
from typing import Any

from batchd.documents import Document

#: Below this many characters a system prompt is not worth a cache breakpoint: the API
#: silently ignores cache_control under its per-model minimum (1,024 to 4,096 tokens).
CACHE_MIN_CHARS = 4096 * 4


class Task:
    """One kind of answer batchd asks Claude for, for every document it applies to."""

    #: Unique name, used in ``[tasks] enabled``, ``[tasks.NAME]`` and result.json.
    name: str = ""
    #: File written into the document's outbox folder.
    output: str = ""
    #: Task-specific settings with their defaults; ``[tasks.NAME]`` may override them
    #: (with a value of the same type) besides ``model`` and ``max_tokens``.
    defaults: dict[str, Any] = {}
    #: Document kinds ("text", "pdf", "image") it applies to; empty means all.
    kinds: tuple[str, ...] = ()

    def applies(self, document: Document, settings: dict[str, Any]) -> bool:
        """Whether this task should run for ``document``."""
        return not self.kinds or document.kind in self.kinds

    def build(self, document: Document, settings: dict[str, Any]) -> dict[str, Any]:
        """The Messages params for ``document`` (``model`` and ``max_tokens`` are added)."""
        raise NotImplementedError

    def parse(self, message: dict[str, Any], settings: dict[str, Any]) -> str | bytes:
        """The content of the output file, from the returned Message (as a dict)."""
        raise NotImplementedError


def system_blocks(text: str) -> list[dict[str, Any]]:
    """A system prompt as blocks, marked for caching when it is long enough to be cached."""
    block: dict[str, Any] = {"type": "text", "text": text}
    if len(text) >= CACHE_MIN_CHARS:
        block["cache_control"] = {"type": "ephemeral"}
    return [block]


def message_text(message: dict[str, Any]) -> str:
    """All text blocks of a Message, joined."""
    return "".join(b.get("text", "") for b in message.get("content", []) if b.get("type") == "text")


def tool_input(message: dict[str, Any], name: str) -> dict[str, Any]:
    """The input of the first ``tool_use`` block calling ``name``; ValueError if none."""
    for block in message.get("content", []):
        if block.get("type") == "tool_use" and block.get("name") == name:
            if not isinstance(block.get("input"), dict):
                raise ValueError(f"tool {name!r} was called without an object input")
            return block["input"]
    raise ValueError(f"the answer did not call the tool {name!r} (stop_reason {message.get('stop_reason')})")


def forced_tool(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The ``tools`` and ``tool_choice`` params that make the model answer through one tool."""
    return {
        "tools": [{"name": name, "description": description, "input_schema": schema}],
        "tool_choice": {"type": "tool", "name": name, "disable_parallel_tool_use": True},
    }


def dump_json(value: Any) -> str:
    """Output files' JSON: indented, UTF-8 kept readable, newline-terminated."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
