"""Built-in task ``extract_contacts``: people and organisations to reach, in ``contacts.json``."""

from __future__ import annotations

from typing import Any

from batchd.documents import Document
from batchd.hookspecs import hookimpl
from batchd.tasks import Task, ask, dump_json, forced_tool, system_blocks, tool_input

TOOL = "save_contacts"
FIELDS = ("name", "email", "phone", "company", "role")

SYSTEM = """You extract contact details from documents into an address book.

Record every person or organisation in the document that someone could contact, with \
the save_contacts tool. For each contact give:
- name: the person's full name as written (or the organisation's name when no person is named),
- email, phone: exactly as written in the document (keep the phone's country code and formatting),
- company: the organisation the person belongs to,
- role: their job title or role in the document (for example "sender", "CFO", "tenant").

Use null for anything the document does not state; never guess an e-mail address or \
phone number. Merge repeated mentions of the same person into one contact. If the \
document has no contacts, save an empty list."""

SCHEMA = {
    "type": "object",
    "properties": {
        "contacts": {
            "type": "array",
            "description": "Every contact found in the document.",
            "items": {
                "type": "object",
                "properties": {f: {"type": ["string", "null"]} for f in FIELDS},
                "required": list(FIELDS),
            },
        },
    },
    "required": ["contacts"],
}


class ExtractContacts(Task):
    name = "extract_contacts"
    output = "contacts.json"

    def build(self, document: Document, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "system": system_blocks(SYSTEM, model=settings["model"]),
            "messages": ask(document, "Extract the contacts from this document."),
            **forced_tool(TOOL, "Save the contacts found in the document.", SCHEMA),
        }

    def parse(self, message: dict[str, Any], settings: dict[str, Any]) -> str:
        contacts = tool_input(message, TOOL).get("contacts")
        if not isinstance(contacts, list):
            raise ValueError("contacts is not a list")
        clean = []
        for item in contacts:
            if not isinstance(item, dict):
                raise ValueError(f"a contact is {type(item).__name__}, not an object")
            clean.append({f: _text_or_none(item.get(f)) for f in FIELDS})
        return dump_json({"contacts": clean})


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@hookimpl
def batchd_register_tasks(register):
    register(ExtractContacts())
