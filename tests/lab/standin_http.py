"""The HTTP plumbing that the Nomad and GCP stand-ins share: one threaded server on 127.0.0.1.

Stands in for nothing by itself. A subclass names its ``SERVICE`` (the name used by the fault injector
and the request log) and implements ``handle()``; this class answers faults, records every request in
the request log, turns exceptions into 500s and lets ``stop()`` free the port even while clients hold
keep-alive connections open.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class Request:
    """One parsed request, as a stand-in's ``handle()`` sees it."""

    def __init__(self, method: str, raw_path: str, headers, body: bytes):
        split = urlsplit(raw_path)
        self.method = method.upper()
        self.raw_path = split.path
        self.path = unquote(split.path)
        self.query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body

    def json(self, default=None):
        """The body decoded as JSON; ``default`` when the body is empty. Raises ValueError when it is not JSON."""
        if not self.body.strip():
            return default
        return json.loads(self.body)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "false").lower() in ("1", "true", "yes", "")


class Response:
    """What ``handle()`` returns: a status, a payload (JSON-encoded; plain text when ``text``) and extra headers."""

    def __init__(self, status: int, payload=None, headers: dict | None = None, text: bool = False):
        self.status = status
        self.payload = payload
        self.headers = headers or {}
        self.text = text

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.payload, bytes):
            return self.payload, "application/octet-stream"
        if self.text:
            return str(self.payload).encode(), "text/plain; charset=utf-8"
        return json.dumps(self.payload).encode(), "application/json"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, standin):
        self.standin = standin
        self.connections: set = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the request log is the record."""

    def setup(self):
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def _dispatch(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, self.headers, body)
        response = self.server.standin.serve(request)
        payload, content_type = response.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, str(value))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class HttpStandIn:
    """Base class: ``start()`` serves on a free port and returns the base URL; ``stop()`` is idempotent."""

    SERVICE = ""

    def __init__(self, clock, request_log=None, faults=None):
        self.clock = clock
        self.request_log = request_log
        self.faults = faults
        self.base_url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- to implement --------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, fault, request: Request) -> Response:
        """The protocol's normal error body for an injected fault."""
        return Response(fault.status, fault.message, text=True)

    # --- plumbing ------------------------------------------------------------------------------------
    def serve(self, request: Request) -> Response:
        fault = self.faults.check(self.SERVICE, request.method, request.path) if self.faults else None
        if fault is not None:
            response = self.fault_response(fault, request)
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # A bug in the stand-in must reach the client as a server error, not a hung connection.
                response = self.internal_error(exc, request)
        if self.request_log is not None and not self.read_only(request):
            self.request_log.record(self.SERVICE, request.method, request.path, response.status)
        return response

    def read_only(self, request: Request) -> bool:  # pylint: disable=unused-argument
        """True for a POST that only reads (GCP's listManagedInstances...): the request log keeps writes only."""
        return False

    def internal_error(self, exc, request: Request) -> Response:  # pylint: disable=unused-argument
        return Response(500, "lab %s stand-in error: %s: %s" % (self.SERVICE, type(exc).__name__, exc), text=True)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            return self.base_url
        self._server = _Server((host, port), _Handler, self)
        self.base_url = "http://%s:%d" % (host, self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="lab-%s" % self.SERVICE, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            # Keep-alive connections would otherwise keep handler threads blocked on a read.
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
