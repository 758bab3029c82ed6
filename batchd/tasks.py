"""What a task is: a request builder, an answer parser and the name of its output file.

Plugins subclass :class:`Task` and hand instances to ``register`` in their
``batchd_register_tasks`` hook. The helpers below do the fiddly parts of a request for
them: a cached system prompt (:func:`system_blocks`), a forced tool (:func:`forced_tool`)
and reading its answer back (:func:`tool_input`).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from batchd.documents import Document

#: The smallest prompt prefix, in tokens, that a model caches; a ``cache_control``
#: breakpoint on a shorter prefix is ignored by the API (no error, no cache write, no
#: saving). Matched by model-id prefix, first match wins. Values from Anthropic's
#: prompt-caching guide; a model not listed (Sonnet 3.7 to 4.6, Opus 4 and 4.1, newer
#: ones) gets :data:`CACHE_MIN_TOKENS_DEFAULT`, the lowest: a breakpoint that turns out
#: too short costs nothing, a missing one costs the whole prompt in every request.
CACHE_MIN_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
CACHE_MIN_TOKENS_DEFAULT = 1024
#: Characters per token when guessing a prompt's length in tokens; low on purpose, for
#: the same reason.
CACHE_CHARS_PER_TOKEN = 3
#: Kept for plugins written against the first release: the character count above which
#: ``system_blocks(text)`` (no model given) marks the prompt, enough for every model.
CACHE_MIN_CHARS = max(n for _, n in CACHE_MIN_TOKENS) * CACHE_CHARS_PER_TOKEN


class Task:
    """One kind of answer batchd asks Claude for, for every document it applies to.

    The class attributes ``kinds``, ``suffixes`` and ``folders`` restrict where the task
    runs without writing :meth:`applies`; ``[routes]`` in the configuration restricts it
    further per inbox subfolder.
    """

    #: Unique name, used in ``[tasks] enabled``, ``[tasks.NAME]`` and result.json.
    name: str = ""
    #: File written into the document's outbox folder.
    output: str = ""
    #: Task-specific settings with their defaults; ``[tasks.NAME]`` may override them
    #: (with a value of the same type) besides ``model`` and ``max_tokens``.
    defaults: dict[str, Any] = {}
    #: Document kinds ("text", "pdf", "image") it applies to; empty means all.
    kinds: tuple[str, ...] = ()
    #: File name endings it applies to (``".eml"``, ``".tar.gz"``; case-insensitive); empty means all.
    suffixes: tuple[str, ...] = ()
    #: Inbox subfolders (``"invoices"``, ``"mail/2026"``) whose files, at any depth, it
    #: applies to; empty means the whole inbox.
    folders: tuple[str, ...] = ()

    def applies(self, document: Document, settings: dict[str, Any]) -> bool:
        """Whether this task should run for ``document`` (by default: ``kinds``, ``suffixes``, ``folders``)."""
        if self.kinds and document.kind not in self.kinds:
            return False
        if self.suffixes and not matches_suffix(document.source, self.suffixes):
            return False
        if self.folders and not in_folders(document.source, self.folders):
            return False
        return True

    def build(self, document: Document, settings: dict[str, Any]) -> dict[str, Any]:
        """The Messages params for ``document`` (``model`` and ``max_tokens`` are added)."""
        raise NotImplementedError

    def parse(self, message: dict[str, Any], settings: dict[str, Any]) -> str | bytes:
        """The content of the output file, from the returned Message (as a dict)."""
        raise NotImplementedError


def matches_suffix(source: str, suffixes: tuple[str, ...] | list[str]) -> bool:
    """Whether the file name of ``source`` ends with one of ``suffixes`` (dot optional, any case)."""
    name = PurePosixPath(source).name.lower()
    return any(name.endswith("." + s.lower().lstrip(".")) for s in suffixes)


def in_folders(source: str, folders: tuple[str, ...] | list[str]) -> bool:
    """Whether ``source`` (relative to the inbox) lies in one of ``folders``, at any depth."""
    for folder in folders:
        folder = folder.strip("/")
        if folder in ("", ".") or source.startswith(folder + "/"):
            return True
    return False


def cache_min_tokens(model: str | None) -> int:
    """The shortest prefix, in tokens, that ``model`` caches (the largest of all when None)."""
    if model is None:
        return max(n for _, n in CACHE_MIN_TOKENS)
    for prefix, tokens in CACHE_MIN_TOKENS:
        if model.startswith(prefix):
            return tokens
    return CACHE_MIN_TOKENS_DEFAULT


def system_blocks(text: str, model: str | None = None) -> list[dict[str, Any]]:
    """A system prompt as blocks, marked ``cache_control`` when long enough for ``model`` to cache it.

    Pass the task's model (``settings["model"]``) so that the threshold is the model's
    own; without it the prompt is marked only when every model would cache it. Keep the
    text the same for every document (put the document in ``messages``) so that a batch
    of requests shares one cached prefix.
    """
    block: dict[str, Any] = {"type": "text", "text": text}
    if len(text) >= cache_min_tokens(model) * CACHE_CHARS_PER_TOKEN:
        block["cache_control"] = {"type": "ephemeral"}
    return [block]


def ask(document: Document, instruction: str) -> list[dict[str, Any]]:
    """The ``messages`` of a one-turn request: the document first, then what to do with it.

    The document comes first so that the long, shared part of similar requests is a
    common prefix, and the instruction last, where models follow it best.
    """
    return [{"role": "user", "content": [*document.content(), {"type": "text", "text": instruction}]}]


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
