"""structlog set-up: readable on a terminal, one JSON object per line anywhere else.

Every line carries ``level``, ``event`` and a UTC ``timestamp``; the ids of what it is
about (``doc_id``, ``batch``, ``batch_id``, ``custom_id``) are keys of their own, so
``journalctl -o cat | jq 'select(.batch_id == "...")'`` finds a batch's whole story.

Two things never reach a log line: document text (tracebacks are rendered without local
variables, and the SDK's and HTTP libraries' debug logs, which carry request bodies, are
held at warning) and secrets (the API key, and anything shaped like one, is redacted).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
#: Loggers that would log request bodies or headers at debug level.
NOISY = ("httpx", "httpx2", "httpcore", "httpcore2", "h11", "h2", "hpack", "anthropic", "watchdog", "urllib3")
#: What an Anthropic key looks like, wherever it turns up.
_KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}")
REDACTED = "[redacted]"

_secrets: set[str] = set()
_override: str | None = None


def add_secret(value: str | None) -> None:
    """Never log ``value`` (the API key found by whatever route): it is replaced by [redacted]."""
    if value and len(value.strip()) >= 8:
        _secrets.add(value.strip())


def configure(level: str = "info", fmt: str = "auto", *, override: str | None = None) -> None:
    """Route structlog and the stdlib loggers (httpx, anthropic, watchdog) to stderr as one stream.

    ``override`` is the command line's ``--log-level``: it wins over ``level`` now and in
    every later call (a SIGHUP reload keeps the level the operator asked for).
    Tracebacks are rendered without local variables: locals may hold document text.
    """
    global _override
    if override:
        _override = override
    level = (_override or level).lower()
    add_secret(os.environ.get("ANTHROPIC_API_KEY"))
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        renderer: Any = structlog.processors.JSONRenderer()
        shared_tail: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
            if _has_rich() else structlog.dev.plain_traceback)
        shared_tail = []
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *shared_tail, redact, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, _LEVELS[level]))


def redact(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A processor: every string in the event with a secret in it gets the secret replaced."""
    return {key: _scrub(value) for key, value in event_dict.items()}


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _KEY_SHAPE.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True
