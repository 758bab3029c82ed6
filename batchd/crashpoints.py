"""Named instants where a test can make the daemon die, to prove what a restart recovers.

``BATCHD_CRASH_AT=name[:n]`` kills the process with SIGKILL the n-th time (default 1st)
it passes ``name``. Unset, this costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("BATCHD_CRASH_AT", "")
_name, _, _nth = _spec.partition(":")
_count = 0

POINTS = ("after_intent", "after_create", "mid_results", "after_outputs", "after_move", "after_manifest")


def crashpoint(name: str) -> None:
    """Die here, like a power cut or ``kill -9``, if the environment asks for it."""
    global _count
    if name != _name:
        return
    _count += 1
    if _count >= int(_nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
