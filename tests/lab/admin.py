"""The lab's admin endpoint: what tests and the CLI ask of a running lab, over HTTP on 127.0.0.1.

    GET    /health              {"ok": true, "scenario": ...}
    GET    /requests            every mutating request any stand-in received (the request log), once no
                                request is in flight; 503 with the requests still running after the wait
    DELETE /requests            empty the request log
    GET    /faults              the fault rules and how often each matched
    POST   /faults              {"service", "method", "path_regex", "nth", "status", "message"}
    DELETE /faults              remove every rule
    GET    /clock               {"now": lab seconds, "factor": ...}
    GET    /nomad/stats         the Nomad stand-in's allocation counts (running, completed, killed...)

Stand-in for nothing real: it is the lab's own control surface. ``LabClient`` is its client.
"""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .core import DRAIN_TIMEOUT, RequestLogNotDrained


class _Handler(BaseHTTPRequestHandler):
    lab = None  # set on the subclass made per server

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Keep the lab's log quiet: requests are in the request log."""

    def _send(self, status, payload):
        body = json.dumps(payload, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):  # pylint: disable=invalid-name
        lab = self.lab
        if self.path == "/health":
            self._send(200, {"ok": True, "scenario": lab.scenario_name})
        elif self.path == "/requests":
            try:
                self._send(200, lab.request_log.entries())
            except RequestLogNotDrained as exc:
                self._send(503, {"error": str(exc)})
        elif self.path == "/faults":
            self._send(200, lab.faults.describe())
        elif self.path == "/clock":
            self._send(200, {"now": lab.clock.now(), "factor": lab.clock.factor})
        elif self.path == "/nomad/stats" and lab.nomad is not None:
            self._send(200, lab.nomad.stats())
        else:
            self._send(404, {"error": "no such lab endpoint: %s" % self.path})

    def do_POST(self):  # pylint: disable=invalid-name
        if self.path == "/datastores":
            knobs = self._body()
            postgres = (self.lab.datastores or {}).get("postgresql")
            if postgres is None:
                self._send(404, {"error": "this lab has no data-store stand-ins"})
                return
            try:
                postgres.configure(knobs.get("postgresql") or {})
            except (TypeError, ValueError) as exc:
                self._send(400, {"error": "bad data-store knobs: %s" % exc})
                return
            self._send(200, {"ok": True})
            return
        if self.path != "/faults":
            self._send(404, {"error": "no such lab endpoint: %s" % self.path})
            return
        rule = self._body()
        try:
            fault = self.lab.faults.add(rule.get("service", "*"), rule.get("method", "*"), rule["path_regex"],
                                        int(rule.get("nth", 1)), int(rule.get("status", 500)),
                                        rule.get("message", "injected fault"))
        except (KeyError, ValueError) as exc:
            self._send(400, {"error": "bad fault rule: %s" % exc})
            return
        self._send(201, {"path_regex": fault.path_regex, "nth": fault.nth})

    def do_DELETE(self):  # pylint: disable=invalid-name
        if self.path == "/requests":
            self.lab.request_log.clear()
        elif self.path == "/faults":
            self.lab.faults.clear()
        else:
            self._send(404, {"error": "no such lab endpoint: %s" % self.path})
            return
        self._send(200, {"ok": True})


class AdminServer:
    """Serves ``_Handler`` for one lab in a background thread."""

    def __init__(self, lab):
        self._handler = type("LabAdminHandler", (_Handler,), {"lab": lab})
        self._server = None
        self._thread = None

    def start(self, host="127.0.0.1", port=0) -> str:
        self._server = ThreadingHTTPServer((host, port), self._handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="lab-admin", daemon=True)
        self._thread.start()
        return "http://%s:%d" % self._server.server_address[:2]

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None


class LabClient:
    """What a test or the CLI uses to talk to a running lab's admin endpoint."""

    def __init__(self, admin_url: str, timeout: float = 10.0):
        self.admin_url = admin_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method, path, payload=None, timeout=None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.admin_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:  # nosec: loopback only
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError("lab admin %s %s answered %d: %s" % (method, path, exc.code, detail)) from exc

    def health(self):
        return self._call("GET", "/health")

    def requests(self, service=None):
        """The request log, once no request is in flight (the lab waits up to DRAIN_TIMEOUT seconds)."""
        entries = self._call("GET", "/requests", timeout=DRAIN_TIMEOUT + self.timeout)
        return [e for e in entries if service in (None, e["service"])]

    def clear_requests(self):
        self._call("DELETE", "/requests")

    def add_fault(self, path_regex, service="*", method="*", nth=1, status=500, message="injected fault"):
        return self._call("POST", "/faults", {"service": service, "method": method, "path_regex": path_regex,
                                              "nth": nth, "status": status, "message": message})

    def faults(self):
        return self._call("GET", "/faults")

    def clear_faults(self):
        self._call("DELETE", "/faults")

    def datastores(self, postgresql: dict):
        """Set the PostgreSQL stand-in's knobs (``free_kb``, ``restore_loses``; see tests/lab/datastores.py)."""
        return self._call("POST", "/datastores", {"postgresql": postgresql})

    def clock(self):
        return self._call("GET", "/clock")

    def nomad_stats(self):
        return self._call("GET", "/nomad/stats")
