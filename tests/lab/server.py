"""The lab process: every stand-in, in one process, seeded with one scenario.

``Lab.start()`` creates the shared clock, request log and fault injector, starts the admin endpoint
and each stand-in on 127.0.0.1 and a free port, seeds the scenario, then writes ``lab.json`` in the
state directory: the endpoints, the kubeconfig, the AWS environment file and the Ansible inventory
that the playbooks and tests use. ``Lab.stop()`` stops them all. ``python -m tests.lab`` runs it as a
background process (see ``tests/lab/__main__.py``).
"""
from __future__ import annotations

import json
import os
import time

from .admin import AdminServer
from .core import FaultInjector, LabClock, RequestLog

STATE_FILE = "lab.json"


class Lab:
    """One running lab. Components that a scenario does not use are not started."""

    def __init__(self, state_dir: str, scenario_name: str, clock_factor: float = 100.0):
        self.state_dir = os.path.abspath(state_dir)
        self.scenario_name = scenario_name
        self.clock = LabClock(clock_factor)
        self.request_log = None
        self.faults = FaultInjector()
        self.admin = AdminServer(self)
        self.kube = self.aws = self.nomad = self.gcp = self.world = self.feeder = self.box = None
        self.datastores: dict = {}
        self.scenario: dict = {}
        self.ids: dict = {}
        self.endpoints: dict = {}
        self.files: dict = {}
        self._stoppers: list = []

    def _started(self, name, component, url):
        self.endpoints[name] = url
        self._stoppers.append(component.stop)
        return url

    def start(self) -> dict:
        from . import seed  # the scenario-specific part; imported late so the CLI starts fast

        began = time.monotonic()
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.request_log = RequestLog(os.path.join(self.state_dir, "requests.jsonl"), self.clock)
        self.request_log.clear()
        self._started("admin", self.admin, self.admin.start())
        try:
            seed.bring_up(self)
        except BaseException:
            self.stop()
            raise
        state = {
            "pid": os.getpid(),
            "scenario": self.scenario_name,
            "state_dir": self.state_dir,
            "clock_factor": self.clock.factor,
            "endpoints": self.endpoints,
            "files": self.files,
            "bringup_seconds": round(time.monotonic() - began, 2),
            "ready": True,
        }
        path = os.path.join(self.state_dir, STATE_FILE)
        with open(path + ".tmp", "w") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
        os.replace(path + ".tmp", path)
        return state

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            began = time.monotonic()
            try:
                stopper()
                print("lab: stopped %s in %.2fs" % (getattr(stopper, "__qualname__", stopper), time.monotonic() - began), flush=True)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # Stopping must go on so that no port is left behind; say what failed.
                print("lab: stopping %r failed: %s" % (stopper, exc))

    def register_stopper(self, stopper) -> None:
        self._stoppers.append(stopper)


def read_state(state_dir: str):
    """The ``lab.json`` of a lab started in ``state_dir``, or None."""
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
