"""upgrade-2.19.yml: a running CI job stops the run first (a scenario of its own).

tests/integration/reliability/test_upgrade_219.py shows check mode, resume at each mutating step, the re-run,
the end state, the secrets and the bad inputs on the box-2.19 scenario.
"""
from __future__ import annotations

from .helpers import box_state, play


def test_a_running_job_stops_the_run_before_the_app_is_stopped(lab_up, run):
    lab = lab_up("box-2.19-jobs-running")
    result = play(run, lab, check=False)
    assert result.returncode != 0
    assert "Stop if a Nomad job is running or pending" in result.stdout
    assert "ci-job-build-7781" in result.stdout and "ci-job-test-7782" in result.stdout
    assert lab.admin.requests() == [], "a refused run changes nothing"
    state = box_state(lab)
    assert state["app"]["State"] == "started" and state["app_actions"] == []
    assert lab.admin.nomad_stats()["killed"] == 0
