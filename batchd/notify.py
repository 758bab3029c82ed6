"""sd_notify over ``$NOTIFY_SOCKET`` with the standard library; silent without systemd."""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    """Tells systemd when batchd is ready, how it is doing, that it is alive, and that it stops."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_every = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self._last_ping = 0.0
        self._last_status = ""

    def send(self, message: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError:
            pass

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")
        self._last_status = status

    def status(self, status: str) -> None:
        if status != self._last_status:
            self.send(f"STATUS={status}")
            self._last_status = status

    def ping(self) -> None:
        """WATCHDOG=1, from the main loop only, at half the interval systemd asked for."""
        if self.watchdog_every is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_every:
            self.send("WATCHDOG=1")
            self._last_ping = now

    def stopping(self) -> None:
        self.send("STOPPING=1")
