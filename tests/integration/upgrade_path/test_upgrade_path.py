"""upgrade.yml from 4.2.7 to the newest release against the lab (aws-4.2): one chain of runs on one lab.

The tests run in file order and each relies on the one before (module scope):

1. without the MongoDB opt-in, the run stops before its first change: MongoDB 3.6 is too old for 4.9 (the procedure);
2. with the opt-ins, ONE run plans the whole path (every hop, the MongoDB chain, the PostgreSQL move) before its
   first change, then takes the release from 4.2.7 to the newest: every minor's last patch in order, once
   (helm's history and the request log), MongoDB 3.6 -> ... -> 7.0 before the hops that need it (each
   featureCompatibilityVersion checked), PostgreSQL 12 -> 14 before the 4.10 hop (dump, restore, counts compared),
   the values equal helm_values_migrate 4.2 -> newest (plus the PostgreSQL pins);
3. a re-run changes nothing and writes nothing.

The whole path is taken once in all. The free-space refusal of the PostgreSQL move, and a lossy restore that stops
the move, then the resume from that hop, are test_postgresql_move_resume.py (aws-4.9, the one hop 4.9.5 -> 4.10.0). A fault at each hop's first write then the
resume from that hop (none repeated), and --check of a 4-hop path with the MongoDB chain (no write, every hop
planned), are the reliability suite's proofs on the upgrade entry (tests/integration/reliability/test_upgrade.py,
aws-4.6).
"""
from __future__ import annotations

import re

import yaml

from tests.lab.charts import LAST_PATCHES, NEWEST

from ..conftest import changed_tasks
from .common import (OPT_IN, POSTGRESQL_PINS, assert_postgresql_14_serves_the_started_application, history,
                     journal, lab_fixture, migrate_values, play, revisions_in_request_order)

lab = lab_fixture("aws-4.2")
STATE = {}


def writes(lab) -> list:
    """The lab's request log (it records every write: creates, updates, deletes, pod execs)."""
    return lab.admin.requests()


def test_a_mongodb_too_old_for_a_hop_stops_the_run_before_its_first_change(lab, run):
    with open(lab.files["values"]) as handle:
        STATE["values_before"] = handle.read()
    STATE["history_before"] = history(lab)
    assert list(STATE["history_before"].values())[-1] == "4.2.7"
    lab.admin.clear_requests()
    stopped = play(run, lab, check=False)
    assert stopped.returncode != 0
    message = stopped.stdout + stopped.stderr
    for fact in ("The hop 4.8.12 -> 4.9.5 cannot start, so this run changed nothing", "needs MongoDB 4.4 or later",
                 "the cluster runs MongoDB 3.6", "mongodump", "setFeatureCompatibilityVersion",
                 "server-mongodb:4.4.15-debian-10-r8", "set circleci_target_version to 4.8.12"):
        assert fact in message, fact
    assert writes(lab) == [], "a refused run writes nothing (no hop before the blocked one either)"
    assert history(lab) == STATE["history_before"]
    assert "TASK [circleci.server.upgrade_hop" not in stopped.stdout


def test_one_run_takes_the_release_through_every_minor_to_the_newest(lab, run):
    lab.admin.clear_requests()
    result = play(run, lab, *OPT_IN)
    STATE["output"] = result.stdout
    after = history(lab)
    last = max(STATE["history_before"])
    assert [after[r] for r in sorted(after) if r > last] == list(LAST_PATCHES[1:]), "every minor's last patch, once, in order"
    new_revisions = list(range(last + 1, max(after) + 1))
    assert [r for r in revisions_in_request_order(lab) if r in new_revisions] == new_revisions, \
        "the request log shows the releases created in order"
    # The plan of the whole path, every hop and both data-store steps, shown before the first change.
    first_change = result.stdout.index("TASK [Finish the post-checks of the hop the release last landed on]")
    hops = list(zip(LAST_PATCHES, LAST_PATCHES[1:]))
    for index, (source, target) in enumerate(hops, 1):
        assert 0 <= result.stdout.find("Hop %d/%d: %s -> %s" % (index, len(hops), source, target)) < first_change
    for line in ("this run upgrades it: 4.0 -> 4.2 -> 4.4", "this run upgrades it: 5.0 -> 6.0 -> 7.0"):
        assert 0 <= result.stdout.find(line) < first_change, line
    assert re.search(r"Hop 8/8: 4\.9\.5 -> 4\.10\.0 .*; PostgreSQL 12\.[^ ]+ -> 14\.22\.4094-4922444 first", result.stdout)


def test_the_mongodb_chain_ran_before_the_hops_that_need_it_each_fcv_checked(lab):
    steps = [(e["before"], e["after"]) for e in journal(lab) if e["event"] == "fcv"]
    assert steps == [("3.6", "4.0"), ("4.0", "4.2"), ("4.2", "4.4"), ("4.4", "5.0"), ("5.0", "6.0"), ("6.0", "7.0")]
    events = [e["event"] for e in journal(lab)]
    assert events.index("dump") < events.index("fcv"), "a dump before the first step"
    assert "refused-to-start" not in events, "no MongoDB binary ever met data it cannot open"
    checked = re.findall(r"TASK \[circleci\.server\.mongodb_upgrade : Stop if the featureCompatibilityVersion is not "
                         r"(\d\.\d)\]", STATE["output"])
    assert checked == ["4.0", "4.2", "4.4", "5.0", "6.0", "7.0"]
    output = STATE["output"]
    assert output.index("mongodb_upgrade : Stop if the featureCompatibilityVersion is not 4.4") \
        < output.index("TASK [Upgrade the release to 4.9.5]")


def test_postgresql_moved_to_14_by_dump_and_restore_with_the_counts_compared(lab):
    events = [e for e in journal(lab) if e["store"] == "postgresql"]
    (dump,) = [e for e in events if e["event"] == "dump"]
    (restore,) = [e for e in events if e["event"] == "restore"]
    assert dump["major"] == "12" and dump["rows"] > 0
    assert restore["major"] == "14" and restore["from_major"] == "12" and restore["rows"] == dump["rows"]
    assert [e["dir"] for e in events if e["event"] == "initdb"] == ["/bitnami/postgresql/data", "/bitnami/postgresql/data-14"]
    assert "refused-to-start" not in [e["event"] for e in events], "no PostgreSQL binary ever met data it cannot open"
    output = STATE["output"]
    for task in ("Stop the application", "Count the rows of every table", "Dump every database",
                 "Restore the dump on PostgreSQL", "Stop if a table's row count differs from before the dump",
                 "Stop if the data volume cannot hold the dump and the restored copy"):
        assert "TASK [circleci.server.postgresql_upgrade : %s" % task in output, task
    assert re.search(r"\d+ tables, the same row counts as before the dump", output)
    assert output.index("postgresql_upgrade : Restore the dump") < output.index("TASK [Upgrade the release to %s]" % NEWEST)
    assert_postgresql_14_serves_the_started_application(lab)


def test_the_final_values_are_helm_values_migrate_from_42_to_the_newest(lab):
    with open(lab.files["values"]) as handle:
        final = yaml.safe_load(handle)
    expected = migrate_values(yaml.safe_load(STATE["values_before"]), "4.2.7", NEWEST)
    # plus what the PostgreSQL move must keep: the new image and data directory
    expected.setdefault("postgresql", {}).setdefault("image", {}).update(POSTGRESQL_PINS)
    expected["postgresql"]["postgresqlDataDir"] = "/bitnami/postgresql/data-14"
    assert final == expected


def test_a_rerun_changes_nothing(lab, run):
    lab.admin.clear_requests()
    again = play(run, lab, *OPT_IN)
    assert changed_tasks(again.stdout) == set()
    assert re.search(r"changed=0 ", again.stdout)
    assert writes(lab) == [], "a re-run after success writes nothing"
