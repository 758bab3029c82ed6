"""Loader for e-mail messages (``.eml``, RFC 822): headers that matter, the text body, attachments named.

What a reader of a mail needs is who wrote to whom, when, about what, what it says and
what came with it. Transfer encodings, MIME structure and charsets are decoded here so
that Claude reads the words, not quoted-printable; attachments are listed, not read.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
from email.message import EmailMessage, Message
from pathlib import Path

from batchd import sniff
from batchd.documents import Document, LoadError
from batchd.hookspecs import hookimpl
from batchd.htmltext import html_to_text
from batchd.text import decode_text

SUFFIXES = {".eml"}
HEADERS = ("From", "To", "Cc", "Date", "Subject")

_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_MBOX_LINE = re.compile(rb"^From \S")


@hookimpl(trylast=True)
def batchd_load_document(path: Path, data: bytes) -> Document | None:
    """A text Document for ``.eml`` files and for content that is a message with From and Subject.

    A binary file named ``.eml`` (an Outlook ``.msg``, say) is left to the others.
    """
    recognised = looks_like_email(data)
    if not sniff.claims(path, data, SUFFIXES, recognised):
        return None
    if not recognised and not _header_names(data):
        raise LoadError("corrupt e-mail: the file does not start with message headers")
    message = email.message_from_bytes(data, policy=email.policy.default)
    text, subject = email_to_text(message)
    return Document(kind="text", media_type="text/plain", text=text, title=subject)


def looks_like_email(data: bytes) -> bool:
    """Whether ``data`` opens with a block of RFC 822 header lines that has From and Subject."""
    names = _header_names(data)
    return "from" in names and "subject" in names


def email_to_text(message: Message) -> tuple[str, str | None]:
    """The message as text (headers, body, attachment list) and its subject."""
    lines = []
    for name in HEADERS:
        value = _header(message, name)
        if value:
            lines.append(f"{name}: {value}")
    body_part = _body_part(message)
    texts, attachments = _other_parts(message, body_part)
    bodies = [_body_text(part).strip("\n") for part in ([body_part] if body_part is not None else []) + texts]
    body = "\n\n".join(b for b in bodies if b.strip())
    text = "\n".join(lines)
    text += "\n\n" + (body or "(no text body)")
    if attachments:
        text += "\n\nAttachments: " + ", ".join(_describe(part) for part in attachments)
    return text, _header(message, "Subject") or None


def _header_names(data: bytes) -> set[str]:
    """The lower-cased names in the header block at the start of ``data``; empty if it has none."""
    names: set[str] = set()
    lines = data[:65536].splitlines()
    if lines and _MBOX_LINE.match(lines[0]):
        lines = lines[1:]
    for number, line in enumerate(lines):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and number > 0:
            continue
        if not _HEADER_LINE.match(line):
            return set()
        names.add(line.split(b":", 1)[0].strip().decode("ascii").lower())
    return names


def _header(message: Message, name: str) -> str:
    """A header decoded from RFC 2047 words, on one line; a malformed one is shown as best we can."""
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
    except Exception:  # noqa: BLE001 - header parsing of a malformed mail may raise anything
        raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
        try:
            text = str(email.header.make_header(email.header.decode_header(str(raw))))
        except Exception:  # noqa: BLE001
            text = str(raw)
    return " ".join(text.split())


def _body_part(message: Message) -> Message | None:
    """The part a mail client would show: text/plain if there is one, else text/html."""
    if isinstance(message, EmailMessage):
        for preference in (("plain",), ("html",)):
            part = message.get_body(preferencelist=preference)
            if part is not None and _decoded(part).strip():
                return part
        return message.get_body(preferencelist=("plain", "html"))
    return None


def _body_text(part: Message) -> str:
    text = _decoded(part)
    if part.get_content_type() == "text/html":
        return html_to_text(text).body
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decoded(part: Message) -> str:
    """A text part's payload with its transfer encoding undone, in the right charset.

    Valid UTF-8 is UTF-8 whatever the part declares (mailers label UTF-8 as latin-1 or
    us-ascii more often than the reverse, and legacy text is practically never valid
    UTF-8); then the declared charset; then detection.
    """
    payload = part.get_payload(decode=True) or b""
    for charset in ("utf-8", part.get_content_charset()):
        if charset:
            try:
                return payload.decode(charset)
            except (LookupError, UnicodeDecodeError):
                pass
    try:
        return decode_text(payload)
    except LoadError:
        return payload.decode("utf-8", errors="replace")


def _other_parts(message: Message, body_part: Message | None) -> tuple[list[Message], list[Message]]:
    """The parts besides the body: more inline text to show after it, and attachments to list.

    Alternatives of the body (the HTML twin of a text/plain body) are neither; a
    forwarded message is listed as one attachment, not opened.
    """
    texts: list[Message] = []
    attachments: list[Message] = []

    def visit(part: Message, in_alternative: bool) -> None:
        if part is body_part:
            return
        if part.get_content_type() == "message/rfc822" and part is not message:
            attachments.append(part)
            return
        if part.is_multipart():
            alternative = in_alternative or part.get_content_type() == "multipart/alternative"
            for child in part.get_payload():
                visit(child, alternative)
            return
        named = part.get_content_disposition() == "attachment" or bool(part.get_filename())
        if part.get_content_maintype() != "text" or named:
            attachments.append(part)
        elif not in_alternative and part.get_content_type() in ("text/plain", "text/html"):
            texts.append(part)

    visit(message, False)
    return texts, attachments


def _describe(part: Message) -> str:
    content_type = part.get_content_type()
    if content_type == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        size = len(inner.as_bytes()) if isinstance(inner, Message) else 0
        name = part.get_filename() or (f"message \"{_header(inner, 'Subject')}\"" if isinstance(inner, Message)
                                       else "message")
    else:
        size = len(part.get_payload(decode=True) or b"")
        name = part.get_filename() or "unnamed"
    name = " ".join(name.split())
    return f"{name} ({content_type}, {_size(size)})"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{round(count / 1024)} KB"
    return f"{count / (1024 * 1024):.1f} MB"
