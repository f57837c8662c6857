# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.modules import helm_values_migrate

VALUES_4_2 = """# 4.2 values
global:
  license: "L1C3NS3"  # keep me secret
vm_service:  # machine jobs
  providers:
    ec2:
      enabled: true
      tags: ["team", "ci"]
      secretKey: "AWS-S3CR3T"
"""
VALUES_4_3 = """# 4.2 values
global:
  license: "L1C3NS3"  # keep me secret
machine_provisioner: # machine jobs
  providers:
    ec2:
      enabled: true
      tags: {"team": "ci"}
      secretKey: "AWS-S3CR3T"
"""


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            helm_values_migrate.main()
    result = json.loads(capsys.readouterr().out)
    return exit_info.value.code, result


@pytest.fixture
def values_file(tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(VALUES_4_2)
    os.chmod(path, 0o644)
    return path


def _args(path, **extra):
    return dict(src=str(path), from_version="4.2.7", to_version="4.3.9", **extra)


def test_check_mode_writes_nothing_and_diff_is_masked(capsys, values_file):
    mtime = values_file.stat().st_mtime_ns
    code, result = run_module(capsys, _args(values_file, _ansible_check_mode=True, _ansible_diff=True, backup=True))
    assert code == 0 and result["changed"] is True
    assert values_file.read_text() == VALUES_4_2 and values_file.stat().st_mtime_ns == mtime
    assert stat.S_IMODE(values_file.stat().st_mode) == 0o644
    assert "backup_file" not in result and len(list(values_file.parent.iterdir())) == 1
    diff = result["diff"]
    assert "-vm_service:" not in diff["before"] and "vm_service:" in diff["before"]
    assert "machine_provisioner:" in diff["after"]
    dumped = json.dumps(result)
    assert "L1C3NS3" not in dumped and "AWS-S3CR3T" not in dumped
    assert result["values"]["global"]["license"] == "********"


def test_write_backup_mode_then_idempotent(capsys, values_file):
    code, result = run_module(capsys, _args(values_file, backup=True))
    assert code == 0 and result["changed"] is True
    assert values_file.read_text() == VALUES_4_3
    assert stat.S_IMODE(values_file.stat().st_mode) == 0o600
    backup = result["backup_file"]
    assert open(backup).read() == VALUES_4_2 and stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert [c["action"] for c in result["changes"]] == ["renamed", "converted"]
    assert result["hops"] == ["4.2->4.3"] and result["dest"] == str(values_file)
    assert "4.3-trust-policy" in [a["id"] for a in result["manual_actions"]]

    code, result = run_module(capsys, _args(values_file, backup=True))
    assert code == 0 and result["changed"] is False and result["changes"] == []
    assert len(list(values_file.parent.iterdir())) == 2


def test_unchanged_file_gets_mode_0600(capsys, tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(VALUES_4_3)
    os.chmod(path, 0o644)
    code, result = run_module(capsys, _args(path))
    assert code == 0 and result["changed"] is True
    assert path.read_text() == VALUES_4_3 and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_dest_elsewhere_leaves_src_alone(capsys, values_file, tmp_path):
    dest = tmp_path / "out.yaml"
    code, result = run_module(capsys, _args(values_file, dest=str(dest)))
    assert code == 0 and result["changed"] is True
    assert values_file.read_text() == VALUES_4_2 and dest.read_text() == VALUES_4_3
    code, result = run_module(capsys, _args(values_file, dest=str(dest)))
    assert result["changed"] is False


def test_a_symlinked_file_is_written_through_the_link(capsys, values_file, tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to(values_file)
    code, result = run_module(capsys, _args(link))
    assert code == 0 and result["changed"] is True
    assert link.is_symlink() and values_file.read_text() == VALUES_4_3


def test_values_dict_is_returned_masked_and_not_written(capsys):
    values = {"vm_service": {"providers": {"gcp": {"zone": "us-east1-b"}}}, "apiToken": "T0K3N"}
    code, result = run_module(capsys, dict(values=values, from_version="4.2.7", to_version="4.3.9"))
    assert code == 0 and result["changed"] is False and result["dest"] is None
    assert result["values"] == {"machine_provisioner": {"providers": {"gcp": {"zones": ["us-east1-b"]}}}, "apiToken": "********"}


def test_unmasked_values_need_no_log(capsys):
    args = dict(values={"apiToken": "T0K3N"}, from_version="4.2.7", to_version="4.3.9", return_values="unmasked")
    code, result = run_module(capsys, args)
    assert code == 1 and "no_log" in result["msg"]
    code, result = run_module(capsys, dict(args, _ansible_no_log=True))
    assert code == 0 and result["values"] == {"apiToken": "T0K3N"}


@pytest.mark.parametrize("text,versions,message", [
    ("a: [1\n", ("4.2.7", "4.3.9"), "is not valid YAML at line"),
    ("- a\n", ("4.2.7", "4.3.9"), "not a mapping"),
    ("vm_service: {a: 1}\nmachine_provisioner: {a: 2}\n", ("4.2.7", "4.3.9"), "vm_service and machine_provisioner"),
    ("a: 1\n", ("4.3.9", "4.2.7"), "older than from_version"),
    ("a: 1\n", ("4.2.7", "5.0.0"), "release catalog"),
    ("a: 1\n", ("4.2.7", "4.7.7"), "known-broken"),
    ("a: 1\n", ("4.2.x", "4.3.9"), "is not a version"),
])
def test_bad_input_fails_and_writes_nothing(capsys, tmp_path, text, versions, message):
    path = tmp_path / "values.yaml"
    path.write_text(text)
    code, result = run_module(capsys, dict(src=str(path), from_version=versions[0], to_version=versions[1], backup=True))
    assert code == 1 and message in result["msg"]
    assert path.read_text() == text and list(tmp_path.iterdir()) == [path]


def test_missing_src_fails(capsys, tmp_path):
    code, result = run_module(capsys, _args(tmp_path / "nope.yaml"))
    assert code == 1 and "does not exist" in result["msg"]


def test_set_values_pins_keys_after_the_migration_keeps_comments_and_is_idempotent(capsys, values_file):
    pins = {"postgresql.image.tag": "14.22.4094-4922444", "postgresql.postgresqlDataDir": "/bitnami/postgresql/data-14",
            "global.license": "L1C3NS3"}
    code, result = run_module(capsys, _args(values_file, set_values=pins))
    assert code == 0 and result["changed"] is True
    text = values_file.read_text()
    assert "# keep me secret" in text and "machine_provisioner:" in text
    assert "postgresql:\n  image:\n    tag: 14.22.4094-4922444\n  postgresqlDataDir: /bitnami/postgresql/data-14\n" in text
    pinned = [(c["path"], c["action"]) for c in result["changes"] if c["hop"] == "set"]
    assert pinned == [("postgresql.image.tag", "added"), ("postgresql.postgresqlDataDir", "added")]
    code, again = run_module(capsys, dict(src=str(values_file), from_version="4.3.9", to_version="4.3.9",
                                          set_values=pins))
    assert code == 0 and again["changed"] is False and values_file.read_text() == text


def test_set_values_refuses_a_path_through_a_scalar(capsys, values_file):
    code, result = run_module(capsys, _args(values_file, set_values={"global.license.tag": "x"}))
    assert code == 1 and "global.license is not a mapping" in result["msg"] and "L1C3NS3" not in result["msg"]
    assert values_file.read_text() == VALUES_4_2
