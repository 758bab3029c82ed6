"""Checks shared by the daemon tests: the result.json contract and the API's own schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

DATA = Path(__file__).parent / "data"
RESULT_SCHEMA = json.loads((DATA / "result.schema.json").read_text())
_result_validator = jsonschema.Draft202012Validator(RESULT_SCHEMA, format_checker=jsonschema.FormatChecker())


def check_manifest(manifest: dict[str, Any]) -> None:
    """A result.json must match the published schema exactly (our own keys removed)."""
    clean = {k: v for k, v in manifest.items() if not k.startswith("_")}
    errors = sorted(_result_validator.iter_errors(clean), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def check_folder(outbox: Path, manifest: dict[str, Any]) -> None:
    """The folder holds every file result.json names, and nothing half-written."""
    folder = outbox / manifest["_folder"]
    check_manifest(manifest)
    for name, task in manifest["tasks"].items():
        if task["output"]:
            assert (folder / task["output"]).is_file(), f"{name}: {task['output']} missing"
    if manifest["original"]:
        assert (folder / manifest["original"]).is_file()
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".batchd-tmp-")]
    assert not leftovers, leftovers
