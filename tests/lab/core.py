"""What every stand-in of the lab shares: the compressed clock, the request log, fault injection.

- ``LabClock``: lab time runs ``factor`` times faster than wall time, so a 300 s Nomad drain can take
  3 s. Every duration the lab reports is in lab seconds.
- ``RequestLog``: every *mutating* request a stand-in receives (method, path, lab time, wall time,
  stand-in name), appended as JSON lines to a file that tests read, so a check-mode run can be shown
  to have written nothing.
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


class RequestLog:
    """Appends mutating requests to a JSON-lines file; thread-safe, readable while the lab runs."""

    def __init__(self, path: str, clock: LabClock):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        open(path, "a").close()

    def record(self, service: str, method: str, path: str, status: int | None = None) -> None:
        if method.upper() not in MUTATING_METHODS:
            return
        entry = RequestRecord(service, method.upper(), path, round(self.clock.now(), 3), time.time(), status)
        line = json.dumps(asdict(entry), sort_keys=True)
        with self._lock, open(self.path, "a") as handle:
            handle.write(line + "\n")

    def clear(self) -> None:
        with self._lock:
            open(self.path, "w").close()

    @staticmethod
    def read(path: str) -> list[dict]:
        with open(path) as handle:
            return [json.loads(line) for line in handle if line.strip()]


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
