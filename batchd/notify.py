"""sd_notify over ``$NOTIFY_SOCKET`` with the standard library; silent without systemd.

The protocol is one datagram per message on a unix socket whose path systemd puts in
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). ``$WATCHDOG_USEC``
asks for ``WATCHDOG=1`` at least that often; ``$WATCHDOG_PID``, when set, says which
process is meant (a child that inherited the environment must stay quiet).
"""

from __future__ import annotations

import os
import socket
import time

import structlog

log = structlog.get_logger("batchd")


class Notifier:
    """Tells systemd when batchd is ready, how it is doing, that it is alive, and that it stops."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        for_us = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.watchdog_every = int(usec) / 2e6 if for_us and usec.isdigit() and int(usec) > 0 else None
        self._last_ping = float("-inf")
        self._last_status = ""
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> bool:
        """One datagram; True when it went out. Never raises: systemd is optional."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode("utf-8", "replace"), self.address)
        except OSError as exc:
            if not self._failed:  # once: a dead socket must not flood the log every loop
                self._failed = True
                log.warning("notify_failed", socket=self.address.replace("\0", "@"), error=str(exc))
            return False
        return True

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={_one_line(status)}")
        self._last_status = status

    def status(self, status: str) -> None:
        if status != self._last_status:
            self.send(f"STATUS={_one_line(status)}")
            self._last_status = status

    def ping(self) -> None:
        """WATCHDOG=1, from the main loop only, at half the interval systemd asked for."""
        if self.watchdog_every is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_every:
            self.send("WATCHDOG=1")
            self._last_ping = now

    def next_ping_in(self) -> float:
        """Seconds until the next ping is due: the main loop must not sleep longer."""
        if self.watchdog_every is None:
            return float("inf")
        return max(0.0, self._last_ping + self.watchdog_every - time.monotonic())

    def stopping(self) -> None:
        self.send("STOPPING=1")


def _one_line(text: str) -> str:
    """STATUS= ends at the newline: a reason with one must not cut the message."""
    return " ".join(text.splitlines())
