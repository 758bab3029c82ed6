"""Loader for web pages: the readable text of the page, not its markup.

Markup, scripts and navigation are most of a saved page's bytes and none of its meaning;
sending them would cost tokens and blur the answer, so the page becomes text here (see
:mod:`batchd.htmltext`).
"""

from __future__ import annotations

from pathlib import Path

from batchd import sniff
from batchd.documents import Document
from batchd.hookspecs import hookimpl
from batchd.htmltext import load_html, looks_like_html

SUFFIXES = {".html", ".htm", ".xhtml", ".shtml"}


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes) -> Document | None:
    """A text Document for ``.html`` files and for content that starts like a page; None otherwise.

    A binary file named ``.html`` (a PDF, an image) is left to its own loader.
    """
    if not sniff.claims(path, data, SUFFIXES, looks_like_html(data)):
        return None
    page = load_html(data)
    return Document(kind="text", media_type="text/plain", text=page.as_document_text(), title=page.title)
