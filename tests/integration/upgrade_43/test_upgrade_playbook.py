"""upgrade-4.3.yml against the lab: what the reliability suite does not show.

tests/integration/reliability/test_upgrade_43.py shows check mode (no write, the plan names every change, no plan
left), resume after a fault at each mutating step, the re-run, the end state, the secrets and the bad inputs. This
shows a failed upgrade whose rollback fails too.
"""
from __future__ import annotations

import re

from ..conftest import REPO_ROOT

PLAYBOOK = str(REPO_ROOT / "playbooks" / "upgrade-4.3.yml")
ROLE_ALONE_PLAYBOOK = """---
- name: helm_upgrade on its own, to a chart the registry does not have
  hosts: "{{ circleci_hosts | default('localhost') }}"
  gather_facts: false
  tasks:
    - name: Upgrade
      ansible.builtin.include_role:
        name: circleci.server.helm_upgrade
      vars:
        helm_upgrade_chart_version: 4.3.5
"""


def play(run, lab, *extra, check=True, env=None):
    return run("ansible-playbook", "-i", lab.files["inventory"], PLAYBOOK, *extra, env=dict(lab.env, **(env or {})),
               check=check)


def test_a_failed_rollback_is_reported_as_helm_left_it(lab_up, run, tmp_path):
    """The upgrade fails (a Deployment update refused) and so does helm's atomic rollback (its release record refused):
    the message must not say "rolled back"; it gives helm's error, the release's real state, and that IAM moved."""
    lab = lab_up("aws-4.2")
    lab.admin.add_fault(r"/apis/apps/v1/namespaces/circleci-server/deployments/", service="kube", method="PATCH", nth=1,
                        status=422, message="injected by the test: upgrade")
    # the upgrade's own release record is the 1st POST of a release Secret; the rollback's is the 2nd
    lab.admin.add_fault(r"/namespaces/circleci-server/secrets$", service="kube", method="POST", nth=2, status=403,
                        message="injected by the test: rollback")
    failed = play(run, lab, check=False)
    assert failed.returncode != 0
    assert all(f["fired"] for f in lab.admin.faults()), lab.admin.faults()
    message = failed.stdout[failed.stdout.index("Stop because the upgrade to 4.3.9 failed"):]
    assert "helm could NOT roll it back" in message and "rolled back)" not in message, message[:3000]
    assert re.search(r"The release is now at revision \d+, failed", message), message[:3000]
    assert "circleci.server.iam_role_trust_subject" in message and "to_subject=system:serviceaccount:circleci-server:vm-service" in message
    # A plain re-run stops at the preflight: helm's latest revision is failed.
    lab.admin.clear_faults()
    again = play(run, lab, check=False)
    assert again.returncode != 0 and re.search(r"revision \d+ \(circleci-server-4.3.9\) is failed", again.stdout), again.stdout[-3000:]

    # helm_upgrade on its own (as migrate-3-to-4.yml uses it) logs in itself: its temporary registry config (the
    # registry token) must go also when the upgrade fails (here: a chart version the registry does not have).
    (tmp_path / "tmp").mkdir()
    playbook = tmp_path / "helm-upgrade-alone.yml"
    playbook.write_text(ROLE_ALONE_PLAYBOOK)
    alone = run("ansible-playbook", "-i", lab.files["inventory"], str(playbook), "-e",
                "circleci_values_file=%s" % lab.files["values"], env=dict(lab.env, TMPDIR=str(tmp_path / "tmp")),
                check=False)
    assert alone.returncode != 0 and "helm upgrade of circleci-server to 4.3.5 failed" in alone.stdout, alone.stdout[-3000:]
    assert "TASK [circleci.server.helm_upgrade : Log in to the registry (password on stdin)]" in alone.stdout
    left = [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("circleci-server-")]
    assert left == [], "the registry config outlived the failed upgrade: %s" % left
