"""Where batchd finds the Anthropic API key, kept apart from the SDK so that a bad
configuration or a missing key is reported before the SDK's slow import."""

from __future__ import annotations

import os
from pathlib import Path


class MissingKey(Exception):
    """No API key was found; the message says where batchd looks."""


def api_key(offline: bool) -> str:
    """``ANTHROPIC_API_KEY``, else ``$CREDENTIALS_DIRECTORY/anthropic_api_key`` (systemd)."""
    if offline:
        return "offline"
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if key:
        return key
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        try:
            key = (Path(cred_dir) / "anthropic_api_key").read_text(encoding="utf-8").strip()
        except OSError:
            key = ""
        if key:
            return key
    raise MissingKey("no Anthropic API key: set ANTHROPIC_API_KEY, or provide the file "
                     "$CREDENTIALS_DIRECTORY/anthropic_api_key (systemd LoadCredential=), "
                     "or use --offline to run against the built-in emulator")
