"""What every stand-in of the lab shares: the compressed clock, the request log, fault injection.

- ``LabClock``: lab time runs ``factor`` times faster than wall time, so a 300 s Nomad drain can take
  3 s. Every duration the lab reports is in lab seconds.
- ``RequestLog``: every *mutating* request a stand-in receives, written when it ARRIVES (method, path,
  lab time, wall time, stand-in name) and completed with its status when its handler ENDS, as JSON
  lines in a file that tests read, so a check-mode run can be shown to have written nothing. Reading
  waits until no recorded request is in flight: a client that got its answer before the handler
  finished (a WebSocket exec, a handler that answers then keeps working) cannot read a log that misses
  its write.
- ``FaultInjector``: "make the Nth request matching METHOD and a path regex fail with STATUS", so that
  a resumed run after a failure can be tested.

Not modelled: clock skew between services, network latency, partial writes.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LabClock:
    """Lab seconds since the lab started, ``factor`` times faster than the wall clock."""

    def __init__(self, factor: float = 1.0, start: float = 0.0):
        if factor <= 0:
            raise ValueError("the clock factor must be positive, got %r" % factor)
        self.factor = float(factor)
        self._start = start
        self._wall_start = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._wall_start) * self.factor

    def wall_seconds(self, lab_seconds: float) -> float:
        """How long ``lab_seconds`` of lab time take on the wall clock."""
        return lab_seconds / self.factor

    def sleep(self, lab_seconds: float) -> None:
        time.sleep(max(0.0, self.wall_seconds(lab_seconds)))


@dataclass
class RequestRecord:
    service: str
    method: str
    path: str
    lab_time: float
    wall_time: float
    status: int | None = None


class RequestLogNotDrained(RuntimeError):
    """Raised by a read of the request log when a recorded request is still in flight after the wait."""


# How long a read of the log waits for in-flight requests to end (wall seconds); a lab handler that runs
# longer than this is a bug of the stand-in, and the error names the request.
DRAIN_TIMEOUT = float(os.environ.get("LAB_REQUEST_LOG_DRAIN_TIMEOUT", "30"))


class RequestLog:
    """The mutating requests of the lab, in a JSON-lines file; thread-safe, readable while the lab runs.

    ``begin()`` appends an arrival line (``id``, service, method, path, lab and wall time, status null)
    as soon as a request arrives; ``end()`` appends ``{"id", "status", "ended_lab_time"}`` when its
    handler is done, whatever way it ends. ``read()`` merges the two into one record per request (the
    fields readers have always filtered on: service, method, path, lab_time, wall_time, status), in
    arrival order, after waiting until every arrival has its end line."""

    def __init__(self, path: str, clock: LabClock):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._in_flight: dict[str, str] = {}
        self._prefix = "%x" % (uuid.uuid4().int & 0xFFFFFFFF)
        self._next = 0
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        open(path, "a").close()

    def _append(self, entry: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")

    def begin(self, service: str, method: str, path: str) -> str | None:
        """Records a request as it arrives; returns the token to give ``end()`` (None: not a write, not kept)."""
        if method.upper() not in MUTATING_METHODS:
            return None
        with self._lock:
            self._next += 1
            token = "%s-%d" % (self._prefix, self._next)
            entry = asdict(RequestRecord(service, method.upper(), path, round(self.clock.now(), 3), time.time()))
            entry["id"] = token
            self._append(entry)
            self._in_flight[token] = "%s %s %s" % (service, method.upper(), path)
        return token

    def end(self, token: str | None, status: int | None) -> None:
        """Completes the record of ``token`` with the status answered (None: the handler ended without one)."""
        if token is None:
            return
        with self._lock:
            self._append({"id": token, "status": status, "ended_lab_time": round(self.clock.now(), 3)})
            self._in_flight.pop(token, None)
            if not self._in_flight:
                self._drained.notify_all()

    def record(self, service: str, method: str, path: str, status: int | None = None) -> None:
        """A request that arrives and ends at once (what a stand-in without a handler phase records)."""
        self.end(self.begin(service, method, path), status)

    def in_flight(self) -> list[str]:
        with self._lock:
            return sorted(self._in_flight.values())

    def wait_drained(self, timeout: float | None = None) -> None:
        """Returns once no request of this log is in flight; RequestLogNotDrained after ``timeout`` seconds."""
        timeout = DRAIN_TIMEOUT if timeout is None else timeout
        with self._lock:
            if not self._drained.wait_for(lambda: not self._in_flight, timeout):
                raise RequestLogNotDrained(
                    "the lab request log still has %d request(s) in flight after %.1fs: %s; a stand-in handler "
                    "that never ends is a lab bug" % (len(self._in_flight), timeout, ", ".join(sorted(self._in_flight.values()))))

    def entries(self, timeout: float | None = None) -> list[dict]:
        """Every record, once no request is in flight (see ``read``)."""
        self.wait_drained(timeout)
        return self.read(self.path, timeout)

    def clear(self) -> None:
        """Empties the log; a request in flight now ends unrecorded (its end line has no arrival)."""
        with self._lock:
            open(self.path, "w").close()

    @staticmethod
    def read(path: str, timeout: float | None = None) -> list[dict]:
        """The records of the log file at ``path``, one per request, in arrival order.

        Waits (polling the file, so it works from another process) until every request that arrived has
        ended, at most ``timeout`` seconds (``LAB_REQUEST_LOG_DRAIN_TIMEOUT``, 30 by default), then raises
        RequestLogNotDrained naming the requests still in flight."""
        deadline = time.monotonic() + (DRAIN_TIMEOUT if timeout is None else timeout)
        while True:
            records, pending = RequestLog._parse(path)
            if not pending:
                return records
            if time.monotonic() >= deadline:
                raise RequestLogNotDrained(
                    "%s: %d request(s) arrived and never ended: %s; is the lab still running (a stand-in "
                    "handler that never ends is a lab bug)?" % (path, len(pending), ", ".join(
                        "%s %s %s" % (r["service"], r["method"], r["path"]) for r in pending)))
            time.sleep(0.02)

    @staticmethod
    def _parse(path: str) -> tuple[list[dict], list[dict]]:
        records: list[dict] = []
        by_id: dict = {}
        with open(path) as handle:
            lines = handle.read().split("\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the last line, half written while we read: the next poll sees it whole
            if "service" in entry:
                entry.setdefault("status", None)
                records.append(entry)
                if "id" in entry:
                    entry["ended"] = False
                    by_id[entry["id"]] = entry
            elif entry.get("id") in by_id:
                # An end line whose arrival was cleared away is dropped with it.
                record = by_id[entry["id"]]
                record.update(status=entry.get("status"), ended_lab_time=entry.get("ended_lab_time"), ended=True)
        pending = [r for r in records if r.get("ended") is False]
        for record in records:
            record.pop("ended", None)
        return records, pending


@dataclass
class Fault:
    service: str
    method: str
    path_regex: str
    nth: int
    status: int
    message: str = "injected fault"
    seen: int = 0
    fired: bool = False
    _pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self._pattern = re.compile(self.path_regex)

    def matches(self, service: str, method: str, path: str) -> bool:
        return ((self.service in ("*", service)) and self.method in ("*", method.upper())
                and bool(self._pattern.search(path)))


class FaultInjector:
    """Makes the Nth request that matches a rule fail once with the rule's status."""

    def __init__(self):
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, service: str, method: str, path_regex: str, nth: int = 1, status: int = 500,
            message: str = "injected fault") -> Fault:
        if nth < 1:
            raise ValueError("nth counts from 1, got %r" % nth)
        fault = Fault(service, method.upper(), path_regex, nth, status, message)
        with self._lock:
            self._faults.append(fault)
        return fault

    def check(self, service: str, method: str, path: str):
        """The fault to answer this request with, or None. Counts the request against every rule."""
        with self._lock:
            for fault in self._faults:
                if fault.fired or not fault.matches(service, method, path):
                    continue
                fault.seen += 1
                if fault.seen == fault.nth:
                    fault.fired = True
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def describe(self) -> list[dict]:
        with self._lock:
            return [{"service": f.service, "method": f.method, "path_regex": f.path_regex, "nth": f.nth,
                     "status": f.status, "seen": f.seen, "fired": f.fired} for f in self._faults]


def free_port(host: str = "127.0.0.1") -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
