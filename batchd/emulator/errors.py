"""The API's error envelope, as an exception the HTTP layer turns into a response."""

from __future__ import annotations

from typing import Any

#: HTTP status for each error type the emulator sends.
STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def envelope(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    """``{"type":"error","error":{...},"request_id":...}``: the body of every error, and
    the ``error`` of an errored batch result (there with ``request_id`` null)."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


class ApiError(Exception):
    """An answer the client must see as an HTTP error; raised anywhere below the server."""

    def __init__(self, error_type: str, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status if status is not None else STATUS[error_type]
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError("invalid_request_error", message)


def not_found(message: str = "The requested resource could not be found.") -> ApiError:
    """A 404 ``not_found_error``."""
    return ApiError("not_found_error", message)
