"""Fixtures of the AWS stand-in's tests: one lab per module, emptied before each test."""
from __future__ import annotations

import pytest

from tests.lab.aws import AwsLab
from tests.lab.core import FaultInjector, LabClock, RequestLog

# 100 lab seconds per wall second: a 60 s instance warm-up takes 0.6 s.
CLOCK_FACTOR = 100.0


@pytest.fixture(scope="module")
def aws_lab_module(tmp_path_factory):
    clock = LabClock(CLOCK_FACTOR)
    log = RequestLog(str(tmp_path_factory.mktemp("aws-lab") / "requests.jsonl"), clock)
    lab = AwsLab(clock, log, FaultInjector())
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def aws_lab(aws_lab_module):
    """A started AwsLab with empty moto state, an empty request log and no faults."""
    aws_lab_module.reset()
    aws_lab_module.request_log.clear()
    aws_lab_module.faults.clear()
    return aws_lab_module


def logged(lab):
    """The (path, status) of every request the lab logged, in order."""
    return [(entry["path"], entry["status"]) for entry in RequestLog.read(lab.request_log.path)]
