# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tink_migration_status, velero_backup_info, server_release_info and server_version_info's planner."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.plugins.modules import (
    server_release_info,
    server_version_info,
    tink_migration_status,
    velero_backup_info,
)
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import (
    FakeReader,
    helm_release_secret,
    obj,
    secret,
)

NS = "circleci-server"
KEYSET = json.dumps({"primaryKeyId": 7, "key": [{"keyData": {"value": "CANARY-KEYSET-7f3a"}}]})
TOKEN = "CANARY-TOKEN-19c2"


def run_module(capsys, module, args, reader=None, monkeypatch=None):
    if reader is not None:
        monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: reader))
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out), out


def release(values, version="4.2.7"):
    return helm_release_secret(NS, "circleci-server", 3, version, values)


def test_tink_migrated(capsys, monkeypatch):
    reader = FakeReader([release({"tink": {"enabled": True}, "vault": {"internal": False}}),
                         secret(NS, "tink", {"keyset": KEYSET})])
    code, result, out = run_module(capsys, tink_migration_status, {"namespace": NS, "api_key": TOKEN,
                                                                   "_ansible_check_mode": True}, reader, monkeypatch)
    assert code == 0 and result["changed"] is False and result["migrated"] is True
    assert result["release"] == {"name": "circleci-server", "namespace": NS, "revision": 3, "chart_version": "4.2.7"}
    assert "CANARY" not in out


def test_tink_not_migrated_fails_only_when_asked(capsys, monkeypatch, tmp_path):
    reader = FakeReader([release({}), obj("StatefulSet", NS, "vault")])
    code, result, _out = run_module(capsys, tink_migration_status, {"namespace": NS}, reader, monkeypatch)
    assert code == 0 and result["migrated"] is False and len(result["blocking"]) == 4
    log = tmp_path / "run-log-import-contexts-20260301-101500.log"
    log.write_text("4: Error while importing\n")
    args = {"namespace": NS, "fail_on_blocking": True, "import_log": str(log)}
    code, result, _out = run_module(capsys, tink_migration_status, args, reader, monkeypatch)
    assert code == 1 and "Vault -> Tink migration not finished" in result["msg"]
    assert "4: Error while importing" in result["msg"]


def test_tink_unreadable_import_log_and_missing_release(capsys, monkeypatch):
    reader = FakeReader([])
    code, result, _out = run_module(capsys, tink_migration_status, {"namespace": NS, "import_log": "/nonexistent.log"},
                                    reader, monkeypatch)
    assert code == 1 and "import_log /nonexistent.log does not exist" in result["msg"]
    code, result, _out = run_module(capsys, tink_migration_status, {"namespace": NS}, reader, monkeypatch)
    assert code == 1 and "No helm release 'circleci-server'" in result["msg"]


def backup(hours_ago, phase="Completed"):
    stamp = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": "circleci-server-x1", "namespace": "velero"},
            "spec": {"includedNamespaces": [NS]},
            "status": {"phase": phase, "errors": 0, "completionTimestamp": stamp}}


def test_velero_backup_info(capsys, monkeypatch):
    code, result, _out = run_module(capsys, velero_backup_info, {"namespace": NS}, FakeReader([backup(1)]), monkeypatch)
    assert code == 0 and result["recent_ok"] is True and result["backup"]["phase"] == "Completed"
    code, result, _out = run_module(capsys, velero_backup_info, {"namespace": NS, "fail_on_problem": True},
                                    FakeReader([backup(30)]), monkeypatch)
    assert code == 1 and "more than the maximum age" in result["msg"]
    code, result, _out = run_module(capsys, velero_backup_info, {"namespace": NS, "max_age": "36h"},
                                    FakeReader([backup(30)]), monkeypatch)
    assert result["recent_ok"] is True and result["max_age_seconds"] == 36 * 3600


def test_velero_rejects_a_bad_max_age(capsys):
    code, result, _out = run_module(capsys, velero_backup_info, {"namespace": NS, "max_age": "a day"})
    assert code == 1 and "max_age" in result["msg"] and "24h" in result["msg"]


def test_cluster_errors_become_messages(capsys, monkeypatch):
    reader = FakeReader(error="Could not reach the Kubernetes API server while reading the server version")
    code, result, _out = run_module(capsys, server_release_info, {"namespace": NS}, reader, monkeypatch)
    assert code == 1 and "Could not reach" in result["msg"]
    code, result, _out = run_module(capsys, velero_backup_info, {"namespace": NS}, reader, monkeypatch)
    assert code == 1 and "Could not reach" in result["msg"]


def test_server_release_info(capsys, monkeypatch):
    reader = FakeReader([release({"secret": "CANARY-VALUE"})], kubernetes_version="v1.27.9-eks-5e0fdde")
    code, result, out = run_module(capsys, server_release_info, {"namespace": NS}, reader, monkeypatch)
    assert code == 0 and result["changed"] is False
    assert result["kubernetes_version"] == "1.27.9" and result["kubernetes_git_version"] == "v1.27.9-eks-5e0fdde"
    assert result["release"]["exists"] and result["release"]["chart_version"] == "4.2.7"
    assert "CANARY" not in out
    code, result, _out = run_module(capsys, server_release_info, {"namespace": "empty"}, reader, monkeypatch)
    assert code == 0 and result["release"]["exists"] is False


def test_the_auth_options_fall_back_to_the_environment(capsys, monkeypatch):
    seen = {}

    def capture(cls, params):
        seen.update(params)
        return FakeReader([release({})])
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(capture))
    monkeypatch.setenv("K8S_AUTH_CONTEXT", "prod")
    monkeypatch.setenv("K8S_AUTH_API_KEY", TOKEN)
    code, _result, out = run_module(capsys, server_release_info, {"namespace": NS})
    assert code == 0 and seen["context"] == "prod" and seen["api_key"] == TOKEN
    assert TOKEN not in out


@pytest.mark.parametrize("args, versions, problems", [
    ({"server_version": "4.2.3", "target_version": "4.3.9", "kubernetes_version": "1.27.9"}, ["4.2.7", "4.3.9"], []),
    ({"server_version": "4.7.7", "target_version": "4.7.15"}, ["4.7.15"], []),
    ({"server_version": "4.2.7", "target_version": "4.3.9", "kubernetes_version": "1.30.1"}, ["4.3.9"],
     ["cannot start"]),
    ({"server_version": "4.2.7", "target_version": "4.7.7"}, [], ["known-broken"]),
    ({"server_version": "4.3.9", "target_version": "4.2.7"}, [], ["older than the installed"]),
])
def test_server_version_info_plans_the_upgrade(capsys, args, versions, problems):
    code, result, _out = run_module(capsys, server_version_info, args)
    assert code == 0
    assert result["upgrade_path"]["versions"] == versions
    assert len(result["problems"]) == len(problems)
    for problem, word in zip(result["problems"], problems):
        assert word in problem
    code, result, _out = run_module(capsys, server_version_info, dict(args, fail_on_problem=True))
    assert code == (1 if problems else 0)


def test_server_version_info_without_target_has_no_path(capsys):
    code, result, _out = run_module(capsys, server_version_info, {"server_version": "4.2.7"})
    assert code == 0 and result["upgrade_path"] is None


def test_server_version_info_refuses_4_5_on_gke(capsys):
    args = {"server_version": "4.4.7", "target_version": "4.5.5", "kubernetes_version": "v1.29.4-gke.1043002"}
    code, result, _out = run_module(capsys, server_version_info, args)
    assert code == 0 and len(result["problems"]) == 1 and "GKE" in result["problems"][0]
