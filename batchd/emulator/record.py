"""What the emulator was sent and what it billed: the evidence for "nothing paid twice".

Shape (the same in-process and over ``GET /_emulator/record``)::

    {"created": [{"batch_id": "msgbatch_…", "request_count": 2,
                  "custom_ids": ["a", "b"], "created_at": "2026-…Z"}, …],
     "billed":  [{"batch_id": "msgbatch_…" | null, "custom_id": "a" | null,
                  "reuse_key": "<sha256 of the canonical params>", "model": "claude-…",
                  "usage": {…Usage…}, "billed_at": "2026-…Z"}, …]}

``created`` has one entry per batch create the emulator accepted, also when the client
never saw the answer (a lost response). ``billed`` has one entry per ``succeeded`` batch
result, written once when its batch ends (downloading results again bills nothing), and
one per ``POST /v1/messages`` answer (``batch_id`` and ``custom_id`` null). Both lists
are in the order the events happened and survive restarts when a state path is used.
"""

from __future__ import annotations

from typing import Any

from batchd.emulator.store import Store


class Record:
    """Read-only view of the record; reading first ends any batch whose time has come."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def created(self) -> list[dict[str, Any]]:
        """Every accepted batch create, oldest first."""
        return self._store.created_log()

    def billed(self) -> list[dict[str, Any]]:
        """Every billed answer, oldest first."""
        return self._store.billed_log()

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """``{"created": [...], "billed": [...]}``, the shape served over HTTP."""
        billed = self.billed()
        return {"created": self.created(), "billed": billed}
