"""upgrade.yml from 4.2.7 to the newest release in one run against the lab (aws-4.2), then a re-run.

One chain of runs on one lab (module scope): the tests run in file order and each relies on the one before.
The data-store opt-ins are on: the run also takes the internal MongoDB 3.6 -> ... -> 7.0 before the hops that need
it (4.9, 4.10), checking each step's featureCompatibilityVersion, and moves the internal PostgreSQL 12 to 14 before
the 4.10 hop (dump, restore on a new data directory, row counts compared).
"""
from __future__ import annotations

import re

import yaml

from tests.lab.charts import LAST_PATCHES, NEWEST

from ..conftest import changed_tasks
from .common import history, journal, lab_fixture, migrate_values, play, revisions_in_request_order

lab = lab_fixture("aws-4.2")
STATE = {}
OPT_IN = ("-e", "circleci_upgrade_mongodb=true", "-e", "circleci_upgrade_postgresql=true")
POSTGRESQL_PINS = {"registry": "cciserver.azurecr.io", "repository": "server-postgres", "tag": "14.22.4094-4922444"}


def test_one_run_reaches_the_newest_release_through_every_minor(lab, run):
    with open(lab.files["values"]) as handle:
        STATE["values_before"] = yaml.safe_load(handle)
    before = history(lab)
    assert list(before.values())[-1] == "4.2.7"
    result = play(run, lab, *OPT_IN)
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
                 "Restore the dump on PostgreSQL", "Stop if a table's row count differs from before the dump"):
        assert "TASK [circleci.server.postgresql_upgrade : %s" % task in output, task
    assert re.search(r"\d+ tables, the same row counts as before the dump", output)
    assert output.index("postgresql_upgrade : Restore the dump") < output.index("TASK [Upgrade the release to %s]" % NEWEST)
    from kubernetes import client, config
    api = client.AppsV1Api(config.new_client_from_config(config_file=lab.files["kubeconfig"]))
    (container,) = api.read_namespaced_stateful_set("postgresql", "circleci-server").spec.template.spec.containers
    assert container.image.endswith(":" + POSTGRESQL_PINS["tag"])
    assert {e.name: e.value for e in container.env}["POSTGRESQL_DATA_DIR"] == "/bitnami/postgresql/data-14"
    stopped = [d.metadata.name for d in api.list_namespaced_deployment("circleci-server", label_selector="layer=application").items
               if not d.spec.replicas]
    assert stopped == [], "the 4.10 upgrade started the application again"


def test_the_final_values_are_helm_values_migrate_from_42_to_the_newest(lab):
    with open(lab.files["values"]) as handle:
        final = yaml.safe_load(handle)
    expected = migrate_values(STATE["values_before"], "4.2.7", NEWEST)
    # plus what the PostgreSQL move must keep: the new image and data directory
    expected.setdefault("postgresql", {}).setdefault("image", {}).update(POSTGRESQL_PINS)
    expected["postgresql"]["postgresqlDataDir"] = "/bitnami/postgresql/data-14"
    assert final == expected


def test_a_rerun_changes_nothing(lab, run):
    lab.admin.clear_requests()
    again = play(run, lab, *OPT_IN)
    assert changed_tasks(again.stdout) == set()
    assert re.search(r"changed=0 ", again.stdout)
    assert lab.admin.requests() == [], "a re-run after success writes nothing"
