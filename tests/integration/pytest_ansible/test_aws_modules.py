"""Modules of the collection run through pytest-ansible's ``localhost`` fixture (Ansible's own executor, in
this process) against the AWS stand-in: what a module returns, and the writes the lab saw. pytest-ansible
is pinned in requirements/test.txt (hacking/setup.sh installs it); see tests/integration/conftest.py for
how it is kept from rewriting ANSIBLE_COLLECTIONS_PATH."""
from __future__ import annotations

import pytest

from tests.lab.aws import ACCESS_KEY_ID, SECRET_ACCESS_KEY, AwsLab
from tests.lab.core import FaultInjector, LabClock, RequestLog


@pytest.fixture(scope="module")
def aws_lab_module(tmp_path_factory):
    clock = LabClock(100.0)
    lab = AwsLab(clock, RequestLog(str(tmp_path_factory.mktemp("aws-lab") / "requests.jsonl"), clock), FaultInjector())
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def aws_lab(aws_lab_module):
    aws_lab_module.reset()
    aws_lab_module.request_log.clear()
    return aws_lab_module


def logged(lab):
    return [(entry["path"], entry["status"]) for entry in lab.request_log.entries()]


def _aws(lab) -> dict:
    return {"endpoint_url": lab.url, "region": lab.region, "access_key": ACCESS_KEY_ID, "secret_key": SECRET_ACCESS_KEY}


def _versioning(localhost, lab, **args) -> dict:
    """The module's result, as pytest-ansible's dispatcher returns it for the one host."""
    adhoc = getattr(localhost, "circleci.server.s3_bucket_versioning")(**_aws(lab), **args)
    (result,) = adhoc.contacted.values()
    return result


def test_s3_bucket_versioning_reads_then_enables_once(localhost, aws_lab):
    aws_lab.client("s3").create_bucket(Bucket="circleci-data")
    aws_lab.request_log.clear()
    read = _versioning(localhost, aws_lab, bucket="circleci-data")
    assert not read.get("failed") and read["changed"] is False and read["versioning"] == "Disabled"
    assert logged(aws_lab) == []
    enabled = _versioning(localhost, aws_lab, bucket="circleci-data", status="Enabled")
    assert enabled["changed"] is True and enabled["versioning"] == "Enabled" and enabled["previous"] == "Disabled"
    again = _versioning(localhost, aws_lab, bucket="circleci-data", status="Enabled")
    assert again["changed"] is False
    assert logged(aws_lab) == [("s3/circleci-data?versioning", 200)]


def test_s3_bucket_versioning_refuses_a_missing_bucket_without_writing(localhost, aws_lab):
    missing = _versioning(localhost, aws_lab, bucket="no-such-bucket", status="Enabled")
    assert missing["failed"] is True and "no-such-bucket" in missing["msg"]
    assert logged(aws_lab) == []
