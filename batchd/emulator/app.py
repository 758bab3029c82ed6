"""The Emulator: state, record, faults and the HTTP server wired together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from batchd.emulator.faults import FaultDice, Faults
from batchd.emulator.record import Record
from batchd.emulator.server import _Server, serve
from batchd.emulator.store import Store


class Emulator:
    """A local Anthropic API with Message Batches, for tests, demos and offline runs.

    ``faults`` may be changed at any time, field by field or as a whole; ``clock`` (a
    callable returning POSIX seconds) decides every batch's timeline, so tests can move
    time instead of waiting; ``state_path`` keeps batches and the record in a SQLite file
    that a later Emulator on the same path picks up; ``seed`` makes ids, result order and
    injected faults repeatable. Used as a context manager it starts on an ephemeral port
    and closes at the end of the block.
    """

    def __init__(self, faults: Faults | None = None, state_path: str | Path | None = None, seed: int = 0,
                 clock: Callable[[], float] | None = None) -> None:
        self.faults = faults if faults is not None else Faults()
        self.state_path = Path(state_path) if state_path is not None else None
        self.seed = seed
        self.clock: Callable[[], float] = clock or time.time
        self.store = Store(self.state_path, seed=seed, clock=self.clock)
        self.record = Record(self.store)
        self.dice = FaultDice(seed)
        self.stopping = threading.Event()
        self.base_url: str | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns the base URL (``http://HOST:PORT``)."""
        if self._server is not None:
            raise RuntimeError("the emulator is already serving")
        self.stopping.clear()
        self._server = serve(self, host, port)
        bound_host, bound_port = self._server.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.base_url = f"http://{shown}:{bound_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="batchd-emulator", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and cut open connections; the state and record stay readable."""
        server, self._server = self._server, None
        self.stopping.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.base_url = None

    def close(self) -> None:
        """Stop, and release the state file."""
        self.stop()
        self.store.close()

    def __enter__(self) -> Emulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
