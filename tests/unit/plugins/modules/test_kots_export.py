# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.plugins.modules import kots_export
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import FakeReader, helm_release_secret, obj, secret

FIXTURE = Path(__file__).resolve().parents[3] / "integration" / "kots_export" / "values-3.x-aws.yaml"
LICENSE = "fixture-4x-license-module-test"


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            kots_export.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out), out


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "values-4.0.yaml"


def test_src_export_writes_0600_then_a_rerun_changes_nothing(capsys, dest):
    args = {"src": str(FIXTURE), "dest": str(dest), "license": LICENSE}
    code, result, out = run_module(capsys, args)
    assert code == 0 and result["changed"] is True
    assert mode(dest) == 0o600
    text = dest.read_text()
    assert "domainName: circleci.example.com" in text and LICENSE in text
    assert "custom_config_file: |" in text  # the decoded telegraf config, readable
    assert LICENSE not in out and "fixture-postgres-password-2e9f" not in out
    assert result["source"] == {"type": "file", "path": str(FIXTURE)}
    assert result["generated"] == ["mongodb.auth.password"]
    assert result["nomad_server_endpoint"] == "circleci.example.com:4647"
    assert result["postgresql_internal"] is True and result["object_storage"] == "s3"
    assert len(result["manual_actions"]) == 4
    assert "backup_file" not in result

    code, again, _out = run_module(capsys, args)
    assert code == 0 and again["changed"] is False
    assert dest.read_text() == text  # the generated MongoDB password was reused
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_check_mode_writes_nothing_and_the_diff_is_masked(capsys, dest):
    args = {"src": str(FIXTURE), "dest": str(dest), "license": LICENSE, "_ansible_check_mode": True,
            "_ansible_diff": True}
    code, result, out = run_module(capsys, args)
    assert code == 0 and result["changed"] is True
    assert not dest.exists()
    after = result["diff"]["after"]
    assert result["diff"]["before"] == ""
    assert "license: '********'" in after and "postgresPassword: '********'" in after
    for secret in ("fixture-", LICENSE):
        assert secret not in out


def test_a_changed_source_backs_up_the_old_file_0600(capsys, dest, tmp_path):
    run_module(capsys, {"src": str(FIXTURE), "dest": str(dest), "license": LICENSE})
    old = dest.read_text()
    code, result, out = run_module(capsys, {"src": str(FIXTURE), "dest": str(dest), "license": "fixture-new-license",
                                            "_ansible_diff": True})
    assert code == 0 and result["changed"] is True
    backup = Path(result["backup_file"])
    assert backup.read_text() == old and mode(backup) == 0o600
    assert "fixture-new-license" in dest.read_text()
    assert "fixture-" not in out  # neither license shows in the diff
    assert "fixture-generated" not in dest.read_text()
    # The MongoDB password survived the license change.
    assert [line for line in old.splitlines() if "password" in line] == \
        [line for line in dest.read_text().splitlines() if "password" in line]


def test_a_too_open_dest_is_reported_and_tightened(capsys, dest):
    args = {"src": str(FIXTURE), "dest": str(dest), "license": LICENSE}
    run_module(capsys, args)
    os.chmod(dest, 0o644)
    code, result, _out = run_module(capsys, dict(args, _ansible_check_mode=True))
    assert result["changed"] is True and mode(dest) == 0o644
    code, result, _out = run_module(capsys, args)
    assert code == 0 and result["changed"] is True and "backup_file" not in result
    assert mode(dest) == 0o600


def test_missing_src_fails_with_advice(capsys, dest):
    code, result, _out = run_module(capsys, {"src": str(dest.parent / "nope.yaml"), "dest": str(dest), "license": LICENSE})
    assert code == 1 and "does not exist" in result["msg"] and "omit src" in result["msg"]


def test_values_without_domain_fail_with_advice(capsys, dest, tmp_path):
    src = tmp_path / "values.yaml"
    src.write_text("kong:\n  replicas: 1\n")
    code, result, _out = run_module(capsys, {"src": str(src), "dest": str(dest), "license": LICENSE})
    assert code == 1 and "no domainName" in result["msg"]
    assert not dest.exists()


def test_missing_dest_directory_fails_with_advice(capsys, tmp_path):
    code, result, _out = run_module(capsys, {"src": str(FIXTURE), "dest": str(tmp_path / "no" / "v.yaml"),
                                             "license": LICENSE})
    assert code == 1 and "create it" in result["msg"]


def test_src_and_revision_are_exclusive(capsys, dest):
    code, result, _out = run_module(capsys, {"src": str(FIXTURE), "revision": 2, "dest": str(dest), "license": LICENSE})
    assert code == 1 and "mutually exclusive" in result["msg"]


def releases():
    first = {"domainName": "old.example.com", "postgresql": {"internal": True, "postgresqlPassword": "fixture-pg-1"}}
    current = {"domainName": "ci.example.com", "postgresql": {"internal": True, "postgresqlPassword": "fixture-pg-2"}}
    return FakeReader([
        helm_release_secret("circleci-server", "circleci-server", 1, "3.4.1", first, status="superseded"),
        helm_release_secret("circleci-server", "circleci-server", 2, "3.4.8", current, status="deployed"),
        obj("Deployment", "circleci-server", "frontend", {"kots.io/app-slug": "circleci-server"}),
    ])


def test_cluster_read_takes_the_current_revision_not_revision_1(capsys, dest, monkeypatch):
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: releases()))
    code, result, out = run_module(capsys, {"dest": str(dest), "license": LICENSE})
    assert code == 0, result
    assert result["source"] == {"type": "release", "namespace": "circleci-server", "release": "circleci-server",
                                "revision": 2, "chart_version": "3.4.8", "status": "deployed"}
    assert result["domain_name"] == "ci.example.com"
    assert "fixture-pg-2" in dest.read_text() and "fixture-pg" not in out


def test_cluster_read_of_a_chosen_revision(capsys, dest, monkeypatch):
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: releases()))
    code, result, _out = run_module(capsys, {"dest": str(dest), "license": LICENSE, "revision": 1})
    assert code == 0 and result["source"]["revision"] == 1 and result["domain_name"] == "old.example.com"


def test_cluster_read_of_a_missing_release_fails_with_advice(capsys, dest, monkeypatch):
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: FakeReader([])))
    code, result, _out = run_module(capsys, {"dest": str(dest), "license": LICENSE, "namespace": "ci"})
    assert code == 1 and "No helm release 'circleci-server' in namespace ci" in result["msg"]
    assert not dest.exists()


def test_dest_must_not_be_src(capsys, tmp_path):
    src = tmp_path / "values.yaml"
    src.write_text("domainName: ci.example.com\n")
    code, result, _out = run_module(capsys, {"src": str(src), "dest": str(src), "license": LICENSE})
    assert code == 1 and "same file as src" in result["msg"]
    assert src.read_text() == "domainName: ci.example.com\n"


def test_cluster_read_carries_the_datastore_passwords_of_the_cluster_not_generated_ones(capsys, dest, monkeypatch):
    # The 3.x values hold no datastore password (the charts generated them): the Secrets' are carried.
    values = {"domainName": "ci.example.com", "postgresql": {"internal": True}, "mongodb": {"auth": {"username": "root"}}}
    reader = FakeReader([
        helm_release_secret("circleci-server", "circleci-server", 1, "3.4.8", values),
        obj("Deployment", "circleci-server", "frontend", {"kots.io/app-slug": "circleci-server"}),
        secret("circleci-server", "postgresql", {"postgresql-password": "cluster-pg-7e1"}),
        secret("circleci-server", "mongodb", {"mongodb-root-password": "cluster-mongo-root-2a", "mongodb-password": "cluster-mongo-3b"}),
        secret("circleci-server", "rabbitmq", {"rabbitmq-password": "cluster-rabbit-4c", "rabbitmq-erlang-cookie": "cluster-cookie-5d"}),
    ])
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: reader))
    code, result, out = run_module(capsys, {"dest": str(dest), "license": LICENSE})
    assert code == 0, result
    written = kots_export.yamlfile.load(dest.read_text())[0]
    assert written["postgresql"]["auth"]["postgresPassword"] == "cluster-pg-7e1"
    assert written["mongodb"]["auth"]["rootPassword"] == "cluster-mongo-root-2a"
    assert written["mongodb"]["auth"]["password"] == "cluster-mongo-3b"
    assert written["rabbitmq"]["auth"] == {"password": "cluster-rabbit-4c", "erlangCookie": "cluster-cookie-5d"}
    assert result["generated"] == [] and len(result["carried"]) == 5
    assert "cluster-" not in out
    # Resumed after the KOTS cleanup deleted the postgresql Secret: the password the first run carried is kept.
    reader.objects = [o for o in reader.objects if o["metadata"]["name"] != "postgresql"]
    code, result, out = run_module(capsys, {"dest": str(dest), "license": LICENSE})
    assert code == 0 and not result["changed"], result
