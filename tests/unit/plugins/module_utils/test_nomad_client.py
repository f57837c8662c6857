# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest

from ansible_collections.circleci.server.plugins.module_utils import nomad


class Response:
    def __init__(self, status, body=None):
        self.status_code = status
        self.text = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
        self.content = self.text.encode()

    def json(self):
        return json.loads(self.text)


class Session:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []
        self.headers = {}
        self.verify = True
        self.cert = None

    def request(self, method, url, params=None, data=None, timeout=None):
        self.calls.append((method, url, params, json.loads(data) if data else None))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(answers, **kwargs):
    session = Session(answers)
    sleeps = []
    return nomad.NomadClient("https://nomad:4646/", session=session, sleep=sleeps.append, **kwargs), session, sleeps


def test_token_region_and_tls_are_applied():
    c, session, dummy = client([Response(200, [])], token="s3cr3t", region="global", ca_cert="/ca.pem", client_cert="/c.pem", client_key="/k.pem")
    assert c.nodes() == []
    assert session.headers["X-Nomad-Token"] == "s3cr3t"
    assert session.verify == "/ca.pem" and session.cert == ("/c.pem", "/k.pem")
    assert session.calls[0][:3] == ("GET", "https://nomad:4646/v1/nodes", {"region": "global"})


def test_mtls_needs_both_halves():
    with pytest.raises(nomad.NomadError, match="both"):
        nomad.NomadClient("https://nomad:4646", client_cert="/c.pem", session=Session([]))


def test_empty_address_is_explained():
    with pytest.raises(nomad.NomadError, match="nomad_address"):
        nomad.NomadClient("", session=Session([]))


def test_transient_errors_are_retried_with_bounded_backoff():
    c, session, sleeps = client([Response(503, "busy"), ConnectionError("reset"), Response(200, {"ID": "n1"})])
    assert c.node("n1") == {"ID": "n1"}
    assert len(sleeps) == 2 and all(0 < s <= 10 for s in sleeps)


def test_retries_give_up_with_a_clear_message():
    c, dummy, dummy2 = client([ConnectionError("refused")] * 3, retries=2)
    with pytest.raises(nomad.NomadError, match="Cannot reach Nomad"):
        c.nodes()


def test_permission_denied_says_what_token_is_needed():
    c, dummy, dummy2 = client([Response(403, "Permission denied")])
    with pytest.raises(nomad.NomadError, match="node:write"):
        c.set_eligibility("n1", False)


def test_drain_and_eligibility_bodies():
    c, session, dummy = client([Response(200, {}), Response(200, {}), Response(200, {})])
    c.set_eligibility("n1", False)
    c.drain("n1", 0, ignore_system_jobs=True, meta={"k": "v"})
    c.drain("n1", 90)
    assert session.calls[0][3] == {"NodeID": "n1", "Eligibility": "ineligible"}
    assert session.calls[1][1].endswith("/v1/node/n1/drain")
    assert session.calls[1][3] == {"NodeID": "n1", "DrainSpec": {"Deadline": 0, "IgnoreSystemJobs": True}, "Meta": {"k": "v"}}
    assert session.calls[2][3]["DrainSpec"]["Deadline"] == 90 * 1000000000


def test_allocation_classification():
    allocs = [
        {"ID": "a", "ClientStatus": "running", "Job": {"Type": "batch"}},
        {"ID": "b", "ClientStatus": "running", "Job": {"Type": "system"}},
        {"ID": "c", "ClientStatus": "complete", "DesiredStatus": "run", "Job": {"Type": "batch"}},
        {"ID": "d", "ClientStatus": "pending", "Job": {"Type": "batch"}},
    ]
    assert [a["ID"] for a in nomad.active_allocations(allocs)] == ["a", "b", "d"]
    assert [a["ID"] for a in nomad.active_allocations(allocs, ignore_system_jobs=True)] == ["a", "d"]
    assert nomad.was_killed({"ClientStatus": "complete", "DesiredStatus": "stop", "Job": {"Type": "batch"}})
    assert nomad.was_killed({"ClientStatus": "lost", "DesiredStatus": "run", "Job": {"Type": "batch"}})
    assert not nomad.was_killed({"ClientStatus": "complete", "DesiredStatus": "run", "Job": {"Type": "batch"}})
    assert not nomad.was_killed({"ClientStatus": "complete", "DesiredStatus": "stop", "Job": {"Type": "service"}})


def test_node_state_helpers():
    assert nomad.node_ready_eligible({"Status": "ready", "SchedulingEligibility": "eligible", "Drain": False})
    assert not nomad.node_ready_eligible({"Status": "ready", "SchedulingEligibility": "eligible", "DrainStrategy": {}})
    assert not nomad.node_ready_eligible({"Status": "initializing", "SchedulingEligibility": "eligible"})


class Clock:
    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


class SlowSession(Session):
    """Every attempt takes the whole read timeout it is given, then fails (an endpoint that never answers)."""

    def __init__(self, clock):
        super().__init__([])
        self.clock = clock
        self.timeouts = []

    def request(self, method, url, params=None, data=None, timeout=None):
        self.timeouts.append(timeout)
        self.clock.t += timeout[1]
        raise TimeoutError("read timed out")


def test_the_timeout_bounds_the_call_with_its_retries_counted():
    clock = Clock()
    c = nomad.NomadClient("https://nomad:4646", session=SlowSession(clock), sleep=clock.sleep, now=clock.now, timeout=20)
    with pytest.raises(nomad.NomadError, match="within nomad_timeout=20s"):
        c.nodes()
    assert clock.t <= 20.5


def test_refused_connections_are_retried_until_the_timeout_not_a_fixed_count():
    clock = Clock()
    session = Session([ConnectionError("refused")] * 30)
    c = nomad.NomadClient("https://nomad:4646", session=session, sleep=clock.sleep, now=clock.now, timeout=25, retries=100)
    with pytest.raises(nomad.NomadError, match="Cannot reach Nomad"):
        c.nodes()
    assert clock.t <= 25 and len(session.calls) >= 5


def test_by_default_a_refused_connection_is_tried_nine_times_when_the_timeout_allows():
    """The roll's Nomad calls outlive a Nomad server restart: 8 retries by default (it gave up after 4)."""
    clock = Clock()
    session = Session([ConnectionError("refused")] * 30)
    c = nomad.NomadClient("https://nomad:4646", session=session, sleep=clock.sleep, now=clock.now, timeout=300)
    with pytest.raises(nomad.NomadError, match=r"\(9 attempt\(s\)\)"):
        c.nodes()
    assert len(session.calls) == 9


def test_a_never_answering_endpoint_fails_within_the_timeout():
    import socket
    import time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts (the kernel does), never answers
    try:
        c = nomad.NomadClient("http://127.0.0.1:%d" % listener.getsockname()[1], timeout=1.5)
        started = time.monotonic()
        with pytest.raises(nomad.NomadError, match="nomad_timeout=1.5s"):
            c.nodes()
        assert time.monotonic() - started < 4
    finally:
        listener.close()


def test_timeout_must_be_positive():
    with pytest.raises(nomad.NomadError, match="nomad_timeout"):
        nomad.NomadClient("https://nomad:4646", session=Session([]), timeout=0)
