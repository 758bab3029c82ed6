"""The HTTP layer: routes, authentication, limits, injected faults, and the wire format.

Order of checks on every call, as the real service layers them: the size limit from
``Content-Length`` (before a byte of the body is read, like the proxy in front of the
API), then the body, the route, the API key, an injected fault (before any work), the
work itself, and for creates and messages calls a possibly lost answer (after the work).
Every answer carries a ``request-id`` header; errors use the API's envelope.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from batchd.emulator import engine, ids, params as params_rules
from batchd.emulator.errors import ApiError, envelope, invalid, not_found
from batchd.emulator.store import render

if TYPE_CHECKING:
    from batchd.emulator.app import Emulator

log = logging.getLogger(__name__)

BATCH_BODY_LIMIT = 256 * 1024 * 1024
MESSAGE_BODY_LIMIT = 32 * 1024 * 1024
_BATCH_PATH = re.compile(r"^/v1/messages/batches/([^/]+)(/cancel|/results)?$")
_FAULT_ERRORS = {429: ("rate_limit_error", "Number of requests has exceeded your rate limit (injected fault)."),
                 529: ("overloaded_error", "Overloaded"),
                 500: ("api_error", "Internal server error")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is its own business, not a server fault."""
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Cut kept-alive and stalled connections, so that stop() leaves nothing behind."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Headers and body leave in one segment: split writes meet the client's delayed ACK.
    wbufsize = 256 * 1024
    disable_nagle_algorithm = True
    server_version = "batchd-emulator"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level failures (bad request line, unknown method) in the API's envelope."""
        self.close_connection = True
        error_type = "api_error" if code >= 500 else "not_found_error" if code == 404 else "invalid_request_error"
        request_id = ids.request_id()
        data = json.dumps(envelope(error_type, message or "Bad request", request_id)).encode()
        self._send(code, "application/json", len(data), request_id)
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_expect_100(self) -> bool:
        """No ``100 Continue`` for a body that will be refused unread."""
        if self._declared_length() > self._limit(urlsplit(self.path).path):
            return True
        return super().handle_expect_100()

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def _declared_length(self) -> int:
        try:
            return max(0, int(self.headers.get("Content-Length", "0")))
        except ValueError:
            return 0

    @staticmethod
    def _limit(path: str) -> int:
        return BATCH_BODY_LIMIT if path.rstrip("/") == "/v1/messages/batches" else MESSAGE_BODY_LIMIT

    def _serve(self, method: str) -> None:
        request_id = ids.request_id()
        faults = self.emulator.faults
        if faults.latency:
            self.emulator.stopping.wait(faults.latency)
        url = urlsplit(self.path)
        try:
            if self._declared_length() > self._limit(url.path):
                self.close_connection = True
                raise ApiError("request_too_large", "Request exceeds the maximum allowed number of bytes. "
                               f"The maximum request size is {self._limit(url.path)} bytes.")
            self._body = self.rfile.read(self._declared_length()) if self._declared_length() else b""
            if len(self._body) < self._declared_length():
                self.close_connection = True
                return
            action, args = self._route(method, url.path)
            if url.path.startswith("/v1/"):
                self._authenticate()
                status = self.emulator.dice.http_fault(faults)
                if status is not None:
                    error_type, message = _FAULT_ERRORS[status]
                    raise ApiError(error_type, message, status=status,
                                   headers={**self._retry_after(), "x-should-retry": "true"})
            action(self, request_id, query=parse_qs(url.query), **args)
        except ApiError as exc:
            self._send_json(exc.status, envelope(exc.error_type, exc.message, request_id), request_id, exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("emulator failure on %s %s", method, self.path)
            self.close_connection = True
            self._send_json(500, envelope("api_error", "Internal server error", request_id), request_id)
        finally:
            self._body = b""

    def _route(self, method: str, path: str) -> tuple[Any, dict[str, Any]]:
        """The endpoint for ``method path`` and its path arguments; 404 or 405 otherwise."""
        if (method, path) in _ROUTES:
            return _ROUTES[(method, path)], {}
        match = _BATCH_PATH.match(path)
        if match:
            action = _BATCH_ROUTES.get((method, match.group(2) or ""))
            if action is not None:
                return action, {"batch_id": match.group(1)}
        elif path not in {p for _, p in _ROUTES}:
            raise not_found(f"Not found: {path}")
        raise ApiError("invalid_request_error", f"Method {method} is not allowed on {path}", status=405)

    def _retry_after(self) -> dict[str, str]:
        seconds = self.emulator.faults.retry_after
        return {"retry-after": str(max(1, round(seconds))), "retry-after-ms": str(int(seconds * 1000))}

    def _authenticate(self) -> None:
        key = self.headers.get("x-api-key", "").strip()
        bearer = self.headers.get("Authorization", "").strip()
        if key or (bearer[:7].lower() == "bearer " and bearer[7:].strip()):
            return
        raise ApiError("authentication_error", "x-api-key header is required")

    def _base(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.emulator.base_url or ""

    def _send_json(self, status: int, payload: Any, request_id: str, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._send(status, "application/json", len(data), request_id, headers)
        self.wfile.write(data)

    def _send(self, status: int, content_type: str, length: int, request_id: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("request-id", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _answer_or_lose(self, status: int, payload: Any, request_id: str) -> None:
        """Send the answer, unless the dice say this one is lost after the work was done."""
        mode = self.emulator.dice.lost_response(self.emulator.faults)
        if mode is None:
            self._send_json(status, payload, request_id)
            return
        log.info("losing the answer to %s %s (%s)", self.command, self.path, mode)
        if mode == "error":
            self._send_json(500, envelope("api_error", "Internal server error", request_id), request_id,
                            {"x-should-retry": "true", **self._retry_after()})
            return
        if mode == "stall":
            self.emulator.stopping.wait(self.emulator.faults.stall_seconds)
        self.close_connection = True

    def _take_body(self) -> bytes:
        """The request body, handed over once so that no second reference keeps it alive."""
        body, self._body = self._body, b""
        return body

    def _json_body(self) -> dict[str, Any]:
        try:
            value = json.loads(self._take_body())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise invalid(f"There was an error parsing the body of your request: {exc}") from None
        if not isinstance(value, dict):
            raise invalid("The request body must be a JSON object")
        return value

    # -- endpoints ----------------------------------------------------------------------------

    def _create(self, request_id: str, *, query: dict[str, list[str]]) -> None:
        try:
            text = self._take_body().decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("There was an error parsing the body of your request: it is not valid UTF-8") from None
        row = self.emulator.store.create(text, self.emulator.faults)
        del text
        self._answer_or_lose(200, render(row, self.emulator.clock(), self._base()), request_id)

    def _list(self, request_id: str, *, query: dict[str, list[str]]) -> None:
        raw_limit = query.get("limit", ["20"])[-1]
        try:
            limit = int(raw_limit)
        except ValueError:
            raise invalid("limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise invalid(f"limit: Input should be {'greater than or equal to 1' if limit < 1 else 'less than or equal to 1000'}")
        after_id = query.get("after_id", [None])[-1]
        before_id = query.get("before_id", [None])[-1]
        if after_id and before_id:
            raise invalid("Only one of before_id and after_id may be given")
        rows, has_more = self.emulator.store.page(limit=limit, after_id=after_id or None, before_id=before_id or None)
        now = self.emulator.clock()
        data = [render(r, now, self._base()) for r in rows]
        self._send_json(200, {"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None}, request_id)

    def _retrieve(self, request_id: str, *, batch_id: str, query: dict[str, list[str]]) -> None:
        row = self.emulator.store.get(batch_id)
        self._send_json(200, render(row, self.emulator.clock(), self._base()), request_id)

    def _cancel(self, request_id: str, *, batch_id: str, query: dict[str, list[str]]) -> None:
        row = self.emulator.store.cancel(batch_id, self.emulator.faults)
        self._send_json(200, render(row, self.emulator.clock(), self._base()), request_id)

    def _delete(self, request_id: str, *, batch_id: str, query: dict[str, list[str]]) -> None:
        self.emulator.store.delete(batch_id)
        self._send_json(200, {"id": batch_id, "type": "message_batch_deleted"}, request_id)

    def _results(self, request_id: str, *, batch_id: str, query: dict[str, list[str]]) -> None:
        length, chunks = self.emulator.store.results(batch_id)
        self._send(200, "application/x-jsonl", length, request_id)
        for chunk in chunks:
            self.wfile.write(chunk)

    def _message(self, request_id: str, *, query: dict[str, list[str]]) -> None:
        message = self.emulator.store.message(self._json_body())
        self._answer_or_lose(200, message, request_id)

    def _count_tokens(self, request_id: str, *, query: dict[str, list[str]]) -> None:
        request_params = self._json_body()
        params_rules.check(request_params, mode="count_tokens")
        self._send_json(200, {"input_tokens": engine.count_tokens(request_params)}, request_id)

    def _record(self, request_id: str, *, query: dict[str, list[str]]) -> None:
        self._send_json(200, self.emulator.record.as_dict(), request_id)

    def _faults(self, request_id: str, *, query: dict[str, list[str]]) -> None:
        if self.command == "PUT":
            try:
                self.emulator.faults.update(self._json_body())
            except (TypeError, ValueError) as exc:
                raise invalid(str(exc)) from None
        self._send_json(200, self.emulator.faults.to_dict(), request_id)


_ROUTES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/messages/batches"): _Handler._create,
    ("GET", "/v1/messages/batches"): _Handler._list,
    ("POST", "/v1/messages"): _Handler._message,
    ("POST", "/v1/messages/count_tokens"): _Handler._count_tokens,
    ("GET", "/_emulator/record"): _Handler._record,
    ("GET", "/_emulator/faults"): _Handler._faults,
    ("PUT", "/_emulator/faults"): _Handler._faults,
}
_BATCH_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", ""): _Handler._retrieve,
    ("DELETE", ""): _Handler._delete,
    ("POST", "/cancel"): _Handler._cancel,
    ("GET", "/results"): _Handler._results,
}


def serve(emulator: Emulator, host: str, port: int) -> _Server:
    """A bound server for ``emulator``; the caller runs ``serve_forever``."""
    return _Server((host, port), emulator)
