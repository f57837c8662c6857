# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GCP provider against a fake Compute v1 session."""

from __future__ import annotations

import json

import pytest

from ansible_collections.circleci.server.plugins.module_utils.roll.gcp import GcpMigProvider
from ansible_collections.circleci.server.plugins.module_utils.roll.model import PENDING, ProviderError

BASE = "http://lab/compute/v1"
MIG = BASE + "/projects/p/zones/z/instanceGroupManagers/nomad-client-group"


class Response:
    def __init__(self, status, body):
        self.status_code = status
        self.text = json.dumps(body) if not isinstance(body, str) else body

    def json(self):
        return json.loads(self.text)


class FakeCompute:
    def __init__(self):
        self.template = BASE + "/projects/p/global/instanceTemplates/t2"
        self.instances = {"c-1": "t1", "c-2": "t1", "c-3": "t2"}
        self.target = 3
        self.calls = []
        self.errors = []
        self.ops = {}
        self.metadata = {"fingerprint": "f0", "items": [{"key": "ssh-keys", "value": "ops:ssh-ed25519 AAAA"}]}
        self.before_metadata_write = None  # another writer, called just before a setCommonInstanceMetadata lands

    def request(self, method, url, params=None, json=None, timeout=None):  # pylint: disable=redefined-outer-name,unused-argument
        self.calls.append((method, url.replace(BASE, ""), params, json))
        if self.errors:
            return self.errors.pop(0)
        if url == BASE + "/projects/p":
            return Response(200, {"name": "p", "commonInstanceMetadata": dict(self.metadata)})
        if url == BASE + "/projects/p/setCommonInstanceMetadata":
            if self.before_metadata_write:
                self.before_metadata_write(self)
            if json.get("fingerprint") != self.metadata["fingerprint"]:
                return Response(412, {"error": {"code": 412, "message": "Supplied fingerprint does not match current metadata fingerprint."}})
            self.metadata = {"fingerprint": "f%d" % (int(self.metadata["fingerprint"][1:]) + 1), "items": json["items"]}
            return self._op()
        if url == MIG and method == "PATCH":
            return self._op()
        if url == MIG:
            return Response(200, {"name": "nomad-client-group", "targetSize": self.target, "instanceTemplate": self.template,
                                  "versions": [{"name": "primary", "instanceTemplate": self.template}]})
        if url == MIG + "/listManagedInstances":
            items = [{"instance": BASE + "/projects/p/zones/z/instances/" + name, "id": str(100 + i), "instanceStatus": "RUNNING",
                      "currentAction": "CREATING" if name == "c-9" else "NONE",
                      "version": {"instanceTemplate": BASE + "/projects/p/global/instanceTemplates/" + tpl}}
                     for i, (name, tpl) in enumerate(sorted(self.instances.items()))]
            if not params.get("pageToken"):
                return Response(200, {"managedInstances": items[:2], "nextPageToken": "x"})
            return Response(200, {"managedInstances": items[2:]})
        if url == MIG + "/resize":
            self.target = params["size"]
            while len(self.instances) < self.target:
                self.instances["c-%d" % (len(self.instances) + 6)] = "t2"
            return self._op()
        if url == MIG + "/deleteInstances":
            for link in json["instances"]:
                del self.instances[link.rsplit("/", 1)[1]]
                self.target -= 1
            return self._op()
        if "/operations/" in url:
            name = url.rsplit("/", 1)[1]
            self.ops[name]["status"] = "DONE"
            return Response(200, self.ops[name])
        return Response(404, "not found")

    def _op(self):
        name = "op-%d" % len(self.ops)
        self.ops[name] = {"name": name, "status": "RUNNING", "selfLink": BASE + "/projects/p/zones/z/operations/" + name}
        return Response(200, dict(self.ops[name]))


def provider(fake, **kwargs):
    return GcpMigProvider("p", "nomad-client-group", fake, zone="z", base_url=BASE, sleep=lambda s: None, **kwargs)


def test_outdated_instances_and_paging():
    fake = FakeCompute()
    group = provider(fake).describe()
    assert group.desired == 3 and group.max_size is None
    assert sorted(i.id for i in group.outdated()) == ["c-1", "c-2"]
    assert "instance template t1" in group.outdated()[0].reason
    assert [c[2] for c in fake.calls if c[1].endswith("listManagedInstances")] == [{"maxResults": 500}, {"maxResults": 500, "pageToken": "x"}]


def test_resize_and_delete_wait_for_operations():
    fake = FakeCompute()
    prov = provider(fake)
    prov.describe()
    prov.set_capacity(5)
    assert fake.target == 5 and all(op["status"] == "DONE" for op in fake.ops.values())
    prov.terminate(["c-1"])
    assert "c-1" not in fake.instances and fake.target == 4
    delete = [c for c in fake.calls if c[1].endswith("deleteInstances")][0]
    assert delete[3]["instances"] == [BASE + "/projects/p/zones/z/instances/c-1"]


def test_rate_limits_are_retried_then_errors_explained():
    fake = FakeCompute()
    fake.errors = [Response(429, "slow down"), Response(403, '{"error": {"errors": [{"reason": "rateLimitExceeded"}]}}')]
    assert provider(fake).describe().desired == 3
    fake.errors = [Response(403, "forbidden")]
    with pytest.raises(ProviderError, match="instanceAdmin"):
        provider(fake).describe()
    fake.errors = [Response(404, "nope")]
    with pytest.raises(ProviderError, match="nomad-client-group"):
        provider(fake).describe()


def test_failed_operation_is_reported():
    fake = FakeCompute()
    prov = provider(fake)
    op = {"name": "op-x", "status": "DONE", "error": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "CPUS"}]}}
    with pytest.raises(ProviderError, match="QUOTA_EXCEEDED: CPUS"):
        prov._wait_operation(op, "resize")


def test_zone_or_region_exactly_one():
    with pytest.raises(ProviderError, match="exactly one"):
        GcpMigProvider("p", "g", FakeCompute(), zone="z", region="r")


def test_creating_instances_are_pending():
    fake = FakeCompute()
    fake.instances["c-9"] = "t2"
    group = provider(fake).describe()
    assert group.by_id()["c-9"].state == PENDING


def test_proactive_update_policy_blocks_the_roll():
    fake = FakeCompute()
    original = fake.request

    def with_policy(method, url, params=None, json=None, timeout=None):  # pylint: disable=redefined-outer-name,unused-argument
        response = original(method, url, params=params, json=json)
        if url == MIG and response.status_code == 200:
            body = response.json()
            body["updatePolicy"] = {"type": "PROACTIVE"}
            return Response(200, body)
        return response
    fake.request = with_policy
    group = provider(fake).describe()
    assert group.blockers and "OPPORTUNISTIC" in group.blockers[0]


def test_instance_template_option_patches_template_and_policy_once():
    fake = FakeCompute()
    original = fake.request
    patches = []

    def with_patch(method, url, params=None, json=None, timeout=None):  # pylint: disable=redefined-outer-name,unused-argument
        if method == "PATCH":
            patches.append(json)
            fake.template = BASE + "/projects/p/global/instanceTemplates/" + json["versions"][0]["instanceTemplate"].rsplit("/", 1)[1]
            return fake._op()
        return original(method, url, params=params, json=json)
    fake.request = with_patch
    prov = provider(fake, instance_template="t3")
    group = prov.describe()
    assert len(group.outdated()) == 3 and not group.blockers
    assert prov.apply_configuration() is True
    assert patches[0]["updatePolicy"] == {"type": "OPPORTUNISTIC"}
    assert patches[0]["versions"] == [{"name": "primary", "instanceTemplate": "projects/p/global/instanceTemplates/t3"}]
    prov.describe()
    assert prov.apply_configuration() is False and len(patches) == 1


RECORD = "circleci-server-nomad-client-roll--z--nomad-client-group"


def items(fake):
    return {item["key"]: item["value"] for item in fake.metadata["items"]}


def test_the_roll_state_lives_in_project_metadata_beside_the_other_items():
    fake = FakeCompute()
    gcp = provider(fake)
    assert gcp.load_state() is None
    gcp.save_state({"desired": 3, "max_size": None, "suspended": []})
    assert set(items(fake)) == {"ssh-keys", RECORD} and items(fake)["ssh-keys"] == "ops:ssh-ed25519 AAAA"
    # a new run (a new process) finds it: a stop between the surge and the first drain comes back to size 3
    fake.target = 5
    again = provider(fake)
    group = again.describe()
    assert group.desired == 5 and again.load_state() == {"desired": 3, "max_size": None, "suspended": []}
    again.clear_state()
    assert items(fake) == {"ssh-keys": "ops:ssh-ed25519 AAAA"}


def test_the_lock_and_the_state_go_in_one_write_and_the_lock_expires():
    fake = FakeCompute()
    wall = {"t": 1_800_000_000.0}
    first, second = provider(fake, wall=lambda: wall["t"]), provider(fake, wall=lambda: wall["t"])
    first.acquire_lock("a:1:x", 600, state={"desired": 3, "suspended": ["autoscaler-mode=a=ON"]})
    writes = [c for c in fake.calls if c[1].endswith("/setCommonInstanceMetadata")]
    assert len(writes) == 1 and first.load_state()["suspended"] == ["autoscaler-mode=a=ON"] and first.lock_holder()["owner"] == "a:1:x"
    with pytest.raises(ProviderError, match="a:1:x"):
        second.acquire_lock("b:2:y", 600)
    wall["t"] += 601
    second.acquire_lock("b:2:y", 600)
    second.release_lock("b:2:y")
    assert json.loads(items(fake)[RECORD]) == {"state": {"desired": 3, "suspended": ["autoscaler-mode=a=ON"]}}


def test_of_two_rolls_taking_the_lock_at_once_the_second_write_is_refused_and_stops_on_reading_the_first():
    """Both read no lock; the other one's write lands first: ours, on the old fingerprint, gets a 412, reads again and stops."""
    fake = FakeCompute()
    other = provider(fake)

    def the_other_roll_writes_first(compute):
        compute.before_metadata_write = None
        other.acquire_lock("b:2:y", 600, state={"desired": 3})
    fake.before_metadata_write = the_other_roll_writes_first
    with pytest.raises(ProviderError, match="b:2:y"):
        provider(fake).acquire_lock("a:1:x", 600, state={"desired": 3})
    assert provider(fake).lock_holder()["owner"] == "b:2:y"


def test_a_metadata_write_that_keeps_racing_gives_up_with_a_message():
    fake = FakeCompute()

    def someone_else_writes(compute):
        compute.metadata = dict(compute.metadata, fingerprint="f%d" % (int(compute.metadata["fingerprint"][1:]) + 1))
    fake.before_metadata_write = someone_else_writes
    with pytest.raises(ProviderError, match="kept changing"):
        provider(fake).save_state({"desired": 3})


@pytest.fixture
def regional_lab(tmp_path):
    """The lab's GCP stand-in with a regional group of 4 and its autoscaler (mode ON), as server-terraform sets them up."""
    from ansible_collections.circleci.server.tests.lab.core import FaultInjector, LabClock, RequestLog
    from ansible_collections.circleci.server.tests.lab.gcp_mig import GcpMigLab
    clock = LabClock(500.0)
    lab = GcpMigLab(clock, RequestLog(str(tmp_path / "requests.jsonl"), clock), FaultInjector())
    lab.start()
    lab.create_template("p", "t1")
    lab.create_template("p", "t2")
    lab.create_regional_mig("p", "us-east1", "nomad-client-group", "t1", 4, update_policy={"type": "OPPORTUNISTIC"})
    lab.create_autoscaler("p", "regions/us-east1", "nomad-client-autoscaler", "nomad-client-group", mode="ONLY_SCALE_OUT", max_replicas=10)
    yield lab, clock
    lab.stop()


def test_a_regional_groups_autoscaler_is_turned_off_for_the_roll_and_put_back_to_its_mode(regional_lab):
    import requests
    lab, clock = regional_lab
    provider = GcpMigProvider("p", "nomad-client-group", requests.Session(), region="us-east1", base_url=lab.base_url + "/compute/v1",
                              clock=clock, poll_interval=1.0, instance_template="t2")
    group = provider.describe()
    assert group.desired == 4 and len(group.instances) == 4 and group.warnings == []
    assert len({i["zone"] for i in lab.instances("p", "regions/us-east1", "nomad-client-group")}) == 3  # spread over the region's zones
    assert provider.scaling_to_pause() == ["autoscaler nomad-client-autoscaler (mode ONLY_SCALE_OUT): set to OFF for the roll, "
                                           "then back to ONLY_SCALE_OUT"]
    assert provider.apply_configuration() is True
    paused = provider.suspend_scaling()
    assert paused == ["autoscaler-mode=nomad-client-autoscaler=ONLY_SCALE_OUT"]
    autoscaler = lab.autoscaler("p", "regions/us-east1", "nomad-client-autoscaler")
    assert autoscaler["autoscalingPolicy"]["mode"] == "OFF" and autoscaler["autoscalingPolicy"]["maxNumReplicas"] == 10  # configuration kept
    assert provider.suspend_scaling() == [] and provider.scaling_to_pause() == []  # already OFF: nothing to pause, nothing to put back
    provider.set_capacity(6)
    group = provider.describe()
    assert group.desired == 6 and len(group.outdated()) == 4 and len(group.live()) == 6
    provider.terminate([group.outdated()[0].id])  # regional deleteInstances, through a regional operation
    assert provider.describe().desired == 5
    provider.resume_scaling(paused)
    assert lab.autoscaler("p", "regions/us-east1", "nomad-client-autoscaler")["autoscalingPolicy"]["mode"] == "ONLY_SCALE_OUT"


def test_an_autoscaler_left_on_undoes_a_surge_in_the_lab(regional_lab):
    lab, _clock = regional_lab
    lab.create_autoscaler("p", "regions/us-east1", "strict", "nomad-client-group", mode="ON", max_replicas=10)
    import requests
    answer = requests.post(lab.base_url + "/compute/v1/projects/p/regions/us-east1/instanceGroupManagers/nomad-client-group/resize",
                           params={"size": 6}, timeout=10)
    assert answer.status_code == 200
    assert lab.mig("p", "regions/us-east1", "nomad-client-group")["targetSize"] == 4


class NomadWithoutNodes:
    """A Nomad where no client registered: enough for a roll that dies before its first drain, and for its re-run to put things
    back (the old instances, serving nothing, go without a drain)."""

    def nodes(self):
        return []

    def node(self, node_id):  # pylint: disable=unused-argument
        return None

    def node_allocations(self, node_id):  # pylint: disable=unused-argument
        return []


class Died(BaseException):
    """The process killed: nothing of the roll's own clean-up runs."""


def test_a_run_that_dies_with_the_autoscaler_off_leaves_its_mode_for_the_re_run_to_put_back(regional_lab, monkeypatch):
    import requests
    from ansible_collections.circleci.server.plugins.module_utils.roll.executor import RollOptions, Roller
    lab, clock = regional_lab
    wall = {"t": 1_800_000_000.0}

    def roller():
        gcp = GcpMigProvider("p", "nomad-client-group", requests.Session(), region="us-east1", base_url=lab.base_url + "/compute/v1",
                             clock=clock, poll_interval=1.0, instance_template="t2", wall=lambda: wall["t"])
        options = RollOptions(batch_size="2", strategy="window", timeout=20000, boot_timeout=30, poll_interval=5)
        return Roller(gcp, NomadWithoutNodes(), options, clock=clock)

    def autoscaler_mode():
        return lab.autoscaler("p", "regions/us-east1", "nomad-client-autoscaler")["autoscalingPolicy"]["mode"]

    dying = roller()
    set_mode = dying.provider._set_autoscaler_mode  # pylint: disable=protected-access

    def set_mode_then_die(name, mode):
        set_mode(name, mode)
        raise Died(mode)
    # killed the moment the autoscaler went OFF, before anything more is written
    monkeypatch.setattr(dying.provider, "_set_autoscaler_mode", set_mode_then_die)
    monkeypatch.setattr(dying, "_after_stop", lambda *args, **kwargs: None)
    monkeypatch.setattr(dying, "_release_lock", lambda: None)
    with pytest.raises(Died):
        dying.run()
    assert autoscaler_mode() == "OFF"
    left = roller().provider.load_state()
    assert left["desired"] == 4 and left["suspended"] == ["autoscaler-mode=nomad-client-autoscaler=ONLY_SCALE_OUT"], left
    # the dead run's lock holds a re-run off until it expires (its own timeout, in wall seconds, plus 5 minutes)
    assert roller().plan()["warnings"] and "holds the roll lock" in roller().plan()["warnings"][-1]
    wall["t"] += 20000 / clock.factor + 301
    result = roller().run()
    assert autoscaler_mode() == "ONLY_SCALE_OUT" and result["plan"]["resuming"] is True
    mig = lab.mig("p", "regions/us-east1", "nomad-client-group")
    assert mig["targetSize"] == 4 and not [key for key in lab.project_metadata("p") if key.startswith("circleci-server-nomad-client-roll")]
