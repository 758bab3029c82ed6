"""The last loader: text in files no other loader took, and a plain "unsupported type" for the rest.

Files come with suffixes nobody listed (``.xml``, ``.yaml``, ``.srt``, none at all); if
their content is text it is worth reading. Anything else must still end with a reason
a person understands, naming what the file looks like, so that the outbox says
"an Excel workbook (.xlsx)" rather than "failed".

It must stay the last default loader registered: batchd's defaults are all ``trylast``,
and pluggy calls ``trylast`` implementations in the order they were registered.
"""

from __future__ import annotations

from pathlib import Path

from batchd import sniff
from batchd.documents import Document, LoadError
from batchd.hookspecs import hookimpl
from batchd.text import decode_text


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes) -> Document:
    """A text Document if ``data`` is text; LoadError saying what it is otherwise. Never None."""
    suffix = sniff.suffix_words(path.suffix)
    kind = sniff.binary_kind(data)
    if kind is not None:
        raise LoadError(f"unsupported type: {sniff.describe(kind, path.suffix)} ({suffix})")
    try:
        text = decode_text(data)
    except LoadError as exc:
        if str(exc).startswith("unsupported type"):
            raise LoadError(f"unsupported type: binary data ({suffix})") from exc
        raise
    return Document(kind="text", media_type="text/plain", text=text)
