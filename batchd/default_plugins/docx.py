"""Loader for Word documents (``.docx``): the text of the body, paragraphs and tables in order.

The API reads no Word files, and the XML inside one is mostly formatting; the body's
words in reading order, with headings and list items marked and table rows kept on one
line each, are what a reader needs. Legacy ``.doc`` files (a different, binary format)
are left to the fallback, which says they are not supported.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document as WordDocument
from docx.table import Table
from docx.text.paragraph import Paragraph

from batchd import sniff
from batchd.documents import Document, LoadError
from batchd.hookspecs import hookimpl
from batchd.text import is_text

SUFFIXES = {".docx"}
_WORD_KINDS = {"docx", "zip"}


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes) -> Document | None:
    """A text Document for Word documents, by content; None for anything else.

    A ``.docx`` that is not a ZIP package at all, or a damaged one, is corrupt; one that
    is another Office format (an Excel workbook renamed) or text is left to the others.
    """
    kind = sniff.binary_kind(data)
    if kind != "docx":
        if path.suffix.lower() not in SUFFIXES:
            return None
        if not data.strip():
            raise LoadError("the file is empty")
        if kind not in _WORD_KINDS:
            if kind is not None or is_text(data):
                return None
            raise LoadError("corrupt Word document: it is not a ZIP package")
    text, title = docx_to_text(data)
    return Document(kind="text", media_type="text/plain", text=text, title=title)


def docx_to_text(data: bytes) -> tuple[str, str | None]:
    """The body's text and the document's title (core properties, else its Title paragraph)."""
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(_blocks(document))
        title = (document.core_properties.title or "").strip()
    except zipfile.BadZipFile as exc:
        raise LoadError(f"corrupt Word document: not a readable ZIP package ({_reason(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 - lxml and python-docx raise all kinds on damaged XML
        raise LoadError(f"corrupt Word document: {_reason(exc)}") from exc
    if not title:
        title = next((text.lstrip("# ") for text, style in blocks if style == "Title"), "")
    text = _join(blocks)
    if not text.strip():
        raise LoadError("the Word document has no text")
    return text, " ".join(title.split()) or None


def _blocks(document: WordDocument) -> Iterator[tuple[str, str]]:
    """(text, style name) for each paragraph and table of the body, in document order."""
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if text:
                yield _paragraph(item, text), _style(item)
        elif isinstance(item, Table):
            rows = _table_rows(item)
            if rows:
                yield "\n".join(rows), "table"


def _paragraph(paragraph: Paragraph, text: str) -> str:
    style = _style(paragraph)
    if style == "Title":
        return f"# {text}"
    if style.startswith("Heading "):
        level = style.removeprefix("Heading ").strip()
        if level.isdigit():
            return f"{'#' * min(int(level), 6)} {text}"
    ppr = paragraph._p.pPr
    if (ppr is not None and ppr.numPr is not None) or style.startswith("List"):
        return f"- {text}"
    return text


def _style(paragraph: Paragraph) -> str:
    try:
        return paragraph.style.name if paragraph.style is not None else ""
    except (KeyError, ValueError, AttributeError):
        return ""


def _table_rows(table: Table) -> list[str]:
    """Each row as its cells' text joined by `` | ``; a merged cell counts once."""
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _join(blocks: list[tuple[str, str]]) -> str:
    """Blank lines between blocks, none between consecutive list items."""
    text = ""
    for index, (block, _style_name) in enumerate(blocks):
        if index:
            tight = block.startswith("- ") and blocks[index - 1][0].startswith("- ")
            text += "\n" if tight else "\n\n"
        text += block
    return text


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
