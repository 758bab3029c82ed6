"""Reading a create-batch body one request at a time.

A body may hold 100,000 requests and weigh 256 MB. Decoding it whole with ``json.loads``
would build a tree of Python objects several times its size; instead each element of
``requests`` is decoded, checked and handed on before the next is read, so memory stays
near the size of the body itself. Everything the API checks at create time (the
envelope and each ``custom_id``) is checked here; ``params`` are checked later, per
request, when the batch is processed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from batchd.emulator.errors import invalid

MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def check_custom_id(index: int, custom_id: Any) -> str:
    """The ``custom_id`` of ``requests[index]``, or the 400 the API gives for it."""
    where = f"requests.{index}.custom_id"
    if not isinstance(custom_id, str):
        raise invalid(f"{where}: Input should be a valid string")
    if not custom_id:
        raise invalid(f"{where}: String should have at least 1 character")
    if len(custom_id) > 64:
        raise invalid(f"{where}: String should have at most 64 characters")
    if not CUSTOM_ID.match(custom_id):
        raise invalid(f"{where}: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
    return custom_id


def _check_request(index: int, item: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, dict):
        raise invalid(f"requests.{index}: Input should be a valid dictionary or object to extract fields from")
    for key in item:
        if key not in ("custom_id", "params"):
            raise invalid(f"requests.{index}.{key}: Extra inputs are not permitted")
    if "custom_id" not in item:
        raise invalid(f"requests.{index}.custom_id: Field required")
    custom_id = check_custom_id(index, item["custom_id"])
    if "params" not in item:
        raise invalid(f"requests.{index}.params: Field required")
    if not isinstance(item["params"], dict):
        raise invalid(f"requests.{index}.params: Input should be a valid dictionary")
    return custom_id, item["params"]


class _Scanner:
    """A cursor over the body text for the few JSON tokens read by hand."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]
        return self.text[self.pos:self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise json.JSONDecodeError(f"Expecting {char!r}", self.text, self.pos)
        self.pos += 1

    def accept(self, char: str) -> bool:
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def key(self) -> str:
        if self.peek() != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", self.text, self.pos)
        key, self.pos = json.decoder.scanstring(self.text, self.pos + 1)
        self.expect(":")
        return key

    def value(self) -> Any:
        self.peek()
        value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        return value

    def end(self) -> None:
        if self.peek():
            raise json.JSONDecodeError("Extra data", self.text, self.pos)


def iter_requests(text: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(index, custom_id, params)`` for each request of a create body, checked as the
    API checks at create time: ApiError 400 at the first fault, duplicates included."""
    try:
        yield from _walk(_Scanner(text))
    except json.JSONDecodeError as exc:
        raise invalid(f"There was an error parsing the body of your request: {exc.msg} "
                      f"(line {exc.lineno}, column {exc.colno})") from None


def _walk(scan: _Scanner) -> Iterator[tuple[int, str, dict[str, Any]]]:
    seen: dict[str, int] = {}
    found = False
    scan.expect("{")
    if not scan.accept("}"):
        while True:
            key = scan.key()
            if key != "requests" or found:
                scan.value()
                raise invalid(f"{key}: Extra inputs are not permitted")
            found = True
            if scan.peek() != "[":
                scan.value()
                raise invalid("requests: Input should be a valid list")
            yield from _walk_requests(scan, seen)
            if not scan.accept(","):
                scan.expect("}")
                break
    scan.end()
    if not found:
        raise invalid("requests: Field required")
    if not seen:
        raise invalid("requests: List should have at least 1 item after validation, not 0")


def _walk_requests(scan: _Scanner, seen: dict[str, int]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    scan.expect("[")
    if scan.accept("]"):
        return
    index = 0
    while True:
        item = scan.value()
        if index >= MAX_REQUESTS:
            raise invalid(f"requests: List should have at most {MAX_REQUESTS} items after validation")
        custom_id, params = _check_request(index, item)
        if custom_id in seen:
            raise invalid(f"requests.{index}.custom_id: duplicate custom_id {custom_id!r} (also requests."
                          f"{seen[custom_id]}.custom_id); this emulator requires custom_ids to be unique "
                          f"within a batch")
        seen[custom_id] = index
        yield index, custom_id, params
        index += 1
        if not scan.accept(","):
            scan.expect("]")
            return
