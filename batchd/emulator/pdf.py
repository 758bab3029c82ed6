"""Text out of simple PDFs, with the standard library only.

Enough for the emulator to answer about the PDFs people drop into an inbox when those
PDFs come from ordinary generators (text drawn with Tj/TJ in plain or Flate-compressed
content streams, single-byte or UTF-16 strings). PDFs whose text hides behind CID fonts,
object streams of content or images yield little or nothing, and the answer then says
that the document's text could not be read: the real model would do better, an offline
run only needs to stay truthful.
"""

from __future__ import annotations

import base64
import re
import zlib

_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b(.*?)\bendobj", re.S)
_STREAM = re.compile(rb"\bstream\r?\n")
_LENGTH = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_SKIP = re.compile(rb"/Subtype\s*/Image|/Length1|/Length2|/Type\s*/(?:Metadata|XRef|ObjStm|EmbeddedFile)")
_TOKEN = re.compile(rb"\s*(?:(%[^\r\n]*)|(\()|(<<|>>)|(<)|(\[)|(\])|(/[^\s/\[\]()<>{}%]*)|([^\s/\[\]()<>{}%]+))")
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


def page_count(data: bytes) -> int:
    """Pages declared in the file (at least 1 for anything that looks like a PDF)."""
    return max(1, len(_PAGE.findall(data)))


def extract_text(data: bytes) -> str:
    """The text drawn by the PDF's content streams, one line per text line."""
    lines: list[str] = []
    for stream in _streams(data):
        text = _text_of_content(stream)
        if text.strip():
            lines.append(text.strip())
    return "\n".join(lines)


def _streams(data: bytes) -> list[bytes]:
    found = []
    for match in _OBJECT.finditer(data):
        body = match.group(1)
        start = _STREAM.search(body)
        if not start:
            continue
        head = body[:start.start()]
        if _SKIP.search(head):
            continue
        raw = body[start.end():]
        length = _LENGTH.search(head)
        if length and int(length.group(1)) <= len(raw):
            raw = raw[:int(length.group(1))]
        else:
            raw = raw[:raw.rfind(b"endstream")] if b"endstream" in raw else raw
            raw = raw.rstrip(b"\r\n")
        decoded = _decode(head, raw)
        if decoded is not None:
            found.append(decoded)
    return found


def _decode(head: bytes, raw: bytes) -> bytes | None:
    filters = re.findall(rb"/(FlateDecode|Fl|ASCIIHexDecode|AHx|ASCII85Decode|A85|[A-Za-z0-9]+Decode)", head)
    for name in filters:
        try:
            if name in (b"FlateDecode", b"Fl"):
                raw = zlib.decompressobj().decompress(raw)
            elif name in (b"ASCIIHexDecode", b"AHx"):
                raw = bytes.fromhex(re.sub(rb"[^0-9A-Fa-f]", b"", raw.split(b">")[0]).decode())
            elif name in (b"ASCII85Decode", b"A85"):
                raw = base64.a85decode(raw.strip().removeprefix(b"<~").removesuffix(b"~>"), adobe=False)
            else:
                return None
        except (zlib.error, ValueError):
            return None
    return raw


def _literal(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    depth = 1
    while pos < len(data):
        char = data[pos]
        if char == 0x5C:  # backslash
            pos += 1
            if pos >= len(data):
                break
            nxt = data[pos]
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt]
            elif 0x30 <= nxt <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[pos:pos + 3]).group(0)  # type: ignore[union-attr]
                out.append(int(digits, 8) & 0xFF)
                pos += len(digits) - 1
            elif nxt in (0x0D, 0x0A):
                if nxt == 0x0D and data[pos + 1:pos + 2] == b"\n":
                    pos += 1
            else:
                out.append(nxt)
        elif char == 0x28:
            depth += 1
            out.append(char)
        elif char == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), pos + 1
            out.append(char)
        else:
            out.append(char)
        pos += 1
    return bytes(out), pos


def _to_text(raw: bytes) -> str:
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    if len(raw) >= 4 and len(raw) % 2 == 0 and raw[0::2].count(0) >= len(raw) // 2 * 0.8:
        return raw.decode("utf-16-be", errors="replace")
    return raw.decode("cp1252", errors="replace")


def _text_of_content(data: bytes) -> str:
    """Run the text operators of one content stream and keep what they draw."""
    out: list[str] = []
    operands: list[object] = []
    array: list[object] | None = None
    pos = 0
    while pos < len(data):
        match = _TOKEN.match(data, pos)
        if not match or match.end() == pos:
            pos += 1
            continue
        pos = match.end()
        comment, lparen, dict_mark, hex_open, lbracket, rbracket, _name, word = match.groups()
        value: object
        if comment or dict_mark:
            continue
        if lparen:
            raw, pos = _literal(data, pos)
            value = _to_text(raw)
        elif hex_open:
            end = data.find(b">", pos)
            end = len(data) if end < 0 else end
            digits = re.sub(rb"[^0-9A-Fa-f]", b"", data[pos:end])
            pos = end + 1
            value = _to_text(bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode()))
        elif lbracket:
            array = []
            continue
        elif rbracket:
            value, array = array if array is not None else [], None
        elif word is not None:
            try:
                value = float(word)
            except ValueError:
                _operator(word, operands, out)
                operands = []
                continue
        else:
            continue
        if array is not None:
            array.append(value)
        else:
            operands.append(value)
    return "".join(out)


def _operator(op: bytes, operands: list[object], out: list[str]) -> None:
    if op in (b"Tj", b"'", b'"'):
        if op != b"Tj":
            out.append("\n")
        if operands and isinstance(operands[-1], str):
            out.append(operands[-1])
    elif op == b"TJ" and operands and isinstance(operands[-1], list):
        for item in operands[-1]:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, float) and item < -200:
                out.append(" ")
    elif op in (b"T*", b"ET"):
        out.append("\n")
    elif op in (b"Td", b"TD") and len(operands) >= 2 and operands[-1] != 0:
        out.append("\n")
    elif op == b"Tm":
        out.append("\n")
