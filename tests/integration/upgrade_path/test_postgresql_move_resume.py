"""upgrade.yml's PostgreSQL 12 -> 14 move stopped by a lossy restore, then resumed, on the cheapest lab that has it.

The lab is aws-4.9: 4.9.5 whose operator already ran upgrade-mongo-to-7.0, PostgreSQL still 12, so the path is the one
hop 4.9.5 -> 4.10.0 with the PostgreSQL move and no MongoDB step. The tests run in file order on one lab:

0. too little room on the data volume for the dump and the restored copy: the run stops before its first change;
1. the restore loses rows (the stand-in's knob restore_loses): the run stops before the release that would start on
   the restored data, the application left stopped, the PostgreSQL 12 data untouched;
2. with the knob off, the re-run continues from that hop (the dump it took is not taken again, no release repeated),
   restores again, the counts match, and it reaches the newest release.

The whole path from 4.2.7, its move included, in one run: test_upgrade_path.py.
"""
from __future__ import annotations

import re

from tests.lab.charts import NEWEST

from .common import OPT_IN, application_replicas, assert_postgresql_14_serves_the_started_application, history, journal, lab_fixture, play

lab = lab_fixture("aws-4.9")
SOURCE = "4.9.5"
LOST = {"conductor_production": {"public.job_ended_events": 7}}
STATE = {}


def test_too_little_room_for_the_postgresql_move_stops_the_run_before_its_first_change(lab, run):
    STATE["history_before"] = history(lab)
    assert list(STATE["history_before"].values()) == [SOURCE]
    lab.admin.clear_requests()
    lab.admin.datastores({"free_kb": 64})
    try:
        stopped = play(run, lab, *OPT_IN, check=False)
    finally:
        lab.admin.datastores({"free_kb": None})
    assert stopped.returncode != 0
    message = stopped.stdout + stopped.stderr
    assert re.search(r"The PostgreSQL data volume \(/bitnami/postgresql\) has 64\.00 KB free; moving .* needs about", message)
    assert "Nothing was changed. Grow the PersistentVolumeClaim" in message
    assert re.search(r"Hop 1/1: 4\.9\.5 -> 4\.10\.0 .*; PostgreSQL 12\.[^ ]+ -> 14\.22\.4094-4922444 first", stopped.stdout)
    # The free-space check is a pod exec (df, pg_database_size); nothing else reached the cluster.
    assert [e["path"] for e in lab.admin.requests() if "/exec" not in e["path"]] == []
    assert not [e for e in journal(lab) if e["event"] in ("dump", "initdb") and e.get("seeded") is not True]
    assert history(lab) == STATE["history_before"]


def test_a_restore_that_lost_rows_stops_the_hop_before_the_release_starts_on_the_data(lab, run):
    lab.admin.datastores({"restore_loses": LOST})
    try:
        stopped = play(run, lab, *OPT_IN, check=False)
    finally:
        lab.admin.datastores({"restore_loses": {}})
    assert stopped.returncode != 0
    message = stopped.stdout + stopped.stderr
    assert "these tables do not hold the rows they held before the dump" in message
    assert "conductor_production|public.job_ended_events|246" in message
    assert "now conductor_production|public.job_ended_events|239" in message
    assert "The PostgreSQL 12 data is untouched in /bitnami/postgresql/data" in message
    assert "Do not start the application before the counts match" in message
    assert "TASK [Upgrade the release to %s]" % NEWEST not in stopped.stdout, "nothing starts on the restored data"
    assert "TASK [Migrate the values to %s]" % NEWEST not in stopped.stdout
    assert history(lab) == STATE["history_before"]
    assert [name for name, replicas in application_replicas(lab).items() if replicas] == [], "the application stays stopped"
    events = [e for e in journal(lab) if e["store"] == "postgresql"]
    # The 12 data directory is the seeded one; the dump is read from it and every restore goes to the new 14 one.
    assert [(e["dir"], e["major"]) for e in events if e["event"] == "initdb"] == [
        ("/bitnami/postgresql/data", "12"), ("/bitnami/postgresql/data-14", "14")]
    assert [e["major"] for e in events if e["event"] == "restore"] == ["14"]
    STATE["output"] = stopped.stdout


def test_the_rerun_continues_from_that_hop_restores_again_and_reaches_the_newest_release(lab, run):
    result = play(run, lab, *OPT_IN)
    assert list(history(lab).values()) == [SOURCE, NEWEST], "the hop's release once, none repeated"
    assert "Hop 1/1: %s -> %s" % (SOURCE, NEWEST) in result.stdout
    events = [e for e in journal(lab) if e["store"] == "postgresql"]
    (dump,) = [e for e in events if e["event"] == "dump"]
    lossy, restore = [e for e in events if e["event"] == "restore"]
    assert dump["major"] == "12" and dump["rows"] > 0
    assert lossy["rows"] == dump["rows"] - 7, "the first restore lost the rows the knob took"
    assert restore["major"] == "14" and restore["from_major"] == "12" and restore["rows"] == dump["rows"]
    assert "refused-to-start" not in [e["event"] for e in events], "no PostgreSQL binary ever met data it cannot open"
    assert "the same row counts as before the dump" in result.stdout
    output = STATE["output"] + result.stdout
    assert output.rindex("postgresql_upgrade : Restore the dump") < output.index("TASK [Upgrade the release to %s]" % NEWEST)
    assert_postgresql_14_serves_the_started_application(lab)
