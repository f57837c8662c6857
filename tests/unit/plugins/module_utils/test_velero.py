# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recent-backup gate."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.circleci.server.plugins.module_utils.velero import (
    DurationError,
    backup_report,
    parse_duration,
    parse_time,
    read_backups,
)
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import FakeReader

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
NS = "circleci-server"


def stamp(hours_ago):
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup(name, hours_ago=2, phase="Completed", errors=0, warnings=0, included=(NS,), expires_in_hours=720,
           labels=None, excluded=()):
    return {
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero", "labels": labels or {},
                     "creationTimestamp": stamp(hours_ago + 0.2)},
        "spec": {"includedNamespaces": list(included), "excludedNamespaces": list(excluded),
                 "storageLocation": "default"},
        "status": {"phase": phase, "errors": errors, "warnings": warnings, "startTimestamp": stamp(hours_ago + 0.1),
                   "completionTimestamp": stamp(hours_ago), "expiration": stamp(-expires_in_hours)},
    }


def test_a_recent_completed_backup_passes():
    report = backup_report([backup("circleci-server-abc", 2, warnings=3,
                                   labels={"chart--rev": "circleci-server-4.2.7--3"})], NS, NOW)
    assert report["recent_ok"] is True and report["problems"] == []
    assert report["backup"]["name"] == "circleci-server-abc"
    assert report["backup"]["age"] == "2h00m" and report["backup"]["age_seconds"] == 7200
    assert report["backup"]["warnings"] == 3
    assert report["backup"]["chart_revision"] == "circleci-server-4.2.7--3"


def test_no_backup_says_how_to_take_one():
    report = backup_report([], NS, NOW)
    assert report["recent_ok"] is False and report["backup"] is None
    assert "velero backup create" in report["problems"][0] and "--include-namespaces circleci-server" in report["problems"][0]


@pytest.mark.parametrize("kwargs, words", [
    ({"hours_ago": 30}, "more than the maximum age 24h00m"),
    ({"phase": "PartiallyFailed", "errors": 2}, "phase is PartiallyFailed"),
    ({"phase": "InProgress"}, "phase is InProgress"),
    ({"errors": 1}, "1 error(s)"),
    ({"expires_in_hours": -1}, "expired"),
])
def test_an_unfit_newest_backup_is_explained(kwargs, words):
    report = backup_report([backup("b1", **kwargs)], NS, NOW)
    assert report["recent_ok"] is False
    assert report["backup"]["name"] == "b1" and report["backup"]["ok"] is False
    assert words in report["problems"][0] and "velero backup create" in report["problems"][0]


def test_backups_of_other_namespaces_do_not_count():
    backups = [backup("other", included=("monitoring",)), backup("excluded", included=("*",), excluded=(NS,))]
    report = backup_report(backups, NS, NOW)
    assert report["recent_ok"] is False and report["backups_found"] == 0


def test_whole_cluster_backups_count():
    assert backup_report([backup("all", included=())], NS, NOW)["recent_ok"] is True
    assert backup_report([backup("star", included=("*",))], NS, NOW)["recent_ok"] is True


def test_the_newest_good_backup_is_chosen_over_a_newer_failed_one():
    backups = [backup("old", 30), backup("good", 5), backup("failed", 1, phase="Failed")]
    report = backup_report(backups, NS, NOW)
    assert report["recent_ok"] is True and report["backup"]["name"] == "good" and report["backups_found"] == 3


def test_the_newest_is_reported_when_none_passes():
    report = backup_report([backup("older", 40), backup("newest", 30)], NS, NOW)
    assert report["backup"]["name"] == "newest"


def test_max_age_is_a_duration():
    assert backup_report([backup("b", 30)], NS, NOW, max_age="36h")["recent_ok"] is True
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(600) == timedelta(minutes=10)
    assert parse_duration("600") == timedelta(minutes=10)
    for bad in ("", "soon", "-1h", "0", True, "24x"):
        with pytest.raises(DurationError, match="24h"):
            parse_duration(bad)


def test_timestamps_parse_with_fractions_and_offsets():
    assert parse_time("2026-11-23T10:00:00.123456789Z") == datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert parse_time("2026-11-23T12:00:00+02:00") == datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    assert parse_time("garbage") is None and parse_time(None) is None


def test_backups_are_read_from_the_velero_namespace():
    reader = FakeReader([backup("b1")])
    assert [b["metadata"]["name"] for b in read_backups(reader, "velero")] == ["b1"]
    assert read_backups(reader, "elsewhere") == []
    assert reader.calls[0] == ("list_custom", "velero.io", "v1", "backups", "velero", None)
