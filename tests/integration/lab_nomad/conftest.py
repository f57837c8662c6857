"""Fixtures for the Nomad stand-in and the world: a fast lab clock, a request log, faults, the servers."""
from __future__ import annotations

import time

import nomad
import pytest

from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.gcp import GcpLab
from tests.lab.nomad import NomadLab

CLOCK_FACTOR = 100.0


@pytest.fixture
def lab_clock():
    return LabClock(CLOCK_FACTOR)


@pytest.fixture
def lab_log(tmp_path, lab_clock):
    return RequestLog(str(tmp_path / "requests.jsonl"), lab_clock)


@pytest.fixture
def lab_faults():
    return FaultInjector()


@pytest.fixture
def nomad_lab(lab_clock, lab_log, lab_faults):
    lab = NomadLab(lab_clock, lab_log, lab_faults)
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def gcp_lab(lab_clock, lab_log, lab_faults):
    lab = GcpLab(lab_clock, lab_log, lab_faults, op_delay=1.0, create_delay=10.0, delete_delay=5.0)
    lab.start()
    yield lab
    lab.stop()


def client_for(lab, **kwargs) -> nomad.Nomad:
    """python-nomad pointed at a stand-in (``address`` keeps it from defaulting to port 4646)."""
    return nomad.Nomad(address=lab.base_url, timeout=5, **kwargs)


@pytest.fixture
def nomad_client(nomad_lab):
    return client_for(nomad_lab)


def wait_for(clock, predicate, lab_timeout, what="condition"):
    """Polls ``predicate`` until it returns a truthy value or ``lab_timeout`` lab seconds pass."""
    deadline = clock.now() + lab_timeout
    while True:
        value = predicate()
        if value:
            return value
        if clock.now() > deadline:
            raise AssertionError("timed out after %s lab seconds waiting for %s" % (lab_timeout, what))
        time.sleep(0.01)
