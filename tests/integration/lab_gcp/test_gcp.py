"""The GCP stand-in driven with google-auth: instance templates, MIG get/patch/resize/delete/list, operations, IAM."""
from __future__ import annotations

import socket

from tests.lab.core import RequestLog
from tests.lab.gcp import GcpLab

from .conftest import PROJECT, ZONE, wait_for

MIG = "nomad-client-group"


def _seed(gcp_lab, size=3, policy=None):
    gcp_lab.create_template(PROJECT, "nomad-clients-a", {"machineType": "n2-standard-8"})
    gcp_lab.create_template(PROJECT, "nomad-clients-b", {"machineType": "n2-standard-8"})
    gcp_lab.create_mig(PROJECT, ZONE, MIG, "nomad-clients-a", size, "nomad-client", update_policy=policy)


def _mig_url(compute):
    return "%s/zones/%s/instanceGroupManagers/%s" % (compute, ZONE, MIG)


def _managed(session, compute):
    answer = session.post(_mig_url(compute) + "/listManagedInstances")
    assert answer.status_code == 200
    return answer.json().get("managedInstances", [])


def _template_of(managed):
    return managed["version"]["instanceTemplate"].rsplit("/", 1)[-1]


def test_instance_templates_and_global_operations(gcp_lab, session, compute, lab_clock):
    created = session.post(compute + "/global/instanceTemplates", json={"name": "tpl-1", "properties": {"machineType": "e2"}})
    assert created.status_code == 200
    operation = created.json()
    assert operation["kind"] == "compute#operation" and operation["status"] == "RUNNING"
    assert operation["targetLink"].endswith("/global/instanceTemplates/tpl-1") and "zone" not in operation
    assert operation["selfLink"].startswith(gcp_lab.base_url)  # following selfLinks stays in the lab
    waited = session.post(operation["selfLink"] + "/wait").json()
    assert waited["status"] == "DONE" and waited["progress"] == 100
    assert session.get(operation["selfLink"]).json()["status"] == "DONE"
    assert session.get(compute + "/global/instanceTemplates/tpl-1").json()["properties"] == {"machineType": "e2"}
    duplicate = session.post(compute + "/global/instanceTemplates", json={"name": "tpl-1"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["errors"][0]["reason"] == "alreadyExists"
    assert session.post(compute + "/global/instanceTemplates", json={"name": "Bad_Name"}).status_code == 400
    for number in range(2, 5):
        gcp_lab.create_template(PROJECT, "tpl-%d" % number)
    first = session.get(compute + "/global/instanceTemplates", params={"maxResults": 3}).json()
    second = session.get(compute + "/global/instanceTemplates", params={"maxResults": 3, "pageToken": first["nextPageToken"]}).json()
    assert len(first["items"]) == 3 and len(second["items"]) == 1 and "nextPageToken" not in second
    assert session.get(compute + "/global/instanceTemplates/nope").status_code == 404
    assert session.get(compute + "/global/operations/operation-nope").status_code == 404
    assert lab_clock.now() > 0


def test_mig_get_shape(gcp_lab, session, compute):
    _seed(gcp_lab)
    mig = session.get(_mig_url(compute)).json()
    assert mig["targetSize"] == 3 and mig["baseInstanceName"] == "nomad-client"
    assert mig["instanceTemplate"].endswith("/global/instanceTemplates/nomad-clients-a")
    assert mig["versions"] == [{"name": "primary", "instanceTemplate": mig["instanceTemplate"]}]
    assert mig["status"]["isStable"] is True and mig["currentActions"]["none"] == 3
    assert mig["updatePolicy"]["type"] == "PROACTIVE"
    assert mig["updatePolicy"]["maxSurge"] == {"fixed": 1, "calculated": 1}
    assert mig["listManagedInstancesResults"] == "PAGELESS"
    managed = _managed(session, compute)
    assert len(managed) == 3
    assert {(m["currentAction"], m["instanceStatus"], _template_of(m)) for m in managed} == {("NONE", "RUNNING", "nomad-clients-a")}
    instance = session.get(managed[0]["instance"]).json()
    assert instance["status"] == "RUNNING" and instance["name"] == managed[0]["name"]
    listed = session.get("%s/zones/%s/instanceGroupManagers" % (compute, ZONE)).json()
    assert [m["name"] for m in listed["items"]] == [MIG]
    missing = session.get("%s/zones/%s/instanceGroupManagers/nope" % (compute, ZONE))
    assert missing.status_code == 404 and missing.json()["error"]["errors"][0]["reason"] == "notFound"


def test_opportunistic_template_change_then_resize_and_delete(gcp_lab, session, compute, lab_clock):
    _seed(gcp_lab, policy={"type": "OPPORTUNISTIC"})
    url = _mig_url(compute)
    stale = session.patch(url, json={"instanceTemplate": "global/instanceTemplates/nomad-clients-b", "fingerprint": "stale"})
    assert stale.status_code == 412
    fingerprint = session.get(url).json()["fingerprint"]
    patched = session.patch(url, json={"instanceTemplate": "projects/%s/global/instanceTemplates/nomad-clients-b" % PROJECT,
                                       "fingerprint": fingerprint})
    assert patched.status_code == 200 and patched.json()["operationType"] == "compute.instanceGroupManagers.patch"
    assert session.get(url).json()["status"]["versionTarget"]["isReached"] is False
    assert {_template_of(m) for m in _managed(session, compute)} == {"nomad-clients-a"}  # nothing rolls on its own
    resized = session.post(url + "/resize", params={"size": 5})
    assert resized.status_code == 200
    creating = [m for m in _managed(session, compute) if m["currentAction"] == "CREATING"]
    assert len(creating) == 2 and {_template_of(m) for m in creating} == {"nomad-clients-b"}
    assert session.get(url).json()["status"]["isStable"] is False
    wait_for(lab_clock, lambda: session.get(url).json()["status"]["isStable"], 300, "the new instances")
    old = [m["instance"] for m in _managed(session, compute) if _template_of(m) == "nomad-clients-a"]
    deleted = session.post(url + "/deleteInstances", json={"instances": old})
    assert deleted.status_code == 200
    assert session.get(url).json()["targetSize"] == 2
    assert {m["currentAction"] for m in _managed(session, compute) if m["instance"] in old} == {"DELETING"}
    wait_for(lab_clock, lambda: len(_managed(session, compute)) == 2, 300, "the deletions")
    assert session.get(url).json()["status"]["versionTarget"]["isReached"] is True
    assert session.get(old[0]).status_code == 404
    not_member = session.post(url + "/deleteInstances", json={"instances": old[:1]})
    assert not_member.status_code == 400
    assert session.post(url + "/resize").status_code == 400  # size is required
    assert session.patch(url, json={"instanceTemplate": "global/instanceTemplates/nope"}).status_code == 404


def test_resize_down_prefers_outdated_and_create_recreate(gcp_lab, session, compute, lab_clock):
    _seed(gcp_lab, size=2, policy={"type": "OPPORTUNISTIC"})
    url = _mig_url(compute)
    session.post(url + "/setInstanceTemplate", json={"instanceTemplate": "global/instanceTemplates/nomad-clients-b"})
    session.post(url + "/createInstances", json={"instances": [{"name": "nomad-client-named"}]})
    wait_for(lab_clock, lambda: session.get(url).json()["status"]["isStable"], 300, "the named instance")
    names = {m["name"]: _template_of(m) for m in _managed(session, compute)}
    assert names["nomad-client-named"] == "nomad-clients-b" and len(names) == 3
    old = sorted(name for name, template in names.items() if template == "nomad-clients-a")
    before = {m["name"]: m["id"] for m in _managed(session, compute)}
    session.post(url + "/recreateInstances", json={"instances": ["zones/%s/instances/%s" % (ZONE, old[0])]})
    assert {m["name"]: m["currentAction"] for m in _managed(session, compute)}[old[0]] == "RECREATING"
    wait_for(lab_clock, lambda: session.get(url).json()["status"]["isStable"], 300, "the recreation")
    after = {m["name"]: (m["id"], _template_of(m)) for m in _managed(session, compute)}
    assert after[old[0]][0] != before[old[0]] and after[old[0]][1] == "nomad-clients-b"
    session.post(url + "/resize", params={"size": 2})
    deleting = [m["name"] for m in _managed(session, compute) if m["currentAction"] == "DELETING"]
    assert deleting == [old[1]]  # the outdated one goes first


def test_proactive_roll_respects_surge_and_unavailability(gcp_lab, session, compute, lab_clock):
    _seed(gcp_lab, size=3)
    url = _mig_url(compute)
    session.patch(url, json={"versions": [{"name": "primary", "instanceTemplate": "global/instanceTemplates/nomad-clients-b"}],
                             "updatePolicy": {"maxSurge": {"fixed": 1}, "maxUnavailable": {"fixed": 0}}})
    floor, peak = 3, 0
    while not (session.get(url).json()["status"]["isStable"] and
               {_template_of(m) for m in _managed(session, compute)} == {"nomad-clients-b"}):
        instances = gcp_lab.instances(PROJECT, ZONE, MIG)
        floor = min(floor, sum(1 for i in instances if i["status"] == "RUNNING" and i["current_action"] == "NONE"))
        peak = max(peak, sum(1 for i in instances if i["current_action"] != "DELETING"))
        assert lab_clock.now() < 1000, "the proactive roll did not finish"
    # maxUnavailable 0: never fewer than 3 running; maxSurge 1: never more than 4 (not counting those stopping).
    assert floor == 3 and peak == 4
    assert len(gcp_lab.removed) == 3


def test_proactive_recreate_keeps_names(gcp_lab, session, compute, lab_clock):
    _seed(gcp_lab, size=2, policy={"maxSurge": {"fixed": 0}, "replacementMethod": "RECREATE"})
    url = _mig_url(compute)
    names = sorted(m["name"] for m in _managed(session, compute))
    session.post(url + "/setInstanceTemplate", json={"instanceTemplate": "global/instanceTemplates/nomad-clients-b"})
    wait_for(lab_clock, lambda: {_template_of(m) for m in _managed(session, compute)} == {"nomad-clients-b"}
             and session.get(url).json()["status"]["isStable"], 400, "the recreation")
    assert sorted(m["name"] for m in _managed(session, compute)) == names
    bad = session.patch(url, json={"updatePolicy": {"maxSurge": {"fixed": 1}}})
    assert bad.status_code == 400  # RECREATE needs maxSurge 0


def test_paginated_list_managed_instances(gcp_lab, session, compute):
    _seed(gcp_lab, size=5)
    url = _mig_url(compute)
    session.patch(url, json={"listManagedInstancesResults": "PAGINATED"})
    first = session.post(url + "/listManagedInstances", params={"maxResults": 2}).json()
    names = [m["name"] for m in first["managedInstances"]]
    token = first["nextPageToken"]
    while token:
        page = session.post(url + "/listManagedInstances", params={"maxResults": 2, "pageToken": token}).json()
        names += [m["name"] for m in page["managedInstances"]]
        token = page.get("nextPageToken")
    assert len(set(names)) == 5
    session.post(url + "/resize", params={"size": 0})
    wait_for_empty = session.post(url + "/listManagedInstances").json()
    assert all(m["currentAction"] == "DELETING" for m in wait_for_empty.get("managedInstances", []))


def test_zonal_operation_wait(gcp_lab, session, compute):
    _seed(gcp_lab, size=1)
    operation = session.post(_mig_url(compute) + "/resize", params={"size": 2}).json()
    assert operation["status"] == "RUNNING" and operation["zone"].endswith("/zones/" + ZONE)
    assert operation["operationType"] == "compute.instanceGroupManagers.resize"
    assert operation["targetLink"] == session.get(_mig_url(compute)).json()["selfLink"]
    url = "%s/zones/%s/operations/%s" % (compute, ZONE, operation["name"])
    assert session.post(url + "/wait").json()["status"] == "DONE"


def test_iam_policy_get_set_with_etag(gcp_lab, session):
    email = gcp_lab.create_service_account(PROJECT, "nomad-autoscaler")
    url = "%s/v1/projects/%s/serviceAccounts/%s" % (gcp_lab.base_url, PROJECT, email)
    assert session.get(url).json()["email"] == email
    policy = session.post(url + ":getIamPolicy", json={"options": {"requestedPolicyVersion": 3}}).json()
    assert policy == {"version": 1, "etag": "ACAB"}
    binding = {"role": "roles/iam.workloadIdentityUser",
               "members": ["serviceAccount:%s.svc.id.goog[circleci-server/nomad-autoscaler]" % PROJECT]}
    written = session.post(url + ":setIamPolicy", json={"policy": dict(policy, bindings=[binding])})
    assert written.status_code == 200 and written.json()["bindings"] == [binding]
    assert written.json()["etag"] != "ACAB"
    stale = session.post(url + ":setIamPolicy", json={"policy": dict(policy, bindings=[])})
    assert stale.status_code == 409 and stale.json()["error"]["status"] == "ABORTED"
    assert "concurrent policy changes" in stale.json()["error"]["message"]
    assert gcp_lab.iam_policy(email)["bindings"] == [binding]  # the stale write changed nothing
    forced = session.post(url + ":setIamPolicy", json={"policy": {"bindings": []}})  # no etag: overwrite
    assert forced.status_code == 200 and "bindings" not in forced.json()
    wildcard = "%s/v1/projects/-/serviceAccounts/%s:getIamPolicy" % (gcp_lab.base_url, email)
    assert session.post(wildcard, json={}).json()["etag"] == forced.json()["etag"]
    invalid = session.post(url + ":setIamPolicy", json={"policy": {"bindings": [{"role": "roles/x", "members": ["bob"]}]}})
    assert invalid.status_code == 400 and invalid.json()["error"]["status"] == "INVALID_ARGUMENT"
    missing = session.post("%s/v1/projects/%s/serviceAccounts/nobody@x.iam.gserviceaccount.com:getIamPolicy"
                           % (gcp_lab.base_url, PROJECT), json={})
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_faults_and_request_log_keep_writes_only(gcp_lab, session, compute, lab_faults, lab_log):
    _seed(gcp_lab, size=1, policy={"type": "OPPORTUNISTIC"})
    email = gcp_lab.create_service_account(PROJECT, "sa")
    iam = "%s/v1/projects/%s/serviceAccounts/%s" % (gcp_lab.base_url, PROJECT, email)
    lab_faults.add("gcp", "POST", r"/resize$", nth=1, status=429, message="Rate Limit Exceeded")
    lab_faults.add("gcp", "POST", r":setIamPolicy$", nth=1, status=503, message="unavailable")
    throttled = session.post(_mig_url(compute) + "/resize", params={"size": 2})
    assert throttled.status_code == 429 and throttled.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert session.post(_mig_url(compute) + "/resize", params={"size": 2}).status_code == 200
    failed = session.post(iam + ":setIamPolicy", json={"policy": {"bindings": []}})
    assert failed.status_code == 503 and failed.json()["error"]["status"] == "UNAVAILABLE"
    lab_log.clear()
    # Reads, including the read-only POSTs, leave the request log empty (what check mode relies on).
    session.get(_mig_url(compute))
    _managed(session, compute)
    session.post(iam + ":getIamPolicy", json={})
    assert RequestLog.read(lab_log.path) == []
    session.patch(_mig_url(compute), json={"description": "rolled by the lab"})
    assert [(r["service"], r["method"], r["status"]) for r in RequestLog.read(lab_log.path)] == [("gcp", "PATCH", 200)]


def test_stop_frees_the_port_with_keep_alive_clients(lab_clock, session):
    lab = GcpLab(lab_clock)
    url = lab.start()
    lab.create_template(PROJECT, "t")
    assert session.get("%s/compute/v1/projects/%s/global/instanceTemplates/t" % (url, PROJECT)).status_code == 200
    port = int(url.rsplit(":", 1)[1])
    lab.stop()
    lab.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # free again
