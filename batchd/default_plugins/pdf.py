"""Loader for PDF files: sent to Claude as they are, as a native ``document`` block.

The API reads the PDF itself (text and page images), so batchd only makes sure that it
will be accepted: a PDF that is damaged, locked with a password, too long or too large
fails here with a reason, instead of costing a request that the API rejects.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader, PdfWriter
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from batchd import sniff
from batchd.documents import Document, LoadError
from batchd.hookspecs import hookimpl
from batchd.text import is_text

#: Pages per request: 100 for models with a context window under 1M tokens, else 600.
MAX_PAGES = 100
MAX_PAGES_LONG_CONTEXT = 600
LONG_CONTEXT_TOKENS = 1_000_000
#: A request may be 32 MB; base64 makes the PDF a third larger, and the prompt needs room.
MAX_PDF_BYTES = 23_500_000
#: How far from the end (padding aside) ``%%EOF`` may be; readers look in the last KiB.
_EOF_WINDOW = 2048

# pypdf reads damaged files leniently and logs every repair it makes; the reason a PDF
# fails is in the LoadError, so its warnings would only flood the daemon's log.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes, config: Any) -> Document | None:
    """A ``pdf`` Document for bytes that are a PDF, whatever the name; None for other files.

    A file named ``.pdf`` that holds something else we know (an image, a Word file, a
    web page, plain text) is left to that type's loader; one that holds nothing
    recognisable is a corrupt PDF.
    """
    if sniff.find_pdf_header(data) < 0:
        if path.suffix.lower() != ".pdf":
            return None
        if not data.strip():
            raise LoadError("the file is empty")
        if sniff.binary_kind(data) is not None or is_text(data):
            return None
        raise LoadError("corrupt PDF: the file does not start with a PDF header")
    return check_pdf(data, page_limit=page_limit(config))


def page_limit(config: Any) -> int:
    """The page limit for the configured model: 600 when it reads 1M tokens or more.

    batchd does not know each model's context window; ``anthropic.max_input_tokens``
    is what the user says the model takes, so it stands in for it.
    """
    try:
        tokens = config["anthropic.max_input_tokens"] if config is not None else 0
    except (KeyError, TypeError, ValueError):
        tokens = 0
    return MAX_PAGES_LONG_CONTEXT if isinstance(tokens, int) and tokens >= LONG_CONTEXT_TOKENS else MAX_PAGES


def check_pdf(data: bytes, *, page_limit: int = MAX_PAGES) -> Document:
    """The PDF as a Document once pypdf could read its page tree; LoadError with the reason otherwise.

    A PDF locked only against editing or printing (an owner password, no user password)
    opens for anyone: it is decrypted and sent as an unencrypted copy, because the API
    does not take encrypted PDFs.
    """
    if len(data) > MAX_PDF_BYTES:
        raise LoadError(f"PDF too large: {len(data) / 1_000_000:.1f} MB; the API takes PDFs up to about "
                        f"{MAX_PDF_BYTES / 1_000_000:.1f} MB (a 32 MB request once encoded)")
    if b"%%EOF" not in data.rstrip(b"\x00 \t\r\n\x0c")[-_EOF_WINDOW:]:
        raise LoadError("corrupt PDF: the file is truncated (it has no end-of-file marker)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            data = _decrypted(reader)
            reader = PdfReader(io.BytesIO(data), strict=False)
        pages = len(reader.pages)
        title = _title(reader)
    except LoadError:
        raise
    except FileNotDecryptedError as exc:
        raise LoadError("encrypted PDF: it needs a password to open") from exc
    except (PyPdfError, ValueError, TypeError, KeyError, IndexError, AttributeError, AssertionError,
            RecursionError, OSError, EOFError) as exc:
        raise LoadError(f"corrupt PDF: {_reason(exc)}") from exc
    if pages == 0:
        raise LoadError("corrupt PDF: it has no pages")
    if pages > page_limit:
        raise LoadError(f"PDF too long: {pages} pages; the API takes at most {page_limit} pages per request")
    return Document(kind="pdf", media_type="application/pdf", data=data, title=title)


def _decrypted(reader: PdfReader) -> bytes:
    try:
        opened = reader.decrypt("")
    except DependencyError as exc:
        raise LoadError(f"encrypted PDF: batchd cannot decrypt it ({exc})") from exc
    if opened == PasswordType.NOT_DECRYPTED:
        raise LoadError("encrypted PDF: it needs a password to open")
    writer = PdfWriter(clone_from=reader)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _title(reader: PdfReader) -> str | None:
    """The title in the PDF's metadata, if it has a usable one; broken metadata is no reason to fail."""
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # noqa: BLE001 - metadata of a damaged file may fail in any way
        return None
    if not isinstance(title, str):
        return None
    title = " ".join(title.replace("\x00", "").split())
    return title or None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
