"""The local "model": a deterministic answer for valid Messages params.

Free text gets an extractive Markdown summary of the request's documents (or of what the
user wrote); a forced tool (``tool_choice`` "tool" or "any") gets exactly one
``tool_use`` block whose input satisfies the tool's schema. ``max_tokens`` and
``stop_sequences`` cut the answer as they would cut a real one, and usage grows with the
input and the output, with prompt-cache writes and reads where ``cache_control`` asks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from batchd.emulator import content, models
from batchd.emulator.schemafill import Evidence, fill
from batchd.emulator.summary import summarize

_TOOL_CALL_OVERHEAD = 12


class PromptCache(Protocol):
    """Where the engine remembers cached prompt prefixes."""

    def touch(self, key: str, ttl_seconds: float, now: float) -> bool:
        """Record a use of ``key``; True when it was cached and still fresh (a read)."""


def _forced_tool(params: dict[str, Any]) -> dict[str, Any] | None:
    choice = params.get("tool_choice") or {}
    tools = [t for t in params.get("tools") or [] if t.get("type", "custom") == "custom"]
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice["name"]), None)
    if choice.get("type") == "any":
        return tools[0] if tools else None
    return None


def _cut(text: str, params: dict[str, Any]) -> tuple[str, str, str | None]:
    """The text as the model would stop it: (text, stop_reason, stop_sequence)."""
    stop_reason, stop_sequence = "end_turn", None
    earliest = None
    for sequence in params.get("stop_sequences") or []:
        where = text.find(sequence) if sequence else -1
        if where >= 0 and (earliest is None or where < earliest[0]):
            earliest = (where, sequence)
    if earliest:
        text, stop_reason, stop_sequence = text[:earliest[0]], "stop_sequence", earliest[1]
    limit = params["max_tokens"] * 4
    if len(text) > limit:
        text, stop_reason, stop_sequence = text[:limit], "max_tokens", None
    return text, stop_reason, stop_sequence


def _cache_usage(reading: content.Reading, params: dict[str, Any], cache: PromptCache | None,
                 now: float) -> tuple[int, int, int, int]:
    """(creation_5m, creation_1h, read, prefix_tokens) for the prompt's cached prefix."""
    segments = reading.segments
    marked = [i for i, s in enumerate(segments) if s.cache_ttl]
    ttl = segments[marked[-1]].cache_ttl if marked else None
    end = marked[-1] if marked else None
    automatic = params.get("cache_control")
    if isinstance(automatic, dict) and automatic.get("type") == "ephemeral" and segments:
        end, ttl = len(segments) - 1, "1h" if automatic.get("ttl") == "1h" else "5m"
    if end is None or cache is None:
        return 0, 0, 0, 0
    prefix = sum(s.tokens for s in segments[:end + 1])
    if prefix < models.min_cacheable_tokens(params["model"]):
        return 0, 0, 0, 0
    identity = json.dumps([params["model"], [s.identity for s in segments[:end + 1]]], sort_keys=True)
    key = hashlib.sha256(identity.encode("utf-8")).hexdigest()
    if cache.touch(key, 3600.0 if ttl == "1h" else 300.0, now):
        return 0, 0, prefix, prefix
    return (prefix, 0, 0, prefix) if ttl == "5m" else (0, prefix, 0, prefix)


def usage(input_tokens: int, output_tokens: int, *, service_tier: str, creation_5m: int = 0,
          creation_1h: int = 0, read: int = 0) -> dict[str, Any]:
    """A Usage object with every key the API sends."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": creation_5m + creation_1h,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": creation_5m, "ephemeral_1h_input_tokens": creation_1h},
        "inference_geo": "not_available",
        "output_tokens_details": {"thinking_tokens": 0},
        "server_tool_use": None,
        "service_tier": service_tier,
    }


def count_tokens(params: dict[str, Any]) -> int:
    """Input tokens of valid ``params``, as ``/v1/messages/count_tokens`` reports them."""
    return content.read(params).input_tokens


def answer(params: dict[str, Any], *, message_id: str, tool_use_id: str, service_tier: str,
           cache: PromptCache | None = None, now: float = 0.0) -> dict[str, Any]:
    """The Message the local model gives for valid ``params``."""
    reading = content.read(params)
    tool = _forced_tool(params)
    blocks: list[dict[str, Any]]
    if tool is not None:
        evidence = Evidence(reading.subject or "\n".join(reading.instructions))
        tool_input = fill(tool["input_schema"], evidence)
        out_tokens = content.tokens(json.dumps(tool_input)) + _TOOL_CALL_OVERHEAD
        stop_reason, stop_sequence = "tool_use", None
        if out_tokens > params["max_tokens"]:
            tool_input, out_tokens, stop_reason = {}, params["max_tokens"], "max_tokens"
        blocks = [{"type": "tool_use", "id": tool_use_id, "name": tool["name"], "input": tool_input,
                   "caller": {"type": "direct"}}]
    else:
        text = summarize(reading.subject, reading.images, reading.unreadable)
        text, stop_reason, stop_sequence = _cut(text, params)
        out_tokens = params["max_tokens"] if stop_reason == "max_tokens" else max(1, content.tokens(text))
        blocks = [{"type": "text", "text": text, "citations": None}] if text or stop_reason != "max_tokens" else []
    creation_5m, creation_1h, read, prefix = _cache_usage(reading, params, cache, now)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": models.dated(params["model"]),
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": None,
        "container": None,
        "usage": usage(reading.input_tokens - prefix, out_tokens, service_tier=service_tier,
                       creation_5m=creation_5m, creation_1h=creation_1h, read=read),
    }
