"""upgrade.yml from 4.2.7 to the newest release in one run against the lab (aws-4.2), then a re-run.

One chain of runs on one lab (module scope): the tests run in file order and each relies on the one before.
The MongoDB opt-in is on, so the run also takes the internal MongoDB 3.6 -> ... -> 7.0 before the hops that need
it (4.9, 4.10), checking each step's featureCompatibilityVersion.
"""
from __future__ import annotations

import re

import yaml

from tests.lab.charts import LAST_PATCHES, NEWEST

from .common import changed_tasks, history, journal, lab_fixture, migrate_values, play, revisions_in_request_order

lab = lab_fixture("aws-4.2")
STATE = {}


def test_one_run_reaches_the_newest_release_through_every_minor(lab, run):
    with open(lab.files["values"]) as handle:
        STATE["values_before"] = yaml.safe_load(handle)
    before = history(lab)
    assert list(before.values())[-1] == "4.2.7"
    result = play(run, lab, "-e", "circleci_upgrade_mongodb=true")
    STATE["output"] = result.stdout

    after = history(lab)
    last = max(before)
    assert [after[r] for r in sorted(after) if r > last] == list(LAST_PATCHES[1:]), "every minor's last patch, in order"
    new_revisions = list(range(last + 1, max(after) + 1))
    in_log = [r for r in revisions_in_request_order(lab) if r in new_revisions]
    assert in_log == new_revisions, "the request log shows the releases created in order"
    assert "Hop 8/8: 4.9.5 -> %s" % NEWEST in result.stdout  # 4.2.7 is 4.2's last patch: 8 hops


def test_the_mongodb_chain_ran_before_the_hops_that_need_it_each_fcv_checked(lab):
    steps = [(e["before"], e["after"]) for e in journal(lab) if e["event"] == "fcv"]
    assert steps == [("3.6", "4.0"), ("4.0", "4.2"), ("4.2", "4.4"), ("4.4", "5.0"), ("5.0", "6.0"), ("6.0", "7.0")]
    events = [e["event"] for e in journal(lab)]
    assert events.index("dump") < events.index("fcv"), "a dump before the first step"
    assert "refused-to-start" not in events, "no MongoDB binary ever met data it cannot open"
    checked = re.findall(r"TASK \[circleci\.server\.mongodb_upgrade : Stop if the featureCompatibilityVersion is not "
                         r"(\d\.\d)\]", STATE["output"])
    assert checked == ["4.0", "4.2", "4.4", "5.0", "6.0", "7.0"]


def test_the_final_values_are_helm_values_migrate_from_42_to_the_newest(lab):
    with open(lab.files["values"]) as handle:
        final = yaml.safe_load(handle)
    assert final == migrate_values(STATE["values_before"], "4.2.7", NEWEST)


def test_a_rerun_changes_nothing(lab, run):
    lab.admin.clear_requests()
    again = play(run, lab, "-e", "circleci_upgrade_mongodb=true")
    assert changed_tasks(again.stdout) == set()
    assert re.search(r"changed=0 ", again.stdout)
    assert lab.admin.requests() == [], "a re-run after success writes nothing"
