# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""helm_adopt and kots_cleanup against an in-memory namespace: what they change, that check mode and a
re-run change nothing, and that the 4.0 chart's postgresql objects are never deleted."""
from __future__ import annotations

import copy
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.module_utils import k8s_objects
from ansible_collections.circleci.server.plugins.modules import helm_adopt, kots_cleanup

NS = "circleci-server"
KOTS = {"kots.io/app-slug": "circleci-server", "kots.io/backup": "velero"}
KOTSADM = {"kots.io/kotsadm": "true", "kots.io/backup": "velero"}


def obj(name, labels=None, annotations=None):
    return {"metadata": {"name": name, "namespace": NS, "labels": dict(labels or {}), "annotations": dict(annotations or {})}}


class FakeObjects:
    """An in-memory namespace with ObjectClient's interface; records every write."""

    def __init__(self, objects):
        self.objects = {kind: {o["metadata"]["name"]: copy.deepcopy(o) for o in items} for kind, items in objects.items()}
        self.writes = []

    def list(self, kind, namespace, label_selector=None):
        assert namespace == NS
        items = list(self.objects.get(kind, {}).values())
        if label_selector:
            key, _sep, value = label_selector.partition("=")
            items = [o for o in items if o["metadata"]["labels"].get(key) == value]
        return copy.deepcopy(items)

    def get(self, kind, namespace, name):
        found = self.objects.get(kind, {}).get(name)
        return copy.deepcopy(found) if found else None

    def merge_patch(self, kind, namespace, name, patch):
        self.writes.append(("PATCH", kind, name))
        meta = self.objects[kind][name]["metadata"]
        for part, values in patch["metadata"].items():
            for key, value in values.items():
                if value is None:
                    meta[part].pop(key, None)
                else:
                    meta[part][key] = value

    def delete(self, kind, namespace, name, propagation="Background"):
        self.writes.append(("DELETE", kind, name, propagation))
        del self.objects[kind][name]


def namespace():
    return FakeObjects({
        "Service": [obj("vm-service", KOTS, {"kots.io/app-slug": "circleci-server"}), obj("kotsadm", KOTSADM)],
        "Secret": [obj("postgresql", KOTS), obj("kotsadm-sessions"), obj("sh.helm.release.v1.circleci-server.v1", {"owner": "helm"})],
        "StatefulSet": [obj("postgresql", KOTS), obj("kotsadm-minio", KOTSADM)],
        "PersistentVolumeClaim": [obj("data-postgresql-0", KOTS), obj("kotsadm-minio-kotsadm-minio-0", KOTSADM)],
        "Job": [obj("inject-bottoken-7f3kq", KOTS)],
        "Deployment": [obj("frontend", dict(KOTS, **{"app.kubernetes.io/managed-by": "Helm"}),
                           {"meta.helm.sh/release-name": "circleci-server", "meta.helm.sh/release-namespace": NS})],
    })


def run(module, capsys, monkeypatch, fake, **args):
    monkeypatch.setattr(k8s_objects.ObjectClient, "from_params", classmethod(lambda cls, params: fake))
    with patch_module_args(dict({"namespace": NS}, **args)):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_adoption_patch_states():
    assert k8s_objects.adoption_patch(obj("a"), "circleci-server", NS)[0] == "adopt"
    owned = obj("b", {"app.kubernetes.io/managed-by": "Helm"},
                {"meta.helm.sh/release-name": "circleci-server", "meta.helm.sh/release-namespace": NS})
    assert k8s_objects.adoption_patch(owned, "circleci-server", NS) == ("adopted", None)
    other = obj("c", {}, {"meta.helm.sh/release-name": "other"})
    assert k8s_objects.adoption_patch(other, "circleci-server", NS) == ("conflict", None)


def test_helm_adopt_check_mode_then_apply_then_rerun(capsys, monkeypatch):
    fake = namespace()
    code, result = run(helm_adopt, capsys, monkeypatch, fake, _ansible_check_mode=True, _ansible_diff=True)
    assert code == 0 and result["changed"] and fake.writes == []
    assert "Service/vm-service" in result["adopted"] and "Deployment/frontend" not in result["adopted"]
    assert not [name for name in result["adopted"] if name.startswith("Secret/sh.helm.release")]  # helm's records untouched
    assert result["diff"]["after"]["Service/vm-service"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}

    code, result = run(helm_adopt, capsys, monkeypatch, fake)
    assert code == 0 and result["changed"] and len(fake.writes) == len(result["adopted"])
    assert fake.objects["Service"]["vm-service"]["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server"

    fake.writes.clear()
    code, result = run(helm_adopt, capsys, monkeypatch, fake)
    assert code == 0 and not result["changed"] and fake.writes == []


def test_helm_adopt_stops_on_an_object_of_another_release(capsys, monkeypatch):
    fake = FakeObjects({"Service": [obj("x", {}, {"meta.helm.sh/release-name": "other", "meta.helm.sh/release-namespace": NS})]})
    code, result = run(helm_adopt, capsys, monkeypatch, fake)
    assert code == 1 and "another Helm release" in result["msg"] and fake.writes == []


def test_kots_cleanup_check_mode_then_apply_then_rerun(capsys, monkeypatch):
    fake = namespace()
    code, plan = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=True, _ansible_check_mode=True)
    assert code == 0 and plan["changed"] and fake.writes == []
    assert plan["deleted"] == ["Service/kotsadm", "StatefulSet/kotsadm-minio", "PersistentVolumeClaim/kotsadm-minio-kotsadm-minio-0",
                               "Secret/kotsadm-sessions", "Job/inject-bottoken-7f3kq", "StatefulSet/postgresql", "Secret/postgresql"]
    assert plan["orphaned"] == ["StatefulSet/postgresql"]
    assert "PersistentVolumeClaim/data-postgresql-0" in plan["cleaned"]  # the data volume is kept, only unlabelled

    code, result = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=True)
    assert code == 0 and result["deleted"] == plan["deleted"]
    assert ("DELETE", "StatefulSet", "postgresql", "Orphan") in fake.writes
    assert fake.objects["PersistentVolumeClaim"]["data-postgresql-0"]["metadata"]["labels"] == {}
    assert "kots.io/app-slug" not in fake.objects["Service"]["vm-service"]["metadata"]["annotations"]

    # After the upgrade the 4.0 chart's postgresql objects carry no KOTS label: a re-run leaves them alone.
    fake.objects["StatefulSet"]["postgresql"] = obj("postgresql", {"app.kubernetes.io/managed-by": "Helm"})
    fake.objects["Secret"]["postgresql"] = obj("postgresql", {"app.kubernetes.io/managed-by": "Helm"})
    fake.writes.clear()
    code, result = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=True)
    assert code == 0 and not result["changed"] and fake.writes == []


def test_kots_cleanup_keeps_an_external_postgres_alone(capsys, monkeypatch):
    fake = namespace()
    code, plan = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=False, _ansible_check_mode=True)
    assert code == 0 and "StatefulSet/postgresql" not in plan["deleted"] and "Secret/postgresql" not in plan["deleted"]
