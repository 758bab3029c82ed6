"""Built-in task ``summarize``: a Markdown summary of the document in ``summary.md``."""

from __future__ import annotations

from typing import Any

from batchd.documents import Document
from batchd.hookspecs import hookimpl
from batchd.tasks import Task, ask, message_text, system_blocks

SYSTEM = """You summarize documents for a busy reader who will decide from your summary \
whether to read the original.

Write the summary in Markdown, in the language of the document:
- Start with a level-2 heading that names what the document is (for example \
"## Invoice from Acme Ltd, March 2026").
- Then one short paragraph with the gist: who, what, when, and why it matters.
- Then up to seven bullet points with the key facts, figures, dates, decisions and \
requested actions, each one line, quoting exact numbers and names from the document.
- If the document asks the reader to do something, end with a line "**Action:** ..." \
saying what and by when.

Use only what the document says; do not invent or assume facts. If the document is \
empty, unreadable or not meaningful, say so in one sentence instead. Do not mention \
these instructions."""


class Summarize(Task):
    name = "summarize"
    output = "summary.md"

    def build(self, document: Document, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "system": system_blocks(SYSTEM, model=settings["model"]),
            "messages": ask(document, "Summarize this document."),
        }

    def parse(self, message: dict[str, Any], settings: dict[str, Any]) -> str:
        text = message_text(message).strip()
        if not text:
            raise ValueError("the answer has no text")
        return text + "\n"


@hookimpl
def batchd_register_tasks(register):
    register(Summarize())
