"""Identities shared by batchd and its emulator: the reuse key of a request's params."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(params: dict[str, Any]) -> bytes:
    """Params as compact JSON with sorted keys: equal params give equal bytes."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def reuse_key(params: dict[str, Any]) -> str:
    """sha256 of the canonical params: requests with the same key get the same answer."""
    return hashlib.sha256(canonical(params)).hexdigest()
