"""Which model ids the emulator answers for, and the limits that go with each.

The real API resolves aliases to dated snapshots and reports the dated id in every
Message; clients that key prices or logs on ``message.model`` must cope with that, so the
emulator does the same.
"""

from __future__ import annotations

#: Aliases whose dated snapshot is public; others are answered under their own name.
DATED: dict[str, str] = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}

#: Longest prefix wins: (prefix, max output tokens, minimum cacheable prompt tokens).
_LIMITS: tuple[tuple[str, int, int], ...] = (
    ("claude-3-5-haiku", 8192, 2048),
    ("claude-3-haiku", 4096, 2048),
    ("claude-3-7-sonnet", 64000, 1024),
    ("claude-haiku-4-5", 64000, 4096),
    ("claude-sonnet-4", 64000, 1024),
    ("claude-opus-4-1", 32000, 1024),
    ("claude-opus-4-2025", 32000, 1024),
    ("claude-opus-4-0", 32000, 1024),
    ("claude-opus-4", 64000, 4096),
)
_DEFAULT_LIMITS = (64000, 1024)


def is_known(model: str) -> bool:
    """Any ``claude-*`` id is served: the emulator cannot know every snapshot ever made."""
    return model.startswith("claude-") and len(model) > len("claude-")


def dated(model: str) -> str:
    """The id a Message reports for a requested ``model``."""
    return DATED.get(model, model)


def _limits(model: str) -> tuple[int, int]:
    best = ""
    found = _DEFAULT_LIMITS
    for prefix, max_out, min_cache in _LIMITS:
        if dated(model).startswith(prefix) and len(prefix) > len(best):
            best, found = prefix, (max_out, min_cache)
    return found


def max_output_tokens(model: str) -> int:
    """The largest ``max_tokens`` the model accepts."""
    return _limits(model)[0]


def min_cacheable_tokens(model: str) -> int:
    """Prompts shorter than this are silently not cached, as the real API does."""
    return _limits(model)[1]
