"""Turning bytes of unknown charset into text, or saying why they are not text."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from batchd import sniff
from batchd.documents import LoadError

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))

#: Charsets charset-normalizer may propose that no file dropped into a folder is in, but
#: that short Western texts often "decode" into: UTF-16/32 without a BOM are recognised
#: here by their NUL bytes instead, and EBCDIC would turn "Café" into nonsense.
_NEVER_GUESS = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le", "utf_7",
                "cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140", "cp1006"]
_WESTERN = {"cp1252", "latin_1", "iso8859_15"}
#: How much more "mess" than the best guess a Western reading may show and still win.
_WESTERN_TOLERANCE = 0.15

#: The sample size for checking that decoded text is text and not binary.
_SAMPLE_CHARS = 65536
#: Control characters that text does not hold (C0 but tab, newlines, form feed and
#: escape; C1), counted by one regex rather than a Python loop over every character.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")


def decode_text(data: bytes) -> str:
    """Decode ``data`` in its own charset; LoadError if it is empty or not text at all.

    Bytes in a known binary format (a PDF with uncompressed streams decodes fine) are
    not text. UTF-8 and byte-order marks are taken as they are, UTF-16 without a BOM is known by
    its NULs; anything else is left to charset-normalizer, which tells Shift-JIS from
    cp1251 by evidence. Between single-byte Latin charsets it cannot tell on a short
    text (latin-1 "Café" comes back as cp1257 or even UTF-16), so when a Western
    reading (cp1252, the superset of latin-1) is about as clean as its best guess, that
    one wins: it is by far the most common legacy charset for such files.
    """
    if not data.strip():
        raise LoadError("the file is empty")
    kind = sniff.binary_kind(data)
    if kind is not None:
        raise LoadError(f"unsupported type: the content is {sniff.describe(kind)}, not text")
    text = _decode(data)
    if text is None or not looks_like_text(text):
        raise LoadError("unsupported type: the content is binary, not text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoadError("the file is empty (only white space)")
    return text


def is_text(data: bytes) -> bool:
    """Whether the start of ``data`` decodes as text, for loaders deciding whether to step aside."""
    sample = data[:_SAMPLE_CHARS]
    if len(data) > len(sample) and b"\n" in sample:
        sample = sample[: sample.rfind(b"\n") + 1]
    try:
        decode_text(sample)
    except LoadError:
        return False
    return True


def _decode(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        return _decode_utf16_without_bom(data)
    return _guess(data)


def _decode_utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM has a NUL in every other byte for Latin text; binary does not."""
    sample = data[:_SAMPLE_CHARS]
    even, odd = sample[0::2], sample[1::2]
    if not even or not odd:
        return None
    even_nuls, odd_nuls = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nuls > 0.4 and even_nuls < 0.05:
        encoding = "utf-16-le"
    elif even_nuls > 0.4 and odd_nuls < 0.05:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data[: len(data) // 2 * 2].decode(encoding)
    except UnicodeDecodeError:
        return None


def _guess(data: bytes) -> str | None:
    matches = from_bytes(data, cp_exclusion=_NEVER_GUESS)
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        if match.chaos > best.chaos + _WESTERN_TOLERANCE:
            continue
        if _WESTERN & {match.encoding, *match.could_be_from_charset}:
            try:
                return data.decode("cp1252")
            except UnicodeDecodeError:
                return data.decode("latin-1")
    return str(best)


def looks_like_text(text: str) -> bool:
    """Whether decoded ``text`` is mostly printable: a few control characters are tolerated, NULs are not."""
    if "\x00" in text:
        return False
    sample = text[:_SAMPLE_CHARS]
    controls = len(_CONTROLS.findall(sample))
    return controls <= max(2, len(sample) // 100)
