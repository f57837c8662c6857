# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""circleci.server.helm_values_migrate run through ansible-playbook on real files.

Written files are compared byte for byte with the expected files in files/; check mode must leave the
file untouched (content and mtime); the --diff output must hold no secret value.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
PLAYBOOK = HERE / "migrate.yml"

# Every secret placeholder of the fixtures: none may appear in any output.
SECRETS = (
    "REPLACE-WITH-LICENSE", "0123456789abcdef0123456789abcdef", "abcdefghijklmnop", "signing-keyset-placeholder",
    "encryption-keyset-placeholder", "github-client-secret-placeholder", "gossip-key-placeholder-32-chars!",
    "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==", "postgres-password-placeholder", "rabbit-password-placeholder",
    "erlang-cookie-placeholder", "mongo-root-placeholder", "mongo-password-placeholder",
)

CASES = [
    ("aws", "4.3.9", "aws-4.3.expected.yaml"),
    ("gcp", "4.3.9", "gcp-4.3.expected.yaml"),
    ("aws", "4.10.0", "aws-4.10.expected.yaml"),
    ("gcp", "4.10.0", "gcp-4.10.expected.yaml"),
]


def _playbook(run, tmp_path, values_src, to_version, *flags, **extra):
    result_file = tmp_path / ("result-%d.json" % len(list(tmp_path.glob("result-*.json"))))
    extra_vars = dict(values_src=str(values_src), from_version="4.2.7", to_version=to_version,
                      result_file=str(result_file), **extra)
    proc = run("ansible-playbook", "-i", "localhost,", "-c", "local", str(PLAYBOOK),
               "-e", json.dumps(extra_vars), *flags)
    return proc, json.loads(result_file.read_text())


def _copy_fixture(tmp_path, cloud, mode=0o644):
    path = tmp_path / "values.yaml"
    shutil.copyfile(FILES / ("%s-4.2.yaml" % cloud), path)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("cloud,to_version,expected", CASES)
def test_check_diff_write_then_idempotent(run, tmp_path, cloud, to_version, expected):
    values = _copy_fixture(tmp_path, cloud)
    original = values.read_bytes()
    os.utime(values, (1_600_000_000, 1_600_000_000))

    # Check mode with --diff: computes everything, writes nothing, shows no secret.
    proc, result = _playbook(run, tmp_path, values, to_version, "--check", "--diff")
    assert result["changed"] is True
    assert values.read_bytes() == original
    assert values.stat().st_mtime == 1_600_000_000
    assert stat.S_IMODE(values.stat().st_mode) == 0o644
    assert "-vm_service:" in proc.stdout and "+machine_provisioner:" in proc.stdout
    for secret in SECRETS:
        assert secret not in proc.stdout, secret
        assert secret not in json.dumps(result), secret
    assert list(tmp_path.glob("values.yaml.*~")) == []

    # The real run: the expected file byte for byte, mode 0600, a backup of the original.
    proc, result = _playbook(run, tmp_path, values, to_version, "--diff", values_backup=True)
    assert result["changed"] is True
    assert values.read_bytes() == (FILES / expected).read_bytes()
    assert stat.S_IMODE(values.stat().st_mode) == 0o600
    backup = Path(result["backup_file"])
    assert backup.parent == tmp_path and backup.read_bytes() == original
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert result["hops"][0] == "4.2->4.3"
    assert "4.3-trust-policy" in [a["id"] for a in result["manual_actions"]] or cloud == "gcp"
    assert "4.3-workload-identity" in [a["id"] for a in result["manual_actions"]] or cloud == "aws"
    for secret in SECRETS:
        assert secret not in proc.stdout, secret

    # A second run finds the file in the target shape: nothing changes, nothing is written.
    written = values.read_bytes()
    os.utime(values, (1_600_000_000, 1_600_000_000))
    proc, result = _playbook(run, tmp_path, values, to_version, "--diff", values_backup=True)
    assert result["changed"] is False
    assert [c for c in result["changes"] if c["action"] != "warning"] == []
    assert values.read_bytes() == written and values.stat().st_mtime == 1_600_000_000
    assert len(list(tmp_path.glob("values.yaml.*~"))) == 1


def test_bad_input_fails_before_writing(run, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("vm_service:\n  providers:\n    ec2:\n      tags: [a, b, c]\n")
    before = values.read_bytes()
    proc = run("ansible-playbook", "-i", "localhost,", "-c", "local", str(PLAYBOOK), "-e", json.dumps(dict(
        values_src=str(values), from_version="4.2.7", to_version="4.3.9", result_file=str(tmp_path / "r.json"))),
        check=False)
    assert proc.returncode != 0
    assert "odd number" in proc.stdout and "machine_provisioner.providers.ec2.tags" in proc.stdout
    assert values.read_bytes() == before and list(tmp_path.iterdir()) == [values]


def test_unmasked_values_need_no_log_and_are_censored(run, tmp_path):
    values = _copy_fixture(tmp_path, "aws")
    dest = tmp_path / "migrated.yaml"
    proc, result = _playbook(run, tmp_path, values, "4.3.9", "-v", values_dest=str(dest), values_return="unmasked")
    for secret in SECRETS:
        assert secret not in proc.stdout, secret
    # The registered result still holds the real values for the tasks that need them.
    assert result["values"]["postgresql"]["auth"]["postgresPassword"] == "postgres-password-placeholder"
    assert dest.read_bytes() == (FILES / "aws-4.3.expected.yaml").read_bytes()
    assert values.read_bytes() == (FILES / "aws-4.2.yaml").read_bytes()
