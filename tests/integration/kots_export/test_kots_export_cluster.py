# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""circleci.server.kots_export reading the 3.x release from the lab Kubernetes API server (helm's storage
Secrets, written by the real helm binary), through ansible-playbook, without sending one mutating request."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import yaml

# The lab API server fixture of the lab_kube tests, shared rather than copied.
from tests.integration.lab_kube.conftest import chart_path, kube_lab  # noqa: F401  pylint: disable=unused-import

from .test_kots_export import FIXTURE, fixture_secrets, recap

LICENSE = "fixture-4x-license-cluster-42"

PLAYBOOK = """
- name: Export the 3.x release from the cluster
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Export
      circleci.server.kots_export:
        namespace: circleci-server
        dest: "{{ dest }}"
        license: "{{ license }}"
        revision: "{{ revision | default(omit) }}"
      register: export
    - name: Show the result
      ansible.builtin.debug:
        var: export
"""


def playbook(lab, *args):
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", *args], env=lab.env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def result_of(stdout):
    """The registered result, from the debug task's JSON."""
    start = stdout.index('"export": {')
    body = stdout[start + len('"export": '):]
    depth = 0
    for index, char in enumerate(body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return json.loads(body[:index + 1])
    raise AssertionError(stdout)


def test_reads_the_current_revision_and_never_writes_to_the_cluster(kube_lab, tmp_path):  # pylint: disable=redefined-outer-name
    # The lab_kube chart as a 3.x chart (kots_export refuses any other), its Deployment labelled as KOTS labels what
    # it deploys (kots_export refuses a release KOTS did not deploy).
    chart = tmp_path / "labapp-3.x"
    shutil.copytree(chart_path(), str(chart))
    chart_yaml = chart / "Chart.yaml"
    chart_yaml.write_text(re.sub(r"(?m)^version:.*$", "version: 3.4.8", chart_yaml.read_text()))
    common = ["-n", "circleci-server", "-f", str(FIXTURE), "--set", "hookJob=false"]
    kube_lab.helm("install", "circleci-server", str(chart), "--create-namespace", *common)
    kube_lab.helm("upgrade", "circleci-server", str(chart), *common, "--set", "domainName=ci-new.example.com")
    kube_lab.kubectl("-n", "circleci-server", "label", "deployment", "circleci-server-web", "kots.io/app-slug=circleci-server")

    book = tmp_path / "export.yml"
    book.write_text(PLAYBOOK)
    secret_vars = tmp_path / "secret-vars.yml"
    secret_vars.write_text("license: %s\n" % LICENSE)
    os.chmod(secret_vars, 0o600)
    dest = tmp_path / "values-4.0.yaml"
    extra = [str(book), "-e", "dest=%s" % dest, "-e", "@%s" % secret_vars]
    before = len(kube_lab.requests())

    checked = playbook(kube_lab, *extra, "-e", "revision=1", "--check", "--diff")
    assert recap(checked.stdout)["changed"] == 1 and not dest.exists()
    first = result_of(checked.stdout)
    assert first["source"]["revision"] == 1 and first["domain_name"] == "circleci.example.com"

    applied = playbook(kube_lab, *extra, "-vvv")
    current = result_of(applied.stdout)
    assert current["source"] == {"type": "release", "namespace": "circleci-server", "release": "circleci-server",
                                 "revision": 2, "chart_version": "3.4.8", "status": "deployed"}
    written = yaml.safe_load(dest.read_text())
    assert written["global"]["domainName"] == "ci-new.example.com"
    assert written["postgresql"]["auth"]["postgresPassword"] == "fixture-postgres-password-2e9f"
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"

    rerun = playbook(kube_lab, *extra)
    assert recap(rerun.stdout)["changed"] == 0

    assert kube_lab.requests()[before:] == []  # only reads: not one mutating request
    for proc in (checked, applied, rerun):
        for secret in fixture_secrets() | {LICENSE}:
            assert secret not in proc.stdout + proc.stderr, secret
    assert not re.search(r"fixture-[a-z]", json.dumps(current))
