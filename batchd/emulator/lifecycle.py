"""A batch's life as a function of time, so that it needs no thread to drive it.

Everything about a batch follows from the moments it was created and (maybe) canceled,
and from the fault settings it was created with: when it ends, which of its requests
were processed before a cancel or before expiry, which fail on purpose. The store only
asks "what is true at this instant?" whenever someone looks, so a batch left behind by
a stopped emulator ends on time when the next one opens the state file.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

#: Results stay downloadable this long after ``created_at`` (the real API: 29 days).
RESULTS_RETENTION = 29 * 86400.0


@dataclass(frozen=True)
class Timeline:
    """The moments that decide a batch's state."""

    created_at: float
    processing_time: float
    expires_at: float
    cancel_initiated_at: float | None = None
    cancel_delay: float = 0.0

    @property
    def end_at(self) -> float:
        """When processing ends: all done, the cancel completed, or expiry, whichever first."""
        end = self.created_at + self.processing_time
        if self.cancel_initiated_at is not None:
            end = min(end, self.cancel_initiated_at + self.cancel_delay)
        return min(end, self.expires_at)

    @property
    def cutoff(self) -> float:
        """Requests finishing after this instant are not processed: canceled or expired."""
        return min(math.inf if self.cancel_initiated_at is None else self.cancel_initiated_at, self.expires_at)

    def status(self, now: float) -> str:
        if now >= self.end_at:
            return "ended"
        return "in_progress" if self.cancel_initiated_at is None else "canceling"

    def archived(self, now: float) -> bool:
        return now >= self.created_at + RESULTS_RETENTION

    def finish_time(self, fraction: float) -> float:
        """When a request drawn at ``fraction`` of the processing time is done."""
        return self.created_at + fraction * self.processing_time


@dataclass(frozen=True)
class Dice:
    """The seeded random draws of one request, stable across restarts."""

    finish: float
    fate: float
    kind: float
    order: int


LAST = 2**63 - 1


def dice(seed: int, batch_id: str, index: int) -> Dice:
    """The draws for request ``index`` of ``batch_id``: a hash, so any request can be
    looked at alone and in any order. The first request always sorts last, so results of
    two or more requests never come back in request order."""
    digest = hashlib.blake2b(f"{seed}\x1f{batch_id}\x1f{index}".encode(), digest_size=20).digest()
    unit = [int.from_bytes(digest[i:i + 4], "big") / 2**32 for i in (0, 4, 8)]
    order = LAST if index == 0 else min(int.from_bytes(digest[12:20], "big") >> 1, LAST - 1)
    return Dice(unit[0], unit[1], unit[2], order)


def fate(timeline: Timeline, draws: Dice, error_rate: float, expire_rate: float) -> str:
    """``processed``, ``failed`` (an injected api/overloaded error), ``expired`` or ``canceled``."""
    if timeline.finish_time(draws.finish) > timeline.cutoff:
        canceled = timeline.cancel_initiated_at is not None and timeline.cancel_initiated_at < timeline.expires_at
        return "canceled" if canceled else "expired"
    if draws.fate < error_rate:
        return "failed"
    if draws.fate < error_rate + expire_rate:
        return "expired"
    return "processed"
