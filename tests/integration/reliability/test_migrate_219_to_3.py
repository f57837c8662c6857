"""migrate-2.19-to-3.yml in the reliability suite (suite.py: what each proof shows) on the lab's migrate-2.19 scenario:
the 2.19 services box over SSH (tests/lab/box), the 3.x cluster KOTS left (Kubernetes stand-in), two real PostgreSQL
clusters (the box's and the 3.x pod's), MongoDB and Vault stand-ins (tests/lab/migrate219.py).

The mutating steps are two, not every write: a full migration is ~100 tasks, each faulted run repeats the preflight
(and, before the import, the export), and the directory this entry replaced cost ~40 s of CPU for its three runs. Each
run of the chain does real work: the MongoDB import (the issue's fault: the export, PostgreSQL's restore and the run's
record done; the next run must not restore PostgreSQL again, which the end state checks in the lab's exec journal over
every run of the module), and Vault's unseal, after its data is restored into the claim (the next run restores it
again, as it is not recorded yet, and must keep 3.x's own Vault files aside only once: the end state finds them, not
the first restore's, in .pre-migrate-219-<run>). The run's first write (the ConfigMap) is left out: a run refused
there is a preflight-only run, which the bad inputs already show changes nothing.

What moved here from tests/integration/migrate_219_to_3/test_migrate_219_to_3.py (removed): the check-mode run
(0 writes, the plan), the canaries (the 3.x datastore passwords, the signing and encryption keys, Vault's unseal
keys and root token), the fault in the MongoDB import then the resume, the re-run after completion, and the end
state (every PostgreSQL table's rows and row checksum equal on both sides, MongoDB counts, the recorded replica
counts, the keys as 0600 files). The skip test (stale archives, PostgreSQL skipped) stays there: it needs its own lab.
"""
from __future__ import annotations

import os
import re
import stat

from tests.lab.migrate219 import VAULT_FRESH_FILES

from ..migrate_219_to_3.helpers import VAULT_RESTORE_POD, Lab, canaries, scenario
from .suite import SPEC, BadInput, Playbook, ReliabilityProofs, Step

SCENARIO = "migrate-2.19"
BOOL = r"unable to convert to bool"
INT = r"cannot be converted to an int"


def _lab_canaries(_lab) -> list:
    return canaries(scenario(SCENARIO))


def plan_named(runner, output) -> None:
    """The plan names both sides and what the run does; nothing was touched (the box's app still up, no export
    container run, no run recorded, no exec into a datastore pod)."""
    assert "3.x cluster: CircleCI Server 3.4.8 in circleci-server" in output
    assert '\\"output-processor\\": 3' in output and '\\"vm-service\\": 0' in output
    assert "datastores: postgresql, mongodb, vault, keys" in output
    lab = Lab.attached(runner.lab)
    box = lab.box_state()
    assert box["app"]["State"] == "started" and box["container_runs"] == []
    assert lab.configmap() is None and lab.journal() == []


def _files(root) -> list:
    return [os.path.relpath(os.path.join(d, n), root) for d, _dirs, names in os.walk(root) for n in names]


def state_run_id(lab) -> str:
    return lab.configmap()["run_id"]


def end_state(running, output) -> None:
    """After the chain (and the re-run, which runs before this proof): every PostgreSQL table's row count and row
    checksum equal on both sides (9 tables, 7140 rows, 5 databases), the MongoDB counts, each datastore restored once
    over all the runs, the recorded replica counts, the keys as 0600 files in a 0700 directory, the box emptied."""
    spec = scenario(SCENARIO)
    lab = Lab.attached(running)
    box = lab.pg_checksums("box")
    assert sum(len(t) for t in box.values()) == 9 and sum(rows for t in box.values() for rows, _md5 in t.values()) == 7140
    assert lab.pg_checksums("pod") == box
    assert lab.mongo_counts() == {"circle_ghe": spec["box"]["mongodb"]["databases"]["circle_ghe"]}
    # The last run resumed the run that the Vault fault stopped; PostgreSQL and MongoDB were restored once in all.
    assert re.search(r"resuming run \S+ \(imported: mongodb, postgresql\)", output), output[-3000:]
    assert (lab.restores("postgresql-"), lab.restores("mongodb-")) == (1, 1), lab.journal()
    # Vault: restored by the run its unseal fault stopped, then again by the last one (the import was not recorded),
    # through the restore pod with the StatefulSet at 0; the claim kept, 3.x's own files aside once, Vault back at 1.
    assert lab.restores(VAULT_RESTORE_POD) == 2, lab.journal()
    volume = os.path.join(lab.files["migrate219_volumes"], "data-vault-0")
    (kept,) = [n for n in os.listdir(volume) if n.startswith(".pre-migrate-219-")]
    assert kept == ".pre-migrate-219-" + state_run_id(lab)
    assert sorted(_files(os.path.join(volume, kept))) == sorted(VAULT_FRESH_FILES)
    archived = spec["box"]["vault_files"]
    assert sorted(f for f in _files(volume) if not f.startswith(kept)) == sorted(archived)
    assert lab.kubectl("get", "statefulset", "vault", "-o", "jsonpath={.spec.replicas}") == "1"
    assert lab.kubectl("get", "pods", "-o", "name").count(VAULT_RESTORE_POD) == 0
    expected = dict(spec["cluster"]["replicas"], **{"circleci-server-traefik": 1})
    assert lab.replicas() == {name: [count, count] for name, count in expected.items()}
    state = lab.configmap()
    assert state["state"] == "complete" and {"imported.postgresql", "imported.mongodb", "imported.vault"} <= set(state)
    box_state = lab.box_state()
    assert box_state["app"]["State"] == "stopped" and box_state["containers"] == []
    assert os.listdir(lab.vars["circleci_migrate219_box_work_dir"]) == []
    # The keys for the KOTS console: named in the output (not printed), 0600 files in a 0700 directory.
    keys_dir = os.path.dirname(re.search(r"(/\S+/circle-data)/circle-signing-key", output).group(0))
    assert stat.S_IMODE(os.stat(keys_dir).st_mode) == 0o700
    assert sorted(os.listdir(keys_dir)) == sorted(spec["box"]["keys"])
    assert {stat.S_IMODE(os.stat(os.path.join(keys_dir, n)).st_mode) for n in os.listdir(keys_dir)} == {0o600}


ENTRY = Playbook(
    name="migrate-2.19-to-3",
    playbook="playbooks/migrate-2.19-to-3.yml",
    alias="circleci.server.migrate_2_19_to_3",
    scenario=SCENARIO,
    argument_spec=("inputs", "migrate_2_19_to_3"),
    # The controller's work directory, named by the operator: the archives and the keys' 0600 files go there.
    extra_vars={"circleci_work_dir": "{tmp}/work"},
    operator_dirs=("{tmp}/work",),
    lab_canaries=_lab_canaries,
    scan_lab_dirs=("box_root",),
    # pods/exec arrives as a WebSocket GET (the fault rules see that method) and is logged as POST (its API verb).
    mutating_steps=(
        Step("mongodb-import", "kube", ("GET", "POST"), r"/pods/mongodb-0/exec\?.*mongorestore"),
        Step("vault-unseal", "kube", ("GET", "POST"), r"/pods/vault-0/exec\?.*unseal"),
    ),
    # A re-run after completion reads and stops at the plan ("already migrated"): not one exec, so no write at all.
    rerun_allowed_writes=(),
    after_check=plan_named,
    verify=end_state,
    bad_inputs=(
        BadInput("poll-delay-word", {"circleci_poll_delay": "ten"}, "circleci_poll_delay.*" + INT, SPEC),
        BadInput("poll-delay-fraction", {"circleci_poll_delay": "1.5"}, "circleci_poll_delay.*" + INT, SPEC),
        BadInput("poll-delay-float", {"circleci_poll_delay": 2.5}, "circleci_poll_delay.*" + INT, SPEC),
        BadInput("poll-delay-list", {"circleci_poll_delay": [1]}, "circleci_poll_delay.*" + INT, SPEC),
        BadInput("poll-delay-with-unit", {"circleci_poll_delay": "10s"}, "circleci_poll_delay.*" + INT, SPEC),
        BadInput("skip-postgresql-maybe", {"circleci_migrate219_skip_postgresql": "maybe"},
                 "circleci_migrate219_skip_postgresql.*" + BOOL, SPEC),
        BadInput("skip-postgresql-dict", {"circleci_migrate219_skip_postgresql": {"postgresql": True}},
                 "circleci_migrate219_skip_postgresql.*" + BOOL, SPEC),
        BadInput("skip-mongodb-sentence", {"circleci_migrate219_skip_mongodb": "yes please"},
                 "circleci_migrate219_skip_mongodb.*" + BOOL, SPEC),
        BadInput("skip-mongodb-two", {"circleci_migrate219_skip_mongodb": 2}, "circleci_migrate219_skip_mongodb.*" + BOOL, SPEC),
        BadInput("skip-vault-list", {"circleci_migrate219_skip_vault": [True]}, "circleci_migrate219_skip_vault.*" + BOOL, SPEC),
        BadInput("skip-vault-negative", {"circleci_migrate219_skip_vault": -1}, "circleci_migrate219_skip_vault.*" + BOOL, SPEC),
        # End to end: the inputs' argument spec (the playbook's first task), then the preflight's plan, which reads both
        # sides and lists every problem before the first write.
        BadInput("skip-vault-word-end-to-end", {"circleci_migrate219_skip_vault": "perhaps"}, "circleci_migrate219_skip_vault.*" + BOOL),
        # One run for both sides' free space: the plan lists every problem before it stops.
        BadInput("both-disks-too-full", {"migrate219_preflight_box_min_free_kb": 10 ** 12,
                                         "migrate219_preflight_controller_min_free_kb": 10 ** 12},
                 r"KiB free on the box under .*, the export needs 1000000000000.*KiB free on the controller for .*, "
                 r"the archives need 1000000000000"),
        BadInput("poll-delay-negative-word", {"circleci_poll_delay": "-"}, "circleci_poll_delay.*" + INT, SPEC),
        BadInput("poll-delay-dict", {"circleci_poll_delay": {"seconds": 10}}, "circleci_poll_delay.*" + INT, SPEC),
    ),
)


class TestMigrate219To3(ReliabilityProofs):
    entry = ENTRY
