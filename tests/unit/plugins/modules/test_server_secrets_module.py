# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server_secrets module: what it keeps, what it generates, what it returns and never prints."""
from __future__ import annotations

import base64
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.plugins.modules import server_secrets
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import FakeReader, secret

NS = "circleci-server"
CANARY_PASSWORD = "CANARYpostgres0a9f3c"


def run_module(capsys, monkeypatch, args, reader):
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: reader))
    with patch_module_args(dict({"namespace": NS, "_ansible_check_mode": True}, **args)):
        with pytest.raises(SystemExit) as exit_info:
            server_secrets.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    payload = json.loads(base64.b64decode(result["payload"])) if "payload" in result else None
    return exit_info.value.code, result, payload, out


def test_fresh_namespace_generates_everything_and_keeps_the_given(capsys, monkeypatch):
    code, result, payload, out = run_module(capsys, monkeypatch, {"given": {"postgres_password": CANARY_PASSWORD}},
                                            FakeReader([]))
    assert code == 0 and result["changed"] is False and result["escrow_changed"] is True
    assert result["sources"]["postgres_password"] == "given" and "postgres_password" not in result["generated"]
    assert len(result["generated"]) == 11
    # the given value is in the payload (not blanked by no_log masking) but nowhere in clear in the output
    assert payload["values_tree"]["postgresql"]["auth"]["postgresPassword"] == CANARY_PASSWORD
    assert CANARY_PASSWORD not in out
    assert json.loads(payload["escrow_content"])["secrets"]["postgres_password"] == CANARY_PASSWORD


def test_rerun_with_the_cluster_and_escrow_generates_nothing(capsys, monkeypatch, tmp_path):
    _code, _result, first, _out = run_module(capsys, monkeypatch, {}, FakeReader([]))
    escrow = first["escrow_content"]
    tree = first["values_tree"]
    objects = [secret(NS, o["metadata"]["name"], {k: base64.b64decode(v).decode() for k, v in o["data"].items()})
               for o in first["secrets_to_create"]]
    # The chart made the others from the values: signing-keys, tink, postgresql, ...
    objects.append(secret(NS, "signing-keys", {"signing-key": tree["keyset"]["signing"],
                                               "encryption-key": tree["keyset"]["encryption"]}))
    code, result, second, _out = run_module(capsys, monkeypatch, {"escrow": escrow}, FakeReader(objects))
    assert code == 0 and result["generated"] == [] and result["escrow_changed"] is False
    assert second["values_tree"] == tree and result["sources"]["api_token"] == "cluster"
    assert result["sources"]["tink_keyset"] == "escrow"
    # the values file alone (cluster and escrow lost) is enough too
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps(tree))
    code, result, third, _out = run_module(capsys, monkeypatch, {"values_files": [str(tmp_path / "missing.yaml"), str(values)]}, FakeReader([]))
    assert result["generated"] == [] and third["values_tree"] == tree


def test_damaged_escrow_fails_without_a_value(capsys, monkeypatch):
    damaged = '{"secrets": {"api_token": "CANARYx"}, "sha256": "0"}'
    code, result, _payload, out = run_module(capsys, monkeypatch, {"escrow": damaged}, FakeReader([]))
    assert code == 1 and "checksum does not match" in result["msg"] and "CANARYx" not in out


def test_foreign_secret_is_a_problem(capsys, monkeypatch):
    reader = FakeReader([secret(NS, "signing-keys", {"signing-key": "x"})])
    _code, result, _payload, _out = run_module(capsys, monkeypatch, {}, reader)
    assert any("without Helm's ownership metadata" in p for p in result["problems"])
    assert any("Keyczar" in p for p in result["problems"])
