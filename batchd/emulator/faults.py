"""What can go wrong, on demand: the knobs, and the seeded dice that decide each time.

A :class:`Faults` is read afresh on every request, so a test may change a field between
phases (``emu.faults.http_fault_rate = 1.0``). Fields that shape a batch's life
(``processing_time``, ``error_rate``, ``expire_rate``, ``expire_after``) are copied into
the batch when it is created: a batch keeps the fate it was born with, also across a
restart of the emulator.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields

HTTP_FAULT_STATUSES = (429, 529, 500)
LOST_RESPONSE_MODES = ("error", "drop", "stall")


@dataclass
class Faults:
    """Fault injection settings; every default means "no fault"."""

    #: Seconds from create to ``ended`` (each request finishes somewhere inside it).
    processing_time: float = 0.5
    #: Fraction of processed requests that come back ``errored`` (api_error / overloaded_error).
    error_rate: float = 0.0
    #: Fraction of requests reported ``expired`` when the batch ends (a shortcut: real expiry
    #: waits for ``expires_at``; set ``processing_time`` above ``expire_after`` for that).
    expire_rate: float = 0.0
    #: Fraction of ``/v1`` calls answered 429 / 529 / 500 before any work is done.
    http_fault_rate: float = 0.0
    #: Statuses an HTTP fault is drawn from.
    http_fault_statuses: tuple[int, ...] = HTTP_FAULT_STATUSES
    #: Once an HTTP fault fires, this many calls in a row fail (a burst).
    http_fault_burst: int = 1
    #: The next N API calls get an HTTP fault whatever the rate (counts down as they do).
    fail_next: int = 0
    #: ``retry-after`` of injected 429 / 529 / 500 answers (seconds; also sent as ``retry-after-ms``).
    retry_after: float = 1.0
    #: Fraction of creates and messages calls whose work is done but whose answer is lost.
    lost_response_rate: float = 0.0
    #: How an answer is lost: "error" (a 500), "drop" (socket closed), "stall" (no answer).
    lost_response_modes: tuple[str, ...] = LOST_RESPONSE_MODES
    #: How long a "stall" holds the connection before closing it unanswered.
    stall_seconds: float = 30.0
    #: Seconds from create to ``expires_at`` (the real API: 24 h).
    expire_after: float = 86400.0
    #: How long a canceled batch stays ``canceling`` before it ends.
    cancel_delay: float = 0.5
    #: Seconds added before every response.
    latency: float = 0.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """ValueError naming the first field out of range."""
        for name in ("error_rate", "expire_rate", "http_fault_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
        for name in ("processing_time", "retry_after", "stall_seconds", "expire_after", "cancel_delay", "latency"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)!r}")
        if self.error_rate + self.expire_rate > 1.0:
            raise ValueError("error_rate + expire_rate must not exceed 1")
        if self.fail_next < 0:
            raise ValueError("fail_next must not be negative")
        if self.http_fault_burst < 1:
            raise ValueError("http_fault_burst must be at least 1")
        if not self.http_fault_statuses or set(self.http_fault_statuses) - set(HTTP_FAULT_STATUSES):
            raise ValueError(f"http_fault_statuses must be drawn from {HTTP_FAULT_STATUSES}")
        if not self.lost_response_modes or set(self.lost_response_modes) - set(LOST_RESPONSE_MODES):
            raise ValueError(f"lost_response_modes must be drawn from {LOST_RESPONSE_MODES}")

    def to_dict(self) -> dict[str, object]:
        """The settings as JSON-ready values."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    def update(self, changes: dict[str, object]) -> None:
        """Apply ``changes`` (field -> value) all or nothing; ValueError on a bad one."""
        known = {f.name: f for f in fields(self)}
        unknown = set(changes) - set(known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        candidate = self.to_dict()
        candidate.update(changes)
        typed = {k: tuple(v) if isinstance(v, list) else v for k, v in candidate.items()}
        Faults(**typed)  # validates
        for key, value in typed.items():
            setattr(self, key, value)


class FaultDice:
    """The seeded decisions about HTTP faults and lost answers, shared by all threads."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self._burst_left = 0
        self._burst_status = 500
        #: How many faults of each kind were injected (HTTP statuses and lost-answer modes).
        self.injected: dict[int | str, int] = {}

    def _count(self, what: int | str) -> None:
        self.injected[what] = self.injected.get(what, 0) + 1

    def http_fault(self, faults: Faults) -> int | None:
        """The status to fail this call with, or None to serve it."""
        with self._lock:
            if faults.fail_next > 0:
                faults.fail_next -= 1
                status = self._random.choice(tuple(faults.http_fault_statuses))
            elif self._burst_left > 0:
                self._burst_left -= 1
                status = self._burst_status
            elif faults.http_fault_rate > 0 and self._random.random() < faults.http_fault_rate:
                status = self._burst_status = self._random.choice(tuple(faults.http_fault_statuses))
                self._burst_left = faults.http_fault_burst - 1
            else:
                return None
            self._count(status)
            return status

    def lost_response(self, faults: Faults) -> str | None:
        """How this call's answer is lost after its work is done, or None to answer."""
        with self._lock:
            if faults.lost_response_rate <= 0 or self._random.random() >= faults.lost_response_rate:
                return None
            mode = self._random.choice(tuple(faults.lost_response_modes))
            self._count(mode)
            return mode
