"""Validate instances against component schemas of Anthropic's OpenAPI description.

    from openapi import validate, validate_error
    validate("MessageBatch", batch_json)          # raises jsonschema.ValidationError
    validate_error(error_json)                    # ErrorResponse, plus the two gaps below

The description (tests/data/anthropic-openapi.json) lacks ``conflict_error`` (409) and
``request_too_large`` (413) in its error types, though the API sends them;
:func:`validate_error` checks those two envelopes by hand.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parent / "data" / "anthropic-openapi.json"
_URI = "urn:anthropic:openapi"
#: Error types the API sends that the description's ErrorType enum does not list.
UNLISTED_ERROR_TYPES = {"conflict_error": 409, "request_too_large": 413}


@lru_cache(maxsize=1)
def _registry() -> Registry:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return Registry().with_resource(_URI, Resource.from_contents(spec, default_specification=DRAFT202012))


@lru_cache(maxsize=None)
def validator(component: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<component>``."""
    if component not in _registry().contents(_URI)["components"]["schemas"]:
        raise KeyError(f"no component schema named {component!r}")
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{component}"}, registry=_registry())


def validate(component: str, instance: Any) -> None:
    """Raise the most relevant ValidationError if ``instance`` does not fit ``component``."""
    error = best_match(validator(component).iter_errors(instance))
    if error is not None:
        raise error


def validate_error(instance: Any) -> None:
    """An error envelope: ErrorResponse, or by hand for the two types the spec omits."""
    error_type = instance.get("error", {}).get("type") if isinstance(instance, dict) else None
    if error_type not in UNLISTED_ERROR_TYPES:
        validate("ErrorResponse", instance)
        return
    assert instance["type"] == "error", instance
    assert set(instance) == {"type", "error", "request_id"}, instance
    assert isinstance(instance["error"]["message"], str) and instance["error"]["message"], instance
    assert instance["request_id"] is None or isinstance(instance["request_id"], str), instance
