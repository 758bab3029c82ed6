"""``python -m batchd.emulator``: the ``batchd emulate`` command on its own."""

from batchd.emulator.cli import emulate

emulate(prog_name="batchd emulate")
