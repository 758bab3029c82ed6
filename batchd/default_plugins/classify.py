"""Built-in task ``classify``: one category out of the configured ones, in ``classification.json``.

The answer is structured through a forced tool whose schema holds the categories as an
enum, so the model cannot answer outside them.
"""

from __future__ import annotations

from typing import Any

from batchd.documents import Document
from batchd.hookspecs import hookimpl
from batchd.tasks import Task, ask, dump_json, forced_tool, system_blocks, tool_input

TOOL = "save_classification"

SYSTEM = """You file incoming documents into exactly one category.

Read the whole document, decide which single category fits its main purpose best, \
and record your decision with the save_classification tool:
- category: one of the allowed categories. When several fit, choose the one that \
describes the document's main purpose, not a side topic. Use "general" (if it is \
allowed) only when no other category fits.
- confidence: how sure you are, from 0 (a guess) to 1 (certain). Use values below \
0.5 when the document is ambiguous or very short.
- reasoning: one or two sentences naming the evidence in the document that decided it.

Base the decision on the document's content only."""


class Classify(Task):
    name = "classify"
    output = "classification.json"
    defaults = {"categories": ["technology", "finance", "healthcare", "legal", "general"]}

    def build(self, document: Document, settings: dict[str, Any]) -> dict[str, Any]:
        categories = settings["categories"]
        if not categories:
            raise ValueError("tasks.classify.categories is empty")
        schema = {
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": list(categories),
                             "description": "The one category that fits the document best."},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                               "description": "How sure the classification is, 0 to 1."},
                "reasoning": {"type": "string",
                              "description": "One or two sentences on the evidence that decided it."},
            },
            "required": ["category", "confidence", "reasoning"],
        }
        return {
            "system": system_blocks(SYSTEM + "\n\nAllowed categories: " + ", ".join(categories) + ".", model=settings["model"]),
            "messages": ask(document, "Classify this document."),
            **forced_tool(TOOL, "Record the category of the document.", schema),
        }

    def parse(self, message: dict[str, Any], settings: dict[str, Any]) -> str:
        answer = tool_input(message, TOOL)
        category = answer.get("category")
        if category not in settings["categories"]:
            raise ValueError(f"category {category!r} is not one of the configured categories")
        confidence = answer.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise ValueError(f"confidence {confidence!r} is not a number")
        return dump_json({
            "category": category,
            "confidence": min(1.0, max(0.0, float(confidence))),
            "reasoning": str(answer.get("reasoning") or ""),
        })


@hookimpl
def batchd_register_tasks(register):
    register(Classify())
