"""upgrade.yml against an installation on 4.6.6 whose MongoDB is still 3.6 (lab scenario aws-4.6): a fault in the
middle hop and the re-run that continues from it, the stop before the hop that needs a newer MongoDB (with the
procedure), then the plan of the rest of the path in check mode with the data-store opt-ins.

One chain of runs on one lab (module scope): the tests run in file order and each relies on the one before.
The refusal of the path on the real Kubernetes ranges is shown by the planner's unit test
(tests/unit/plugins/module_utils/test_hops.py::test_the_real_kubernetes_ranges_refuse_the_path_before_its_first_hop)
and, for the preflight role that stops on it, by tests/integration/preflight (k8s130).
"""
from __future__ import annotations

from .common import history, journal, lab_fixture, play

lab = lab_fixture("aws-4.6")


def test_a_fault_in_the_middle_hop_stops_the_run(lab, run):
    # The path without the MongoDB opt-in: 4.7.15, 4.8.12, then blocked before 4.9.5. Each hop creates one
    # Secret (helm's release record): the second is 4.8.12's. A permanent error, as a throttle would be retried.
    lab.admin.add_fault(r"/namespaces/circleci-server/secrets$", service="kube", method="POST", nth=2, status=403,
                        message="forbidden: injected by the test")
    failed = play(run, lab, check=False)
    assert failed.returncode != 0
    assert any(f["fired"] for f in lab.admin.faults()), "the fault was never reached"
    lab.admin.clear_faults()
    assert list(history(lab).values()) == ["4.6.6", "4.7.15"]


def test_the_rerun_continues_from_that_hop_and_stops_before_the_mongodb_hop(lab, run):
    lab.admin.clear_requests()
    stopped = play(run, lab, check=False)
    assert stopped.returncode != 0
    assert list(history(lab).values()) == ["4.6.6", "4.7.15", "4.8.12"], "continues at 4.8.12, 4.7.15 not repeated"
    assert "TASK [Upgrade the release to 4.7.15]" not in stopped.stdout
    message = stopped.stdout + stopped.stderr
    for fact in ("needs MongoDB 4.4 or later", "the cluster runs MongoDB 3.6", "mongodump",
                 "setFeatureCompatibilityVersion", "server-mongodb:4.4.15-debian-10-r8", "continues from 4.8.12"):
        assert fact in message, fact
    # Nothing of the 4.9 hop was done: its first step would be MongoDB (exec, image), then the values, then helm.
    assert not [e for e in lab.admin.requests() if "/exec" in e["path"] or "fieldManager=helm" not in e["path"]
                and "/statefulsets/mongodb" in e["path"]]
    assert not [e for e in journal(lab) if e["event"] in ("dump", "fcv")], "MongoDB untouched (no dump, no FCV change)"
    assert "TASK [Upgrade the release to 4.9.5]" not in stopped.stdout
    assert "TASK [Migrate the values to 4.9.5]" not in stopped.stdout


def test_check_mode_plans_every_hop_left_and_writes_nothing(lab, run):
    with open(lab.files["values"]) as handle:
        values_before = handle.read()
    lab.admin.clear_requests()
    planned = play(run, lab, "--check", "-e", "circleci_upgrade_mongodb=true", "-e", "circleci_upgrade_postgresql=true")
    assert lab.admin.requests() == [], "check mode must not write to the cluster or the clouds"
    with open(lab.files["values"]) as handle:
        assert handle.read() == values_before
    for line in ("Hop 1/2: 4.8.12 -> 4.9.5", "Hop 2/2: 4.9.5 -> 4.10.0", "this run upgrades it: 4.0 -> 4.2 -> 4.4",
                 "this run upgrades it: 5.0 -> 6.0 -> 7.0", "PostgreSQL 12.16.37-7629bfd -> 14.22.4094-4922444 first"):
        assert line in planned.stdout, line
    for version in ("4.9.5", "4.10.0"):
        assert "TASK [Upgrade the release to %s]" % version in planned.stdout, "each hop is planned in check mode"
    assert "postgresql.postgresqlDataDir" in planned.stdout or "data-14" in planned.stdout
    assert list(history(lab).values()) == ["4.6.6", "4.7.15", "4.8.12"]
