"""A document as the tasks see it, and the errors that keep a file from becoming one."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace


class LoadError(Exception):
    """A file that cannot become a Document; the message is shown to the user as is."""


@dataclass(frozen=True)
class Document:
    """What a loader made of one file: text, or the raw bytes of a PDF or an image.

    Tasks build their requests from this, never from the file's name or path, so that
    identical content costs once.
    """

    kind: str  # "text" | "pdf" | "image"
    media_type: str
    text: str | None = None
    data: bytes | None = None
    title: str | None = None
    truncated: bool = False
    #: Filled in by batchd after the loader returns.
    source: str = ""
    sha256: str = ""
    bytes: int = 0

    def content(self) -> list[dict]:
        """The Messages API content blocks that carry this document."""
        if self.kind == "text":
            return [{"type": "text", "text": f"<document>\n{self.text}\n</document>"}]
        encoded = base64.b64encode(self.data or b"").decode("ascii")
        block_type = "document" if self.kind == "pdf" else "image"
        return [{"type": block_type, "source": {"type": "base64", "media_type": self.media_type, "data": encoded}}]

    def cut_to(self, max_chars: int) -> "Document":
        """This document with its text cut to ``max_chars`` characters, marked truncated."""
        if self.text is None or len(self.text) <= max_chars:
            return self
        return replace(self, text=self.text[:max_chars], truncated=True)
