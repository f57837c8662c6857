"""The Nomad stand-in driven with python-nomad and plain HTTP: nodes, eligibility, drains, allocations."""
from __future__ import annotations

import nomad
import pytest
import requests

from tests.lab.core import RequestLog
from tests.lab.nomad import NS, NomadLab
from tests.lab.standin_http import make_tls_material

from .conftest import client_for, wait_for


def _drain_done(client, node_id):
    return client.node.get_node(node_id)["DrainStrategy"] is None


def test_status_agent_regions_and_errors(nomad_lab, nomad_client):
    assert nomad_client.status.leader.get_leader() == "127.0.0.1:4647"
    assert nomad_client.agent.get_agent()["config"]["Region"] == "global"
    assert nomad_client.regions.get_regions() == ["global"]
    other_region = requests.get(nomad_lab.base_url + "/v1/nodes", params={"region": "eu"}, timeout=5)
    assert other_region.status_code == 500 and other_region.text == "No path to region"
    assert requests.get(nomad_lab.base_url + "/v1/nodes", params={"region": "global"}, timeout=5).status_code == 200
    assert requests.get(nomad_lab.base_url + "/v1/nope", timeout=5).status_code == 404
    with pytest.raises(nomad.api.exceptions.URLNotFoundNomadException):
        nomad_client.node.get_node("00000000-0000-0000-0000-000000000000")
    filtered = requests.get(nomad_lab.base_url + "/v1/nodes", params={"filter": 'Status == "ready"'}, timeout=5)
    assert filtered.status_code == 400


def test_acl_token_required_when_set(lab_clock, lab_log, lab_faults):
    lab = NomadLab(lab_clock, lab_log, lab_faults, token="s3cr3t-token")
    lab.start()
    try:
        with pytest.raises(nomad.api.exceptions.URLNotAuthorizedNomadException):
            client_for(lab).nodes.get_nodes()
        with pytest.raises(nomad.api.exceptions.URLNotAuthorizedNomadException):
            client_for(lab, token="wrong").nodes.get_nodes()
        assert client_for(lab, token="s3cr3t-token").nodes.get_nodes() == []
        bearer = requests.get(lab.base_url + "/v1/nodes", headers={"Authorization": "Bearer s3cr3t-token"}, timeout=5)
        assert bearer.status_code == 200
        # Status endpoints need no token, as in Nomad.
        assert requests.get(lab.base_url + "/v1/status/leader", timeout=5).status_code == 200
    finally:
        lab.stop()
        lab.stop()  # idempotent


def test_node_list_and_read_shapes(nomad_lab, nomad_client):
    node_id = nomad_lab.register_node("ip-10-0-1-5.ec2.internal", {"unique.platform.aws.instance-id": "i-0abc"},
                                      node_class="linux-64bit")
    [stub] = nomad_client.nodes.get_nodes()
    assert stub["ID"] == node_id and stub["Status"] == "ready" and stub["SchedulingEligibility"] == "eligible"
    assert stub["NodeClass"] == "linux-64bit" and stub["Drain"] is False and stub["LastDrain"] is None
    # As in Nomad, a list stub has no unique attributes: read the node for the instance id.
    assert "Attributes" not in stub and "NodeResources" not in stub
    with_os = requests.get(nomad_lab.base_url + "/v1/nodes", params={"os": "true", "resources": "true"}, timeout=5).json()
    assert set(with_os[0]["Attributes"]) == {"os.name", "os.version"} and "NodeResources" in with_os[0]
    assert nomad_client.nodes.get_nodes(prefix=node_id[:4])[0]["ID"] == node_id
    assert nomad_client.nodes.get_nodes(prefix="ffff" if not node_id.startswith("ffff") else "0000") == []
    node = nomad_client.node.get_node(node_id)
    assert node["Attributes"]["unique.platform.aws.instance-id"] == "i-0abc"
    assert node["Attributes"]["unique.hostname"] == "ip-10-0-1-5.ec2.internal"
    assert node["DrainStrategy"] is None and node["Events"][0]["Message"] == "Node registered"


def test_scheduler_uses_only_ready_eligible_nodes_with_room(nomad_lab, nomad_client, lab_clock):
    node_a = nomad_lab.register_node("a", slots=2)
    node_b = nomad_lab.register_node("b", slots=2)
    nomad_client.node.eligible_node(node_a, ineligible=True)
    for number in range(3):
        nomad_lab.submit_job("job-%d" % number, duration=1000)
    stats = nomad_lab.stats()
    assert stats["per_node"][node_b]["running"] == 2 and stats["per_node"][node_a]["running"] == 0
    assert stats["pending"] == 1
    assert [j["Status"] for j in nomad_client.jobs.get_jobs()].count("pending") == 1
    nomad_client.node.eligible_node(node_a, eligible=True)
    assert nomad_lab.stats()["per_node"][node_a]["running"] == 1
    # A node that is still initializing gets nothing.
    late = nomad_lab.register_node("late", at=lab_clock.now() + 10_000)
    assert late not in [n["ID"] for n in nomad_client.nodes.get_nodes()]


def test_drain_with_long_enough_deadline_kills_nothing(nomad_lab, nomad_client, lab_clock):
    old = nomad_lab.register_node("old", slots=2)
    nomad_lab.submit_job("build-1", duration=100)
    nomad_lab.submit_job("build-2", duration=150)
    assert nomad_lab.stats()["per_node"][old]["running"] == 2
    new = nomad_lab.register_node("new", slots=4)
    started = lab_clock.now()
    nomad_client.node.drain_node_with_spec(old, {"Deadline": 300 * NS, "IgnoreSystemJobs": True})
    node = nomad_client.node.get_node(old)
    assert node["Drain"] is True and node["SchedulingEligibility"] == "ineligible"
    assert node["DrainStrategy"]["Deadline"] == 300 * NS and node["LastDrain"]["Status"] == "draining"
    # A draining node gets no new allocation: new work lands on the other node.
    nomad_lab.submit_job("build-3", duration=30)
    assert nomad_lab.stats()["per_node"][new]["running"] == 1
    wait_for(lab_clock, lambda: _drain_done(nomad_client, old), 400, "the drain to finish")
    node = nomad_client.node.get_node(old)
    assert node["LastDrain"]["Status"] == "complete" and node["SchedulingEligibility"] == "ineligible"
    stats = nomad_lab.stats()
    assert stats["killed"] == 0 and stats["per_node"][old]["completed"] == 2
    # The drain ended when the last job did (150 s), not at the deadline (300 s).
    assert lab_clock.now() - started < 280
    allocs = nomad_client.node.get_allocations(old)
    assert {a["ClientStatus"] for a in allocs} == {"complete"} and all(a["DesiredStatus"] == "run" for a in allocs)


def test_drain_with_short_deadline_counts_killed(nomad_lab, nomad_client, lab_clock):
    old = nomad_lab.register_node("old", slots=3)
    for number in range(3):
        nomad_lab.submit_job("long-%d" % number, duration=600 if number < 2 else 5)
    nomad_client.node.drain_node_with_spec(old, {"Deadline": 30 * NS, "IgnoreSystemJobs": False})
    wait_for(lab_clock, lambda: _drain_done(nomad_client, old), 200, "the deadline")
    stats = nomad_lab.stats()
    assert stats["killed"] == 2 and stats["killed_by_reason"] == {"drain_deadline": 2}
    assert stats["completed"] == 1 and stats["per_node"][old]["killed"] == 2
    killed = [a for a in nomad_client.node.get_allocations(old) if a["DesiredStatus"] == "stop"]
    assert len(killed) == 2 and all(a["TaskStates"]["build"]["Events"][-1]["Type"] == "Killed" for a in killed)
    assert nomad_client.node.get_node(old)["LastDrain"]["Status"] == "complete"


def test_force_drain_and_no_deadline(nomad_lab, nomad_client, lab_clock):
    forced = nomad_lab.register_node("forced", slots=1)
    nomad_lab.submit_job("victim", duration=500)
    patient = nomad_lab.register_node("patient", slots=1)
    nomad_lab.submit_job("survivor", duration=200)
    nomad_client.node.drain_node_with_spec(forced, {"Deadline": -1})
    assert _drain_done(nomad_client, forced) and nomad_lab.stats()["killed"] == 1
    nomad_client.node.drain_node_with_spec(patient, {"Deadline": 0})
    strategy = nomad_client.node.get_node(patient)["DrainStrategy"]
    assert strategy["ForceDeadline"].startswith("0001-01-01")  # no deadline
    wait_for(lab_clock, lambda: _drain_done(nomad_client, patient), 300, "the job to finish")
    assert nomad_lab.stats()["killed"] == 1 and nomad_lab.stats()["completed"] == 1


def test_cancel_drain_and_eligibility_rules(nomad_lab, nomad_client):
    node_id = nomad_lab.register_node("n")
    nomad_lab.submit_job("keep-busy", duration=10_000)
    nomad_client.node.drain_node_with_spec(node_id, {"Deadline": 3600 * NS})
    with pytest.raises(nomad.api.exceptions.BaseNomadException):
        nomad_client.node.eligible_node(node_id, eligible=True)  # not while draining
    nomad_client.node.drain_node_with_spec(node_id, None)
    node = nomad_client.node.get_node(node_id)
    assert node["DrainStrategy"] is None and node["LastDrain"]["Status"] == "canceled"
    assert node["SchedulingEligibility"] == "ineligible"
    nomad_client.node.drain_node_with_spec(node_id, {"Deadline": 3600 * NS})
    nomad_client.node.drain_node_with_spec(node_id, None, mark_eligible=True)
    assert nomad_client.node.get_node(node_id)["SchedulingEligibility"] == "eligible"
    bad = requests.post(nomad_lab.base_url + "/v1/node/%s/drain" % node_id, json={"DrainSpec": {"Deadline": "1h"}}, timeout=5)
    assert bad.status_code == 400
    empty = requests.post(nomad_lab.base_url + "/v1/node/%s/drain" % node_id, timeout=5)
    assert empty.status_code == 400 and "EOF" in empty.text
    assert nomad_lab.stats()["killed"] == 0


def test_system_jobs_stay_with_ignore_system_jobs(nomad_lab, nomad_client, lab_clock):
    first = nomad_lab.register_node("first")
    second = nomad_lab.register_node("second")
    nomad_lab.submit_job("telegraf", type="system")
    assert nomad_lab.stats()["system_running"] == 2
    nomad_client.node.drain_node_with_spec(first, {"Deadline": 60 * NS, "IgnoreSystemJobs": True})
    nomad_client.node.drain_node_with_spec(second, {"Deadline": 60 * NS, "IgnoreSystemJobs": False})
    wait_for(lab_clock, lambda: _drain_done(nomad_client, first) and _drain_done(nomad_client, second), 100, "drains")
    running = {a["NodeID"] for a in nomad_client.allocations.get_allocations() if a["ClientStatus"] == "running"}
    assert running == {first}
    assert nomad_lab.stats()["killed"] == 0  # stopping a system job is not killing a CI job


def test_service_allocations_migrate_on_drain(nomad_lab, nomad_client):
    first = nomad_lab.register_node("first", slots=1)
    nomad_lab.submit_job("web", type="service")
    second = nomad_lab.register_node("second", slots=1)
    nomad_client.node.drain_node_with_spec(first, {"Deadline": 600 * NS})
    stats = nomad_lab.stats()
    assert stats["migrated"] == 1 and stats["killed"] == 0 and stats["per_node"][second]["running"] == 1
    assert _drain_done(nomad_client, first)


def test_node_down_loses_allocations(nomad_lab, nomad_client):
    node_id = nomad_lab.register_node("doomed", slots=2)
    nomad_lab.submit_job("a", duration=500)
    nomad_lab.submit_job("b", duration=500)
    nomad_lab.mark_down(node_id)
    assert nomad_client.node.get_node(node_id)["Status"] == "down"
    stats = nomad_lab.stats()
    assert stats["killed"] == 2 and stats["killed_by_reason"] == {"node_down": 2}
    assert {a["ClientStatus"] for a in nomad_client.node.get_allocations(node_id)} == {"lost"}
    nomad_client.node.purge_node(node_id)
    assert nomad_client.nodes.get_nodes() == []


def test_jobs_allocations_over_http(nomad_lab, nomad_client, lab_clock):
    nomad_lab.register_node("worker", slots=4)
    job = {"Job": {"ID": "http-job", "Type": "batch", "Meta": {"lab_duration": "150"}, "TaskGroups": [{"Name": "g", "Count": 2}]}}
    assert "EvalID" in nomad_client.jobs.register_job(job)
    assert nomad_client.job.get_job("http-job")["TaskGroups"][0]["Count"] == 2
    allocs = nomad_client.job.get_allocations("http-job")
    assert len(allocs) == 2 and {a["ClientStatus"] for a in allocs} == {"running"}
    full = nomad_client.allocation.get_allocation(allocs[0]["ID"])
    assert full["Job"]["ID"] == "http-job" and full["NodeName"] == "worker"
    nomad_client.allocation.stop_allocation(allocs[0]["ID"])
    assert nomad_lab.stats()["killed_by_reason"] == {"stopped": 1}
    wait_for(lab_clock, lambda: nomad_client.job.get_job("http-job")["Status"] == "dead", 300, "the job to finish")
    assert nomad_client.job.get_summary("http-job")["Summary"]["http-job"]["Complete"] == 2


def test_blocking_query_returns_when_the_index_moves(nomad_lab, lab_clock):
    nomad_lab.register_node("worker")
    nomad_lab.submit_job("short", duration=50)
    index = int(requests.get(nomad_lab.base_url + "/v1/allocations", timeout=5).headers["X-Nomad-Index"])
    before = lab_clock.now()
    answer = requests.get(nomad_lab.base_url + "/v1/allocations", params={"index": index, "wait": "120s"}, timeout=10)
    assert int(answer.headers["X-Nomad-Index"]) > index
    assert answer.json()[0]["ClientStatus"] == "complete" and lab_clock.now() - before < 100


def test_faults_and_request_log(nomad_lab, nomad_client, lab_faults, lab_log):
    node_id = nomad_lab.register_node("n")
    lab_faults.add("nomad", "POST", r"/drain$", nth=1, status=503, message="injected")
    with pytest.raises(nomad.api.exceptions.BaseNomadException):
        nomad_client.node.drain_node_with_spec(node_id, {"Deadline": NS})
    nomad_client.node.drain_node_with_spec(node_id, {"Deadline": NS})  # the fault fires once
    nomad_client.nodes.get_nodes()
    records = RequestLog.read(lab_log.path)
    assert [(r["service"], r["method"], r["status"]) for r in records] == [("nomad", "POST", 503), ("nomad", "POST", 200)]
    assert records[0]["path"] == "/v1/node/%s/drain" % node_id


def test_capacity_timeline(nomad_lab, nomad_client, lab_clock):
    first = nomad_lab.register_node("first")
    nomad_lab.register_node("second")
    mark = lab_clock.now()
    nomad_client.node.eligible_node(first, ineligible=True)
    assert nomad_lab.capacity_floor("ready_eligible", since=mark) == 1
    assert nomad_lab.capacity_floor("ready", since=mark) == 2
    nomad_lab.mark_down(first)
    assert nomad_lab.capacity_floor("ready") == 1
    assert nomad_lab.capacity_timeline()[-1]["ready"] == 1


def test_https_with_mutual_tls(lab_clock, lab_log, lab_faults, tmp_path):
    tls = make_tls_material(str(tmp_path / "tls"))
    lab = NomadLab(lab_clock, lab_log, lab_faults, tls=tls, mtls=True)
    url = lab.start()
    try:
        assert url.startswith("https://127.0.0.1:")
        lab.register_node("secure")
        answer = requests.get(url + "/v1/nodes", verify=tls["ca"], cert=(tls["client"], tls["client-key"]), timeout=5)
        assert answer.status_code == 200 and answer.json()[0]["Name"] == "secure"
        client = nomad.Nomad(address=url, verify=tls["ca"], cert=(tls["client"], tls["client-key"]), timeout=5)
        assert client.nodes.get_nodes()[0]["Name"] == "secure"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url + "/v1/nodes", verify=tls["ca"], timeout=5)  # no client certificate
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/v1/nodes", cert=(tls["client"], tls["client-key"]), timeout=5)  # unknown CA
    finally:
        lab.stop()


def test_reset_forgets_everything(nomad_lab, nomad_client):
    nomad_lab.register_node("n")
    nomad_lab.submit_job("j", duration=100)
    nomad_lab.reset()
    assert nomad_client.nodes.get_nodes() == [] and nomad_client.jobs.get_jobs() == []
    assert nomad_lab.stats()["running"] == 0
