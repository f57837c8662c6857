"""migrate-2.19-to-3.yml on one lab (scenario migrate-2.19), in order: the check-mode plan, a run stopped by a fault
in the MongoDB import, the re-run that finishes it, a re-run that changes nothing.

Shown here: --check makes no write and no secret leaks; after a fault in the MongoDB import a re-run resumes the same
run (PostgreSQL restored once, by its checksum recorded in the cluster); every PostgreSQL table's row count and row
checksum, and every MongoDB collection's count, equal on both sides; the replica counts restored to the recorded
ones (not "all to 1"); no secret in -vvvv output, on a command line or in a world-readable file.
"""
from __future__ import annotations

import os
import stat

import pytest

from ..conftest import ProcessSampler, changed_tasks
from .helpers import Lab, canaries, scenario, world_readable_files_containing

SCENARIO = "migrate-2.19"


@pytest.fixture(scope="module")
def lab(run, tmp_path_factory):
    started = Lab(run, tmp_path_factory.mktemp("m219") / "lab", SCENARIO)
    yield started
    started.down()


def _no_leak(lab, result, sampler, secrets):
    out = result.stdout + result.stderr
    assert [s for s in secrets if s in out] == []
    assert len(sampler.argv) > 10, "the argv sampler saw nothing"
    assert [s for s in secrets if any(s in argv for argv in sampler.argv)] == []
    roots = [lab.state_dir, lab.work_dir, lab.files["box_root"], os.environ.get("ANSIBLE_HOME", "")]
    assert world_readable_files_containing([r for r in roots if r], secrets) == []


def test_check_mode_writes_nothing_and_leaks_no_secret(lab):
    secrets = canaries(scenario(SCENARIO))
    box_before, pod_before = lab.pg_checksums("box"), lab.pg_checksums("pod")
    with ProcessSampler() as sampler:
        result = lab.play("--check", "-vvvv")
    assert lab.admin.requests() == [], "check mode must not write to the cluster or the box"
    assert lab.box_state()["app"]["State"] == "started" and lab.box_state()["container_runs"] == []
    assert lab.configmap() is None and lab.journal() == []
    assert lab.pg_checksums("box") == box_before and lab.pg_checksums("pod") == pod_before
    assert "3.x cluster: CircleCI Server 3.4.8 in circleci-server" in result.stdout
    assert '\\"output-processor\\": 3' in result.stdout and '\\"vm-service\\": 0' in result.stdout
    assert "datastores: postgresql, mongodb, vault, keys" in result.stdout
    _no_leak(lab, result, sampler, secrets)


def test_a_fault_in_the_mongodb_import_then_a_rerun_restores_postgresql_once(lab):
    spec = scenario(SCENARIO)
    secrets = canaries(spec)
    box_before = lab.pg_checksums("box")
    assert sum(len(t) for t in box_before.values()) == 9 and sum(rows for t in box_before.values() for rows, _md5 in t.values()) == 7140
    lab.admin.add_fault(r"/pods/mongodb-0/exec\?.*mongorestore", service="kube", status=500,
                        message="injected: mongorestore lost its connection")
    first = lab.play(check=False)
    assert first.returncode != 0 and "mongodb - restore this run's archive" in first.stdout
    state = lab.configmap()
    assert state["state"] == "importing" and set(state) >= {"run_id", "replicas", "imported.postgresql"}
    assert "imported.mongodb" not in state
    assert lab.restores("postgresql-") == 1 and lab.restores("mongodb-") == 0
    assert {name: spec_ for name, (spec_, _avail) in lab.replicas().items()} == dict.fromkeys(spec["cluster"]["replicas"], 0) | {
        "circleci-server-traefik": 0}

    lab.admin.clear_faults()
    with ProcessSampler() as sampler:
        second = lab.play("-vvvv")
    assert "resuming run %s (imported: postgresql)" % state["run_id"] in second.stdout
    assert "Import mongodb, vault, already imported by run %s: postgresql" % state["run_id"] in second.stdout
    assert lab.restores("postgresql-") == 1, "PostgreSQL was restored twice"
    assert lab.restores("mongodb-") == 1 and lab.restores("vault-") == 1
    # Both sides, through the same commands: every table's row count and row checksum.
    assert lab.pg_checksums("pod") == box_before
    assert lab.mongo_counts() == {"circle_ghe": spec["box"]["mongodb"]["databases"]["circle_ghe"]}
    expected = dict(spec["cluster"]["replicas"], **{"circleci-server-traefik": 1})
    assert lab.replicas() == {name: [count, count] for name, count in expected.items()}
    assert lab.configmap()["state"] == "complete"
    assert lab.box_state()["app"]["State"] == "stopped" and lab.box_state()["containers"] == []
    # The keys for the KOTS console: 0600 files in a 0700 directory, named (not printed).
    keys_dir = os.path.join(lab.work_dir, state["run_id"], "circle-data")
    assert stat.S_IMODE(os.stat(keys_dir).st_mode) == 0o700
    assert sorted(os.listdir(keys_dir)) == sorted(spec["box"]["keys"])
    assert {stat.S_IMODE(os.stat(os.path.join(keys_dir, n)).st_mode) for n in os.listdir(keys_dir)} == {0o600}
    assert os.path.join(keys_dir, "circle-signing-key") in second.stdout
    # Nothing of the export is left on the box.
    assert os.listdir(lab.vars["circleci_migrate219_box_work_dir"]) == []
    _no_leak(lab, second, sampler, secrets)


def test_a_rerun_after_the_migration_changes_nothing(lab):
    result = lab.play()
    assert changed_tasks(result.stdout) == set() and "changed=0" in result.stdout
    assert "already migrated by run" in result.stdout
    assert lab.restores("postgresql-") == 1 and lab.restores("mongodb-") == 1
