"""Fixtures for the GCP stand-in: a fast lab clock, a request log, faults, the server, a google-auth session."""
from __future__ import annotations

import time

import pytest
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession

from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.gcp import GcpLab

PROJECT = "circleci-lab"
ZONE = "us-east1-b"


@pytest.fixture
def lab_clock():
    return LabClock(100.0)


@pytest.fixture
def lab_log(tmp_path, lab_clock):
    return RequestLog(str(tmp_path / "requests.jsonl"), lab_clock)


@pytest.fixture
def lab_faults():
    return FaultInjector()


@pytest.fixture
def gcp_lab(lab_clock, lab_log, lab_faults):
    lab = GcpLab(lab_clock, lab_log, lab_faults, op_delay=2.0, create_delay=60.0, delete_delay=20.0)
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def session():
    """What the collection's GCP code uses: google-auth's AuthorizedSession (anonymous against the lab)."""
    with AuthorizedSession(AnonymousCredentials()) as authorized:
        yield authorized


@pytest.fixture
def compute(gcp_lab):
    return "%s/compute/v1/projects/%s" % (gcp_lab.base_url, PROJECT)


def wait_for(clock, predicate, lab_timeout, what="condition"):
    deadline = clock.now() + lab_timeout
    while True:
        value = predicate()
        if value:
            return value
        if clock.now() > deadline:
            raise AssertionError("timed out after %s lab seconds waiting for %s" % (lab_timeout, what))
        time.sleep(0.005)
