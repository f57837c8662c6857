"""upgrade-2.19.yml: the check-mode plan writes nothing and leaks no secret; a running CI job stops the run first.

molecule/upgrade_219 shows converge, idempotence and the end state; these show what molecule cannot.
"""
from __future__ import annotations

import os

from .helpers import ArgvSampler, box_state, files_containing, play


def test_check_mode_writes_nothing_and_the_nomad_token_leaks_nowhere(lab_up, run, tmp_path):
    lab = lab_up("box-2.19")
    token = "canary-nomad-token-2f8e61d0c4"
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("circleci_nomad_token: %s\n" % token)
    os.chmod(secrets, 0o600)
    before = box_state(lab)
    with ArgvSampler() as sampler:
        result = play(run, lab, "--check", "-vvvv", "-e", "@%s" % secrets)
    assert lab.admin.requests() == [], "check mode must not write to AWS, Nomad or the box's state"
    after = box_state(lab)
    assert after["app"]["State"] == "started" and after["replicated_version"] == before["replicated_version"]
    assert after["installer_runs"] == [] and after["docker"] == before["docker"]
    # The plan names what the real run changes.
    assert "Replicated 2.34.1 -> 2.38.6: update" in result.stdout
    assert "app started at sequence 2439 -> 2460 (2.19.6)" in result.stdout
    assert token not in result.stdout and token not in result.stderr
    assert len(sampler.seen) > 10, "the argv sampler saw nothing"
    assert not [argv for argv in sampler.seen if token in argv]
    assert files_containing([lab.state["state_dir"], lab.files["box_root"]], token) == []


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
