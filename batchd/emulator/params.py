"""Checking Messages params the way the API does, with its field-path messages.

The same rules serve ``POST /v1/messages`` (a 400 or 404 answer), ``count_tokens`` and
each request of a batch (an ``errored`` result once the batch ends: the batch API
accepts any ``params`` object at create and validates it asynchronously).
"""

from __future__ import annotations

import re
from typing import Any

from batchd.emulator import models
from batchd.emulator.errors import ApiError, invalid, not_found

_MESSAGE_KEYS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "inference_geo",
    "output_config", "cache_control", "context_management", "mcp_servers", "diagnostics", "speed",
    "store", "previous_thread_event_id", "cache_hint", "context_hint", "research_preview_2026_02",
})
_COUNT_KEYS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control", "output_config",
    "speed", "context_management", "mcp_servers",
})
#: Params the batch API documents as not allowed inside a batch.
_NOT_IN_BATCHES = ("speed", "store", "previous_thread_event_id", "cache_hint", "context_hint")
_BLOCK_TYPES = frozenset({
    "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result",
    "container_upload", "mcp_tool_use", "mcp_tool_result",
})
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(params: dict[str, Any], *, mode: str) -> None:
    """Raise the ApiError the API would answer ``params`` with; ``mode`` is "batch",
    "messages" or "count_tokens"."""
    allowed = _COUNT_KEYS if mode == "count_tokens" else _MESSAGE_KEYS
    for key in params:
        if key not in allowed:
            raise invalid(f"{key}: Extra inputs are not permitted")
    _check_model(params)
    if mode != "count_tokens":
        _check_max_tokens(params, batch=mode == "batch")
    if mode == "batch":
        if params.get("stream") is True:
            raise invalid("stream: Stream mode is not supported in Message Batches")
        for key in _NOT_IN_BATCHES:
            if key in params:
                raise invalid(f"{key}: not supported in Message Batches")
        if params.get("research_preview_2026_02") == "active":
            raise invalid("research_preview_2026_02: not supported in Message Batches")
    elif mode == "messages" and params.get("stream") is True:
        raise invalid("stream: this emulator does not stream; send stream=false")
    _check_messages(params)
    _check_system(params.get("system"))
    tool_names = _check_tools(params.get("tools"))
    _check_tool_choice(params.get("tool_choice"), tool_names, params.get("thinking"))
    _check_sampling(params)


def _check_model(params: dict[str, Any]) -> None:
    if "model" not in params:
        raise invalid("model: Field required")
    model = params["model"]
    if not isinstance(model, str):
        raise invalid("model: Input should be a valid string")
    if not models.is_known(model):
        raise not_found(f"model: {model}")


def _check_max_tokens(params: dict[str, Any], *, batch: bool) -> None:
    if "max_tokens" not in params:
        raise invalid("max_tokens: Field required")
    value = params["max_tokens"]
    if not _is_int(value):
        raise invalid("max_tokens: Input should be a valid integer")
    least = 1 if batch else 0
    if value < least:
        raise invalid(f"max_tokens: Input should be greater than or equal to {least}")
    ceiling = models.max_output_tokens(params["model"])
    if value > ceiling:
        raise invalid(f"max_tokens: {value} > {ceiling}, which is the maximum allowed number of output tokens "
                      f"for {models.dated(params['model'])}")


def _check_messages(params: dict[str, Any]) -> None:
    if "messages" not in params:
        raise invalid("messages: Field required")
    messages = params["messages"]
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise invalid(f"{where}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        for key in message:
            if key not in ("role", "content"):
                raise invalid(f"{where}.{key}: Extra inputs are not permitted")
        if "content" not in message:
            raise invalid(f"{where}.content: Field required")
        content = message["content"]
        final_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        if isinstance(content, str):
            if not content and not final_assistant:
                raise invalid(f"{where}: all messages must have non-empty content except for the optional "
                              f"final assistant message")
        elif isinstance(content, list):
            if not content and not final_assistant:
                raise invalid(f"{where}: all messages must have non-empty content except for the optional "
                              f"final assistant message")
            for j, block in enumerate(content):
                _check_block(block, f"{where}.content.{j}")
        else:
            raise invalid(f"{where}.content: Input should be a valid string or a valid list")


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise invalid(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        raise invalid(f"{where}.type: Input tag {kind!r} found using 'type' does not match any of the expected tags")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise invalid(f"{where}.text: Field required")
        if not block["text"]:
            raise invalid("messages: text content blocks must be non-empty")
    elif kind in ("image", "document"):
        _check_source(block.get("source"), f"{where}.source", kind)
    elif kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
        raise invalid(f"{where}.tool_use_id: Field required")


def _check_source(source: Any, where: str, kind: str) -> None:
    if not isinstance(source, dict):
        raise invalid(f"{where}: Field required")
    stype = source.get("type")
    if stype == "base64":
        media = source.get("media_type")
        allowed = _IMAGE_TYPES if kind == "image" else ("application/pdf",)
        if media not in allowed:
            raise invalid(f"{where}.media_type: Input should be {' or '.join(repr(m) for m in allowed)}")
        if not isinstance(source.get("data"), str):
            raise invalid(f"{where}.data: Field required")
    elif stype == "url":
        if not isinstance(source.get("url"), str):
            raise invalid(f"{where}.url: Field required")
    elif stype == "text" and kind == "document":
        if not isinstance(source.get("data"), str):
            raise invalid(f"{where}.data: Field required")
    elif stype == "content" and kind == "document":
        if not isinstance(source.get("content"), (str, list)):
            raise invalid(f"{where}.content: Field required")
    elif stype != "file":
        raise invalid(f"{where}.type: Input tag {stype!r} found using 'type' does not match any of the expected tags")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid("system: Input should be a valid string or a valid list")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise invalid(f"system.{i}: Input should be a text block")
        if not block["text"]:
            raise invalid("system: text content blocks must be non-empty")


def _check_tools(tools: Any) -> set[str]:
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict):
            raise invalid(f"{where}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise invalid(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if tool.get("type", "custom") == "custom":
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise invalid(f"{where}.input_schema: Field required")
            if schema.get("type") != "object":
                raise invalid(f"{where}.input_schema.type: Input should be 'object'")
        if name in names:
            raise invalid("tools: Tool names must be unique.")
        names.add(name)
    return names


def _check_tool_choice(choice: Any, tool_names: set[str], thinking: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice: Input tag found using 'type' does not match any of the expected tags: "
                      "'auto', 'any', 'tool', 'none'")
    if choice["type"] in ("any", "tool"):
        if not tool_names:
            raise invalid("tool_choice: tool_choice may only be specified while providing tools.")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice.name: Field required")
        if name not in tool_names:
            raise invalid(f"tool_choice.name: Tool '{name}' not found in tools")


def _check_sampling(params: dict[str, Any]) -> None:
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise invalid("stop_sequences: Input should be a valid list of strings")
    temperature = params.get("temperature")
    if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 1):
        raise invalid("temperature: Input should be a number between 0 and 1")
    top_p = params.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 <= top_p <= 1):
        raise invalid("top_p: Input should be a number between 0 and 1")
    top_k = params.get("top_k")
    if top_k is not None and (not _is_int(top_k) or top_k < 0):
        raise invalid("top_k: Input should be a non-negative integer")


def error_of(params: dict[str, Any], *, mode: str) -> ApiError | None:
    """The ApiError :func:`check` would raise, or None when ``params`` are fine."""
    try:
        check(params, mode=mode)
    except ApiError as exc:
        return exc
    return None
