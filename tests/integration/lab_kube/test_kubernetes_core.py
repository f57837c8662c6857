"""The kubernetes.core modules (k8s, k8s_info, helm) through ansible-playbook
against the lab Kubernetes API server: every module is idempotent on a re-run, and check mode
sends no write (only dry runs)."""
from __future__ import annotations

import re
import textwrap

from .conftest import chart_path

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    chart: {chart}
  tasks:
    - name: A namespace and a deployment
      kubernetes.core.k8s:
        state: present
        definition:
          - apiVersion: v1
            kind: Namespace
            metadata: {{name: circleci-server}}
          - apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: frontend, namespace: circleci-server, labels: {{app: frontend}}}}
            spec:
              selector: {{matchLabels: {{app: frontend}}}}
              template:
                metadata: {{labels: {{app: frontend, layer: application}}}}
                spec:
                  containers:
                    - name: frontend
                      image: circleci/frontend:1.0
                      env: [{{name: LOG_LEVEL, value: info}}]
                      ports: [{{containerPort: 80}}]
              replicas: 2
        wait: true
        wait_timeout: 20
      register: k8s_apply

    - name: Find the application pods
      kubernetes.core.k8s_info:
        kind: Pod
        namespace: circleci-server
        label_selectors: [layer=application]
      register: pods

    - name: Install the chart
      kubernetes.core.helm:
        name: rel
        chart_ref: "{{{{ chart }}}}"
        release_namespace: circleci-server
        values: {{greeting: ansible}}
        wait: true
        wait_timeout: 30s
      register: helm_install

    - name: Check mode writes nothing (only dry runs)
      kubernetes.core.k8s:
        state: present
        definition:
          apiVersion: apps/v1
          kind: Deployment
          metadata: {{name: frontend, namespace: circleci-server}}
          spec: {{replicas: 1}}
      check_mode: true
      register: k8s_check

    - name: Results
      ansible.builtin.debug:
        msg: >-
          RESULT apply={{{{ k8s_apply.changed }}}}
          check={{{{ k8s_check.changed }}}}
          pods={{{{ (pods.resources | default([])) | length }}}}
          helm={{{{ helm_install.changed | default('skipped') }}}}
          status={{{{ (helm_install.status | default({{}})).status | default('none') }}}}
"""


def _results(proc) -> dict:
    match = re.search(r"RESULT (.*?)\"", proc.stdout)
    assert match, proc.stdout[-3000:]
    return dict(item.split("=", 1) for item in match.group(1).split())


def test_modules_are_idempotent_and_check_mode_writes_nothing(kube_lab):
    playbook = kube_lab.tmp / "site.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK.format(chart=chart_path())))

    def play():
        return kube_lab._run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)], True, None)  # pylint: disable=protected-access

    first = _results(play())
    assert first == {"apply": "True", "check": "True", "pods": "2", "helm": "True", "status": "deployed"}
    writes = len(kube_lab.requests())
    before = kube_lab.server.store.resource_version
    second = _results(play())
    assert second == {"apply": "False", "check": "True", "pods": "2", "helm": "False", "status": "deployed"}
    rerun = kube_lab.requests()[writes:]
    # kubernetes.core.k8s re-sends unchanged objects as PATCHes; the server treats them as no-ops, like a real one.
    assert {r["method"] for r in rerun if "dryRun=All" not in r["path"]} == {"PATCH"}
    assert kube_lab.server.store.resource_version == before, "the re-run changed an object"
    dry_runs = [r["path"] for r in rerun if "dryRun=All" in r["path"]]
    assert dry_runs and all("/deployments/frontend" in path for path in dry_runs)
    assert kube_lab.server.get("apps/v1", "Deployment", "circleci-server", "frontend")["spec"]["replicas"] == 2
