# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest

from ansible_collections.circleci.server.plugins.module_utils.gcp_compute import (
    ComputeClient,
    GcpComputeError,
    matching_instances,
    without_port,
)


def test_a_rule_that_allowed_only_the_port_is_deleted():
    assert without_port({"allowed": [{"IPProtocol": "tcp", "ports": ["2376"]}]}, "tcp", 2376) == (None, [])


def test_other_ports_and_protocols_stay():
    rule = {"allowed": [{"IPProtocol": "tcp", "ports": ["2376", "22"]}, {"IPProtocol": "udp", "ports": ["2376"]}]}
    assert without_port(rule, "tcp", 2376) == ([{"IPProtocol": "tcp", "ports": ["22"]}, {"IPProtocol": "udp", "ports": ["2376"]}], [])


def test_a_range_or_an_all_ports_entry_is_reported_not_split():
    rule = {"allowed": [{"IPProtocol": "tcp", "ports": ["2000-3000"]}, {"IPProtocol": "all"}]}
    allowed, ranges = without_port(rule, "tcp", 2376)
    assert allowed == rule["allowed"]
    assert ranges == ["tcp:2000-3000", "all (every port)"]


def test_a_rule_without_the_port_is_unchanged():
    rule = {"allowed": [{"IPProtocol": "tcp", "ports": ["54782"]}]}
    assert without_port(rule, "tcp", 2376) == (rule["allowed"], [])


def test_leftovers_by_label_or_name():
    instances = [
        {"name": "vm-service-1", "zone": "https://x/zones/us-central1-a", "status": "RUNNING"},
        {"name": "build-7", "zone": "https://x/zones/us-central1-b", "status": "RUNNING", "labels": {"managedby": "circleci-vm-service"}},
        {"name": "nomad-client-1", "zone": "https://x/zones/us-central1-a", "status": "RUNNING", "labels": {"managedby": "terraform"}},
    ]
    found = matching_instances(instances, "managedby", "circleci-vm-service", "^vm-service-")
    assert [(vm["name"], vm["zone"]) for vm in found] == [("vm-service-1", "us-central1-a"), ("build-7", "us-central1-b")]


class FakeResponse:
    def __init__(self, status, payload):
        self.status_code = status
        self._payload = payload
        self.content = json.dumps(payload).encode()
        self.text = self.content.decode()

    def json(self):
        return self._payload


class FakeSession:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, json=None, timeout=None):  # pylint: disable=redefined-outer-name,unused-argument
        self.calls.append((method, url, json))
        return self.answers.pop(0)


def test_throttling_is_retried_and_pages_are_followed():
    session = FakeSession([
        FakeResponse(429, {"error": {"message": "slow down"}}),
        FakeResponse(200, {"items": {"zones/a": {"instances": [{"name": "one"}]}}, "nextPageToken": "p2"}),
        FakeResponse(200, {"items": {"zones/b": {"instances": [{"name": "two"}]}, "zones/c": {"warning": {}}}}),
    ])
    compute = ComputeClient(session, "proj", base_url="http://lab", sleep=lambda _s: None)
    assert [vm["name"] for vm in compute.instances()] == ["one", "two"]
    assert session.calls[-1][1] == "http://lab/compute/v1/projects/proj/aggregated/instances?pageToken=p2"


def test_a_missing_rule_is_none_and_an_error_says_what_answered():
    compute = ComputeClient(FakeSession([FakeResponse(404, {"error": {"message": "not found"}}),
                                         FakeResponse(403, {"error": {"message": "denied"}})]), "proj", sleep=lambda _s: None)
    assert compute.firewall("gone") is None
    with pytest.raises(GcpComputeError, match="answered 403: denied"):
        compute.firewall("secret")
