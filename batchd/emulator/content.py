"""What the model "reads" in a request: text pulled out of every kind of block, and how
many tokens that costs.

Tokens are estimated at about four characters each, the rule of thumb for English; the
exact count does not matter, only that it grows with the input the way a bill does.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from batchd.emulator import pdf

_DOC_TAG = re.compile(r"<(document|doc|text|content|email|letter|file)\b[^>]*>(.*?)</\1\s*>", re.S | re.I)
_MESSAGE_OVERHEAD = 3
_REQUEST_OVERHEAD = 7
_PDF_PAGE_TOKENS = 300


def tokens(text: str) -> int:
    """Estimated tokens of ``text``: one per four characters, rounded up."""
    return math.ceil(len(text) / 4)


@dataclass
class Segment:
    """One piece of the prompt in the order the model sees it, for cache accounting."""

    tokens: int
    identity: Any
    cache_ttl: str | None = None


@dataclass
class Reading:
    """A request as the local engine sees it."""

    system: str = ""
    instructions: list[str] = field(default_factory=list)
    material: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    prefill: str = ""
    segments: list[Segment] = field(default_factory=list)

    @property
    def input_tokens(self) -> int:
        return _REQUEST_OVERHEAD + sum(s.tokens for s in self.segments)

    @property
    def subject(self) -> str:
        """The text to answer about: documents when there are any, else what the user wrote."""
        return "\n\n".join(self.material) if self.material else "\n\n".join(self.instructions)


def _ttl(block: dict[str, Any]) -> str | None:
    control = block.get("cache_control")
    if isinstance(control, dict) and control.get("type") == "ephemeral":
        return "1h" if control.get("ttl") == "1h" else "5m"
    return None


def read(params: dict[str, Any]) -> Reading:
    """Everything the engine needs from valid Messages ``params``."""
    reading = Reading()
    for tool in params.get("tools") or []:
        reading.segments.append(Segment(tokens(json.dumps(tool, sort_keys=True)), tool, _ttl(tool)))
    system = params.get("system")
    if isinstance(system, str) and system:
        reading.system = system
        reading.segments.append(Segment(tokens(system), system))
    elif isinstance(system, list):
        reading.system = "\n\n".join(b["text"] for b in system)
        for block in system:
            reading.segments.append(Segment(tokens(block["text"]), block["text"], _ttl(block)))
    messages = params["messages"]
    for i, message in enumerate(messages):
        last_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            before = _text_size(reading)
            extra = _read_block(reading, block, message["role"], last_assistant)
            cost = math.ceil((_text_size(reading) - before) / 4) + extra + _MESSAGE_OVERHEAD
            reading.segments.append(Segment(cost, _identity(block), _ttl(block)))
    return reading


def _text_size(reading: Reading) -> int:
    return (sum(map(len, reading.instructions)) + sum(map(len, reading.material)) + len(reading.prefill)
            + sum(map(len, reading.images)))


def _identity(block: dict[str, Any]) -> Any:
    return {k: v for k, v in block.items() if k != "cache_control"}


def _read_block(reading: Reading, block: dict[str, Any], role: str, last_assistant: bool) -> int:
    """Add what ``block`` says to ``reading``; return tokens that its text does not show."""
    kind = block.get("type")
    if kind == "text":
        text = block["text"]
        if last_assistant:
            reading.prefill += text
        elif role == "user":
            _split_documents(reading, text)
        return 0
    if kind == "document":
        return _read_document(reading, block)
    if kind == "image":
        description, cost = describe_image(block.get("source") or {})
        reading.images.append(description)
        return cost
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, str):
            reading.material.append(inner)
        elif isinstance(inner, list):
            return sum(_read_block(reading, b, "user", False) for b in inner if isinstance(b, dict))
        return 0
    if kind == "search_result":
        reading.material.extend(b.get("text", "") for b in block.get("content") or [] if isinstance(b, dict))
        return 0
    return tokens(json.dumps(block, sort_keys=True))


def _split_documents(reading: Reading, text: str) -> None:
    """Text wrapped in ``<document>``-like tags is material; the rest are instructions."""
    rest = text
    for match in _DOC_TAG.finditer(text):
        reading.material.append(match.group(2).strip())
        rest = rest.replace(match.group(0), " ")
    if rest.strip():
        reading.instructions.append(rest.strip())


def _read_document(reading: Reading, block: dict[str, Any]) -> int:
    source = block.get("source") or {}
    title = block.get("title") if isinstance(block.get("title"), str) else None
    kind = source.get("type")
    if kind == "text":
        reading.material.append(source.get("data", ""))
        return 0
    if kind == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            reading.material.append(inner)
        else:
            reading.material.extend(b.get("text", "") for b in inner or [] if isinstance(b, dict))
        return 0
    if kind == "base64":
        try:
            data = base64.b64decode(source.get("data", ""), validate=False)
        except (binascii.Error, ValueError):
            data = b""
        text = pdf.extract_text(data) if data.startswith(b"%PDF") else ""
        pages = pdf.page_count(data) if data else 1
        if text.strip():
            reading.material.append(text)
        else:
            reading.unreadable.append(f"a PDF{f' titled {title!r}' if title else ''} of {pages} page(s) whose "
                                      f"text could not be extracted")
        return pages * _PDF_PAGE_TOKENS
    where = source.get("url") or source.get("file_id") or "an unknown place"
    reading.unreadable.append(f"a document at {where} that this offline emulator cannot fetch")
    return _PDF_PAGE_TOKENS


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 < len(data) and data[pos] == 0xFF:
            marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
                return width, height
            pos += 2 + length
    return None


def describe_image(source: dict[str, Any]) -> tuple[str, int]:
    """A neutral description of an image and its token cost (about width*height/750,
    at most 1,600, as the real API bills images)."""
    if source.get("type") != "base64":
        return "an image given by reference, which this offline emulator does not fetch", 1600
    try:
        data = base64.b64decode(source.get("data", ""), validate=False)
    except (binascii.Error, ValueError):
        data = b""
    media = str(source.get("media_type", "image")).split("/")[-1].upper()
    size = _image_size(data)
    if size:
        cost = max(1, min(1600, size[0] * size[1] // 750))
        shape = f"{size[0]}x{size[1]} pixels, "
    else:
        cost = max(85, min(1600, len(data) // 100))
        shape = ""
    return f"an image ({media}, {shape}{len(data) / 1024:.1f} KB)", cost
