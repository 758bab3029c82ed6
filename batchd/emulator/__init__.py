"""A local, stateful emulator of the Anthropic Messages and Message Batches API.

The official ``anthropic`` SDK works against it unchanged through ``base_url``::

    from batchd.emulator import Emulator, Faults

    with Emulator(faults=Faults(processing_time=0.0)) as emu:      # ephemeral port
        client = anthropic.Anthropic(api_key="test", base_url=emu.base_url)
        ...
        emu.faults.http_fault_rate = 0.5                           # change faults any time
        emu.record.billed()                                        # what was billed

``Emulator(faults=None, state_path=None, seed=0, clock=None)``; ``start(host, port)``
returns the base URL and serves from a daemon thread; ``stop()`` stops serving (the
record stays readable); ``close()`` (also the end of a ``with`` block) releases the
state. ``clock`` is any callable returning POSIX seconds: :class:`ManualClock` moves
only when told, so hours of a batch's life pass in a test instantly.

Endpoints (a ``beta=true`` query is ignored; any ``anthropic-version`` is accepted; the
key may come as ``x-api-key`` or ``Authorization: Bearer``, and a missing one is a 401):

- ``POST /v1/messages/batches``, ``GET /v1/messages/batches`` (newest first, ``limit``
  1-1000 default 20, ``after_id`` / ``before_id``), ``GET /v1/messages/batches/{id}``,
  ``POST .../{id}/cancel``, ``DELETE .../{id}``, ``GET .../{id}/results`` (JSONL,
  streamed, in a seeded shuffled order);
- ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``;
- ``GET /_emulator/record``: the record below; ``GET /_emulator/faults`` and
  ``PUT /_emulator/faults`` (a JSON object of :class:`Faults` fields to change): the
  fault settings of a running emulator. These need no API key.

Record shape (``emu.record.as_dict()`` and ``GET /_emulator/record``)::

    {"created": [{"batch_id", "request_count", "custom_ids": [...], "created_at"}],
     "billed":  [{"batch_id" | null, "custom_id" | null, "reuse_key", "model",
                  "usage": {...}, "billed_at"}]}

One ``created`` entry per accepted create (also when its answer was lost); one ``billed``
entry per ``succeeded`` result, written once when its batch ends, and per answered
``POST /v1/messages`` call (``batch_id`` and ``custom_id`` null). ``reuse_key`` is
:func:`batchd.keys.reuse_key` of the request's params.

Choices where the real API's behaviour is undocumented (batchd must not rely on them):
duplicate custom_ids in one create are refused with a 400; canceling an ended
batch, deleting one that has not ended, and asking for results before the end are 400
``invalid_request_error``; an unknown ``after_id`` / ``before_id`` is a 400; more than
100,000 requests is a 400, a body over 256 MB (32 MB for messages) a 413 decided from
``Content-Length`` before reading; an unknown model (any id not starting with
``claude-``) is a 404 ``not_found_error`` "model: ..." for messages and count_tokens and
an ``errored`` result of the same type in a batch; ``stream: true`` is refused.
"""

from batchd.emulator.app import Emulator
from batchd.emulator.clock import ManualClock
from batchd.emulator.faults import Faults

__all__ = ["Emulator", "Faults", "ManualClock"]
