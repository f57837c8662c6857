# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 2.19 -> 3.x migration's logic: which archives may be imported (only this run's, intact, each datastore once,
a skipped one never), and what the two sides' counts are and how they differ."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.circleci.server.plugins.module_utils import migrate219

RUN = "20260105T101500Z"
CHECKSUMS = "== circle\npublic.builds|2500|cb67\npublic.projects|0|\n== vms\npublic.tasks|900|67e7\n"


def _run_dir(tmp_path, run_id=RUN, datastores=("postgresql", "mongodb", "vault", "keys"), damage=None):
    archives = {}
    for datastore in datastores:
        data = ("%s archive of %s" % (datastore, run_id)).encode()
        (tmp_path / migrate219.ARCHIVE_NAMES[datastore]).write_bytes(data)
        archives[datastore] = {"sha256": hashlib.sha256(data).hexdigest()}
    if damage:
        (tmp_path / migrate219.ARCHIVE_NAMES[damage]).write_bytes(b"damaged in transfer")
    manifest = {"run_id": run_id, "archives": archives, "counts": {"postgresql": CHECKSUMS, "mongodb": "{}"}}
    (tmp_path / migrate219.MANIFEST).write_text(json.dumps(manifest))
    return archives


def test_everything_of_this_run_is_imported_once(tmp_path):
    archives = _run_dir(tmp_path)
    plan = migrate219.plan_import(str(tmp_path), RUN, list(migrate219.DATASTORES), {})
    assert plan["to_import"] == ["postgresql", "mongodb", "vault"] and plan["already_imported"] == []
    assert plan["archives"]["postgresql"]["counts"] == CHECKSUMS
    resumed = migrate219.plan_import(str(tmp_path), RUN, list(migrate219.DATASTORES),
                                     {"postgresql": archives["postgresql"]["sha256"]})
    assert resumed["to_import"] == ["mongodb", "vault"] and resumed["already_imported"] == ["postgresql"]


def test_an_import_recorded_from_another_archive_is_done_again(tmp_path):
    _run_dir(tmp_path)
    plan = migrate219.plan_import(str(tmp_path), RUN, list(migrate219.DATASTORES), {"postgresql": "0" * 64})
    assert "postgresql" in plan["to_import"]


def test_a_skipped_datastore_is_neither_required_nor_imported(tmp_path):
    _run_dir(tmp_path, datastores=("mongodb", "vault", "keys"))
    (tmp_path / migrate219.ARCHIVE_NAMES["postgresql"]).write_bytes(b"a stale dump of an earlier run")
    plan = migrate219.plan_import(str(tmp_path), RUN, ["mongodb", "vault", "keys"], {})
    assert plan["to_import"] == ["mongodb", "vault"] and plan["skipped"] == ["postgresql"]
    assert "postgresql" not in plan["archives"]


@pytest.mark.parametrize("problem, expected", [
    ("other-run", "is of run '20200101T000000Z', not of this run"),
    ("damaged", "has sha256"),
    ("missing", "is missing"),
    ("no-manifest", "cannot read this run's manifest"),
])
def test_archives_that_are_not_this_runs_intact_ones_are_refused(tmp_path, problem, expected):
    if problem == "other-run":
        _run_dir(tmp_path, run_id="20200101T000000Z")
    elif problem == "damaged":
        _run_dir(tmp_path, damage="mongodb")
    elif problem == "missing":
        _run_dir(tmp_path)
        os.remove(tmp_path / migrate219.ARCHIVE_NAMES["vault"])
    with pytest.raises(migrate219.MigrationError, match=expected):
        migrate219.plan_import(str(tmp_path), RUN, list(migrate219.DATASTORES), {})


@pytest.mark.parametrize("run_id", ["", "latest", "../20260105T101500Z", "20260105T101500Z/.."])
def test_a_run_id_this_playbook_does_not_make_is_refused(tmp_path, run_id):
    with pytest.raises(migrate219.MigrationError, match="run id"):
        migrate219.plan_import(str(tmp_path), run_id, ["keys"], {})


def test_table_checksums_parse_and_compare():
    source = migrate219.parse_table_checksums(CHECKSUMS)
    assert source == {"circle": {"public.builds": [2500, "cb67"], "public.projects": [0, ""]},
                      "vms": {"public.tasks": [900, "67e7"]}}
    target = migrate219.parse_table_checksums(CHECKSUMS.replace("2500|cb67", "2499|aaaa") + "== extra\n")
    assert migrate219.compare_counts(source, source, "postgresql") == []
    assert migrate219.compare_counts(source, target, "postgresql") == [
        "postgresql: circle.public.builds is [2500, 'cb67'] on 2.19 and [2499, 'aaaa'] on 3.x"]
    assert migrate219.compare_counts(source, {"circle": source["circle"]}, "postgresql") == [
        "postgresql: database vms is missing on 3.x"]
    with pytest.raises(migrate219.MigrationError):
        migrate219.parse_table_checksums("public.builds|2500|cb67\n")  # a table before any database


def test_mongo_counts_are_the_last_json_line():
    text = 'MongoDB shell version v3.6.22\n{"circle_ghe": {"builds": 3000}}\n'
    assert migrate219.parse_mongo_counts(text) == {"circle_ghe": {"builds": 3000}}
    with pytest.raises(migrate219.MigrationError):
        migrate219.parse_mongo_counts("Error: Authentication failed.\n")
