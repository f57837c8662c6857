# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""circleci.server.kots_export through ansible-playbook on localhost, from a saved 3.x values file."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from ..conftest import recap

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "values-3.x-aws.yaml"
LICENSE = "fixture-4x-license-integration-77"

PLAYBOOK = """
- name: Export the 3.x values
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Export
      circleci.server.kots_export:
        src: "{{ src }}"
        dest: "{{ dest }}"
        license: "{{ license }}"
      register: export
    - name: Show the result
      ansible.builtin.debug:
        var: export
"""


def fixture_secrets():
    """Every secret of the fixture: they all hold the word 'fixture' (and the telegraf config holds one)."""
    secrets = set(re.findall(r"fixture-[A-Za-z0-9-]+", FIXTURE.read_text()))
    secrets.add("fixture-telegraf-datadog-key-0d5e")  # inside the base64 telegraf config
    return secrets | {LICENSE}


def test_check_mode_then_run_then_rerun(run, tmp_path):
    playbook = tmp_path / "export.yml"
    playbook.write_text(PLAYBOOK)
    dest = tmp_path / "out" / "values-4.0.yaml"
    dest.parent.mkdir()
    # The license goes through a vars file, never on the command line (-vvvv prints the command line).
    secret_vars = tmp_path / "secret-vars.yml"
    secret_vars.write_text("license: %s\n" % LICENSE)
    os.chmod(secret_vars, 0o600)
    extra = ["-e", "src=%s" % FIXTURE, "-e", "dest=%s" % dest, "-e", "@%s" % secret_vars]
    base = ["ansible-playbook", "-i", "localhost,", str(playbook)] + extra

    checked = run(*base, "--check", "--diff")
    assert recap(checked.stdout)["changed"] == 1
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert "+  license: '********'" in checked.stdout  # the diff is shown, masked
    assert "+    postgresPassword: '********'" in checked.stdout

    applied = run(*base, "--diff", "-vvvv")
    assert recap(applied.stdout)["changed"] == 1
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    written = yaml.safe_load(dest.read_text())
    assert written["global"]["domainName"] == "circleci.example.com"
    assert written["global"]["license"] == LICENSE
    assert "domainName" not in written and "minio" not in written

    rerun = run(*base, "--diff")
    assert recap(rerun.stdout)["changed"] == 0
    assert yaml.safe_load(dest.read_text()) == written

    for proc in (checked, applied, rerun):
        for secret in fixture_secrets():
            assert secret not in proc.stdout + proc.stderr, secret
