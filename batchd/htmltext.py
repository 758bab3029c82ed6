"""The readable text of an HTML page, as a person would read it in a browser.

Claude reads a page best as plain text with its structure kept: headings, paragraphs and
list items on their own lines, table rows as lines of cells. What a browser shows around
the content (navigation, page header and footer, scripts, hidden parts) would only cost
tokens and blur summaries, so it is left out.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, CData, NavigableString, PageElement, Tag

from batchd.documents import LoadError
from batchd.text import decode_text, looks_like_text

#: Never shown, or not content: dropped with everything inside. <head> itself is walked:
#: html.parser does not close it, so a page that never does keeps its body inside.
_DROP = {"script", "style", "nav", "noscript", "template", "title", "svg", "math", "iframe",
         "object", "embed", "canvas", "audio", "video", "map", "button", "select", "datalist",
         "textarea", "input", "dialog", "aside"}
#: Dropped when they frame the page, kept when they head or close an article.
_PAGE_FRAME = {"header", "footer"}
_LANDMARKS_DROPPED = {"navigation", "banner", "contentinfo", "complementary", "search"}
_BLOCKS = {"address", "article", "blockquote", "body", "center", "details", "div", "fieldset", "figcaption",
           "figure", "footer", "form", "header", "hgroup", "hr", "html", "legend", "main", "p", "section",
           "summary", "caption", "option", "optgroup", "noframes", "frameset", "search", "tr", "td", "th",
           "thead", "tbody", "tfoot"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_LISTS = {"ul", "ol", "menu", "dir"}
_LAYOUT_INSIDE_CELL = {"table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "blockquote"}
#: Inside a heading or a table cell these still separate words.
_SPACED = _BLOCKS | {"li", "dt", "dd", "p"}
#: Stands for a <br> until lines are made; a real U+2028 in the page breaks the line too.
_BR = "\u2028"
_SPACE = re.compile(r"\s+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)

_SNIFF = re.compile(rb"\A(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
                    re.I | re.S)
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
#: WHATWG's reading of charset labels where it differs from Python's codec of that name.
_LABELS = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "l1": "cp1252",
           "ascii": "cp1252", "us-ascii": "cp1252", "windows-1252": "cp1252", "iso-8859-9": "cp1254",
           "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874", "shift_jis": "cp932",
           "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
           "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-kr": "cp949",
           "ks_c_5601-1987": "cp949", "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8"}


@dataclass(frozen=True)
class PageText:
    """A page's title (its <title>, else its first <h1>; None when it has neither) and its readable text."""

    title: str | None
    body: str

    def as_document_text(self) -> str:
        """The text as batchd hands it to Claude: ``# Title``, a blank line, then the body.

        A page whose first heading repeats its title (the usual case) keeps it once.
        """
        if not self.title:
            return self.body
        first, _, rest = self.body.partition("\n")
        if first.startswith("#") and first.lstrip("#").strip().casefold() == self.title.casefold():
            return f"# {self.title}\n{rest}".rstrip()
        return f"# {self.title}\n\n{self.body}".rstrip()


def looks_like_html(data: bytes) -> bool:
    """Whether ``data`` starts the way HTML pages do (a doctype, or an html/head/body tag).

    Pages served as ``.php``, saved without a suffix, or attached to e-mails need no
    name to be read as HTML; a text that merely contains tags further down stays text.
    """
    head = data[:2048]
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            head = head[2:].decode(encoding, errors="ignore").encode("utf-8")
    return bool(_SNIFF.match(head.removeprefix(codecs.BOM_UTF8)))


def decode_html(data: bytes) -> str:
    """The page's characters: a BOM wins, then valid UTF-8, then ``<meta charset>``, then detection.

    Bytes that are valid UTF-8 are UTF-8 whatever the page declares: pages re-saved by
    editors keep their old ``windows-1252`` declaration, and non-ASCII text in a legacy
    charset is practically never valid UTF-8. A declaration the bytes do not fit is ignored.
    """
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode_text(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        declared = _META_CHARSET.search(data[:4096])
        encoding = _codec(declared.group(1).decode("ascii")) if declared else None
        if encoding:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                text = None
            if text is not None and text.strip() and looks_like_text(text):
                return text.replace("\r\n", "\n").replace("\r", "\n")
    return decode_text(data)


def html_to_text(html: str) -> PageText:
    """The title and the readable text of ``html`` (see the module's docstring for what is kept)."""
    soup = BeautifulSoup(html, "html.parser")
    renderer = _Renderer()
    renderer.render(soup)
    body = ""
    for index, (text, tight) in enumerate(renderer.blocks):
        body += text if index == 0 else ("\n" if tight else "\n\n") + text
    return PageText(_title(soup), body)


def load_html(data: bytes) -> PageText:
    """Decode and render a page; LoadError when nothing readable is left."""
    page = html_to_text(decode_html(data))
    if not page.body.strip() and not page.title:
        raise LoadError("the HTML page has no readable text")
    return page


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    name = _LABELS.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _title(soup: BeautifulSoup) -> str | None:
    tag = soup.find("title")
    title = _collapse(tag.get_text()) if tag else ""
    if not title:
        h1 = soup.find("h1")
        title = _text(h1) if h1 else ""
    return title or None


def _unreadable(tag: Tag) -> bool:
    """Whether a browser would not show ``tag`` as content: scripts, navigation, hidden parts."""
    name = tag.name
    if name in _DROP:
        return True
    if name in _PAGE_FRAME and tag.find_parent(["article", "main"]) is None:
        return True
    attrs = tag.attrs
    if not attrs:
        return False
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    if str(attrs.get("role", "")).lower() in _LANDMARKS_DROPPED:
        return True
    return bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))


def _text(tag: Tag, *, preformatted: bool = False) -> str:
    """The readable text inside ``tag``: on one line, or as is for ``<pre>``.

    On one line, a block or a line break inside becomes a space. The walk keeps its own
    stack: pages from broken editors nest thousands of unclosed tags deep.
    """
    parts: list[str] = []
    stack = [iter(tag.children)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, Tag):
            if _unreadable(node):
                continue
            if node.name == "br":
                parts.append("\n" if preformatted else " ")
            elif not preformatted and node.name in _SPACED:
                parts.append(" ")
            stack.append(iter(node.children))
        elif type(node) in (NavigableString, CData):
            parts.append(str(node))
    text = "".join(parts)
    return text if preformatted else _collapse(text.replace(_BR, " "))


def _own(tag: Tag, names: set[str], nested: str) -> list[Tag]:
    """The tags named ``names`` inside ``tag`` that belong to it, not to a nested ``nested`` (a table in a table)."""
    found: list[Tag] = []
    stack = [iter(tag.children)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, Tag) and not _unreadable(node):
            if node.name in names:
                found.append(node)
            if node.name != nested:
                stack.append(iter(node.children))
    return found


def _is_layout_table(table: Tag, rows: list[Tag]) -> bool:
    """A table that lays out a page rather than holding data: its cells hold headings, lists, tables."""
    for row in rows:
        for cell in _cells(row):
            paragraphs = 0
            for node in cell.descendants:
                if isinstance(node, Tag):
                    if node.name in _LAYOUT_INSIDE_CELL:
                        return True
                    paragraphs += node.name == "p"
            if paragraphs > 1:
                return True
    return False


def _cells(row: Tag) -> list[Tag]:
    return [cell for cell in row.children if isinstance(cell, Tag) and cell.name in ("td", "th")]


#: Returned by :meth:`_Renderer.enter` for a tag whose content it has dealt with already.
_DONE = object()


class _Renderer:
    """Walks the tree once, turning blocks into lines; ``tight`` lines follow without a blank line."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, bool]] = []
        self.inline: list[str] = []
        self.marker = ""
        self.indent = ""
        self.tight = False
        self.loose_next = False
        self.lists: list[list[int]] = []

    def render(self, root: Tag) -> None:
        """Walk ``root`` with an explicit stack (see :func:`_text`), calling each tag's exit action."""
        stack: list[tuple[Iterator[PageElement], Callable[[], None] | None]] = [(iter(root.children), None)]
        while stack:
            children, on_exit = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if on_exit is not None:
                    on_exit()
            elif isinstance(child, Tag):
                action = self.enter(child)
                if action is not _DONE:
                    stack.append((iter(child.children), action))
            elif type(child) in (NavigableString, CData):
                self.inline.append(str(child))
        self.flush()

    def add(self, text: str, tight: bool) -> None:
        self.blocks.append((text, tight and not self.loose_next and bool(self.blocks)))
        self.loose_next = False

    def flush(self) -> None:
        raw, self.inline = "".join(self.inline), []
        lines = [line for line in (_collapse(part) for part in raw.split(_BR)) if line]
        for number, line in enumerate(lines):
            if self.marker:
                line, self.marker = self.marker + line, ""
            else:
                line = self.indent + line
            self.add(line, self.tight or number > 0)

    def enter(self, tag: Tag) -> Any:
        """Start ``tag``: returns _DONE when its content is handled, else what to do at its end (or None)."""
        name = tag.name
        if _unreadable(tag):
            return _DONE
        if name == "br":
            self.inline.append(_BR)
            return _DONE
        if name in _HEADINGS:
            self.heading(tag)
            return _DONE
        if name in _LISTS:
            return self.start_list(tag)
        if name == "li":
            return self.start_item(tag)
        if name == "dl":
            self.definitions(tag)
            return _DONE
        if name == "table":
            return self.table(tag)
        if name == "pre":
            self.pre(tag)
            return _DONE
        if name in _BLOCKS:
            self.flush()
            return self.flush
        return None

    def heading(self, tag: Tag) -> None:
        self.flush()
        text = _text(tag)
        if text:
            prefix, self.marker = self.marker or self.indent, ""
            self.add(f"{prefix}{'#' * _HEADINGS[tag.name]} {text}", False)

    def start_list(self, tag: Tag) -> Callable[[], None]:
        self.flush()
        if not self.lists:
            self.loose_next = True
        try:
            start = int(str(tag.get("start", "1")))
        except ValueError:
            start = 1
        self.lists.append([start if tag.name == "ol" else 0])

        def end() -> None:
            self.flush()
            self.lists.pop()
            if not self.lists:
                self.loose_next = True

        return end

    def start_item(self, tag: Tag) -> Callable[[], None]:
        self.flush()
        marker = "- "
        if self.lists and tag.parent is not None and tag.parent.name in _LISTS and self.lists[-1][0]:
            marker = f"{self.lists[-1][0]}. "
            self.lists[-1][0] += 1
        saved = (self.indent, self.tight)
        outer = "  " * max(len(self.lists) - 1, 0)
        self.marker, self.indent, self.tight = outer + marker, outer + " " * len(marker), True

        def end() -> None:
            self.flush()
            self.marker = ""
            self.indent, self.tight = saved

        return end

    def definitions(self, tag: Tag) -> None:
        self.flush()
        self.loose_next = True
        for child in _own(tag, {"dt", "dd"}, nested="dl"):
            text = _text(child)
            if text:
                self.add(self.indent + ("  " if child.name == "dd" else "") + text, True)
        self.loose_next = True

    def table(self, tag: Tag) -> Any:
        own = _own(tag, {"tr", "caption"}, nested="table")
        rows = [node for node in own if node.name == "tr"]
        self.flush()
        if _is_layout_table(tag, rows):
            return self.flush
        self.loose_next = True
        caption = next((_text(node) for node in own if node.name == "caption"), "")
        if caption:
            self.add(self.indent + caption, False)
        for row in rows:
            texts = [_text(cell) for cell in _cells(row)]
            if any(texts):
                self.add(self.indent + " | ".join(texts), True)
        self.loose_next = True
        return _DONE

    def pre(self, tag: Tag) -> None:
        self.flush()
        text = _text(tag, preformatted=True).strip("\n")
        if text.strip():
            self.add("\n".join(self.indent + line.rstrip() for line in text.split("\n")), False)
