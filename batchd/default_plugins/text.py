"""Loader for text-like files: txt, md, csv, json, in whatever charset they come in."""

from __future__ import annotations

from pathlib import Path

from batchd import sniff
from batchd.documents import Document
from batchd.hookspecs import hookimpl
from batchd.text import decode_text

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".log", ".text", ".rst"}


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes):
    """A text Document for text-like suffixes; raises LoadError when the bytes are not text."""
    if path.suffix.lower() not in TEXT_SUFFIXES or sniff.binary_kind(data) is not None:
        return None
    return Document(kind="text", media_type="text/plain", text=decode_text(data))
