"""The HTTP plumbing that the Nomad and GCP stand-ins share: one threaded server on 127.0.0.1.

Stands in for nothing by itself. A subclass names its ``SERVICE`` (the name used by the fault injector
and the request log) and implements ``handle()``; this class answers faults, records every write in
the request log (on arrival, then its status when the handler ends), turns exceptions into 500s and
lets ``stop()`` free the port even while clients hold keep-alive connections open. ``make_tls_material`` writes a throw-away CA, a server certificate for
127.0.0.1 and a client certificate, so a stand-in can serve HTTPS, optionally requiring mTLS.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
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

    def handle_error(self, request, client_address):
        """A client that hangs up or fails the TLS handshake is not the lab's error: stay quiet."""


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


def make_tls_material(directory: str, common_name: str = "server.global.nomad") -> dict:
    """Writes ca.pem, server.pem/server-key.pem (for 127.0.0.1 and localhost) and client.pem/client-key.pem.

    Returns their paths. RSA 2048, valid one day: lab material only, never a real secret."""
    # Imported here: only a TLS lab needs it (cryptography comes with moto and google-auth).
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # pylint: disable=import-outside-toplevel
    import ipaddress  # pylint: disable=import-outside-toplevel

    os.makedirs(directory, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def _key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def _name(value):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])

    def _builder(subject, issuer, public_key):
        return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))

    ca_key = _key()
    ca_cert = (_builder("lab-ca", "lab-ca", ca_key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    server_key, client_key = _key(), _key()
    server_cert = (_builder(common_name, "lab-ca", server_key.public_key())
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName(common_name),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .sign(ca_key, hashes.SHA256()))
    client_cert = (_builder("client.global.nomad", "lab-ca", client_key.public_key())
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(directory, name + ".pem") for name in ("ca", "server", "server-key", "client", "client-key")}
    for name, cert in (("ca", ca_cert), ("server", server_cert), ("client", client_cert)):
        with open(paths[name], "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
    for name, key in (("server-key", server_key), ("client-key", client_key)):
        with open(os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return paths


class HttpStandIn:
    """Base class: ``start()`` serves on a free port and returns the base URL; ``stop()`` is idempotent.

    With ``tls`` (paths from ``make_tls_material``) it serves HTTPS; with ``mtls`` too it requires a client
    certificate signed by that CA."""

    SERVICE = ""

    def __init__(self, clock, request_log=None, faults=None, tls: dict | None = None, mtls: bool = False):
        self.clock = clock
        self.request_log = request_log
        self.faults = faults
        self.tls = tls
        self.mtls = mtls
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
        # Recorded on arrival and completed when the handler ends (see RequestLog): a reader of the log
        # waits for this request instead of missing it.
        token = None
        if self.request_log is not None and not self.read_only(request):
            token = self.request_log.begin(self.SERVICE, request.method, request.path)
        status = None
        try:
            fault = self.faults.check(self.SERVICE, request.method, request.path) if self.faults else None
            if fault is not None:
                response = self.fault_response(fault, request)
            else:
                try:
                    response = self.handle(request)
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    # A bug in the stand-in must reach the client as a server error, not a hung connection.
                    response = self.internal_error(exc, request)
            status = response.status
            return response
        finally:
            if token is not None:
                self.request_log.end(token, status)

    def read_only(self, request: Request) -> bool:  # pylint: disable=unused-argument
        """True for a POST that only reads (GCP's listManagedInstances...): the request log keeps writes only."""
        return False

    def internal_error(self, exc, request: Request) -> Response:  # pylint: disable=unused-argument
        return Response(500, "lab %s stand-in error: %s: %s" % (self.SERVICE, type(exc).__name__, exc), text=True)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            return self.base_url
        self._server = _Server((host, port), _Handler, self)
        scheme = "http"
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls["server"], self.tls["server-key"])
            if self.mtls:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(self.tls["ca"])
            # Handshake in the handler thread, not in the accept loop a silent client would block.
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
            scheme = "https"
        self.base_url = "%s://%s:%d" % (scheme, host, self._server.server_address[1])
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
