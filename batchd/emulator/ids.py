"""Identifiers and timestamps in the shapes the real API uses.

Object ids derive from the seed and a counter or a name, so a run is repeatable; request
ids are random, since they only need to be unique.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


_TABLE = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))


def _encode(digest: bytes, length: int = 22) -> str:
    return digest[:length].translate(_TABLE).decode("ascii")


def derived(prefix: str, *parts: object) -> str:
    """``prefix_01…``: a stable id for the given parts (e.g. seed, batch, custom_id)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return f"{prefix}_01{_encode(digest)}"


def request_id() -> str:
    """A fresh ``req_…`` id for a response's ``request-id`` header."""
    return f"req_01{_encode(os.urandom(22))}"


def rfc3339(epoch: float) -> str:
    """``2024-09-24T18:37:24.100435Z`` for a POSIX time."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
