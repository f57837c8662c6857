"""migrate-2.19-to-3.yml with PostgreSQL skipped (scenario migrate-2.19-skip-postgresql), and the archives of an earlier,
abandoned run left on the controller and on the box: MongoDB and Vault are migrated, 3.x's PostgreSQL is left as it
was (every table's checksum unchanged, nothing restored into it), and no stale archive is imported.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os

import pytest

from .helpers import VAULT_RESTORE_POD, Lab, scenario

SCENARIO = "migrate-2.19-skip-postgresql"
STALE_RUN = "20200101T000000Z"
# What an earlier run's dump would do to 3.x if it were restored.
STALE_SQL = b"-- PostgreSQL database cluster dump\nCREATE DATABASE stale_marker;\n"


@pytest.fixture(scope="module")
def lab(run, tmp_path_factory):
    started = Lab(run, tmp_path_factory.mktemp("m219skip") / "lab", SCENARIO)
    yield started
    started.down()


def _plant_stale_archives(lab):
    stale = gzip.compress(STALE_SQL)
    run_dir = os.path.join(lab.work_dir, STALE_RUN)
    os.makedirs(run_dir, mode=0o700)
    with open(os.path.join(run_dir, "circleci-pg-export.sql.gz"), "wb") as handle:
        handle.write(stale)
    with open(os.path.join(run_dir, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump({"run_id": STALE_RUN, "archives": {"postgresql": {"sha256": hashlib.sha256(stale).hexdigest()}}}, handle)
    box_dir = os.path.join(lab.vars["circleci_migrate219_box_work_dir"], STALE_RUN)
    os.makedirs(box_dir)
    for path in (os.path.join(box_dir, "circleci-pg-export.sql.gz"),
                 os.path.join(lab.vars["circleci_migrate219_box_work_dir"], "circleci_export.tar.gz")):
        with open(path, "wb") as handle:  # what migrate.sh left in the box user's home
            handle.write(stale)


def test_postgresql_skipped_stays_untouched_and_no_stale_archive_is_imported(lab):
    spec = scenario(SCENARIO)
    _plant_stale_archives(lab)
    pod_before = lab.pg_checksums("pod")
    assert pod_before["circle"] == {"public.flyway_schema_history": pod_before["circle"]["public.flyway_schema_history"]}
    result = lab.play("-e", "circleci_migrate219_skip_postgresql=true")
    assert "datastores: mongodb, vault, keys, skipped: postgresql" in result.stdout
    assert "PostgreSQL: skipped (3.x keeps its own)" in result.stdout
    # The skipped one: untouched, and nothing of the earlier run restored into it.
    assert lab.pg_checksums("pod") == pod_before and "stale_marker" not in lab.pg_checksums("pod")
    assert lab.restores("postgresql-") == 0
    assert "circle-postgres-export" not in [r["name"] for r in lab.box_state()["container_runs"]]
    # The others: migrated, once.
    assert lab.restores("mongodb-") == 1 and lab.restores(VAULT_RESTORE_POD) == 1
    assert lab.mongo_counts() == {"circle_ghe": spec["box"]["mongodb"]["databases"]["circle_ghe"]}
    state = lab.configmap()
    assert state["state"] == "complete" and json.loads(state["skip"]) == ["postgresql"]
    assert "imported.postgresql" not in state and {"imported.mongodb", "imported.vault"} <= set(state)
    expected = dict(spec["cluster"]["replicas"], **{"circleci-server-traefik": 1})
    assert lab.replicas() == {name: [count, count] for name, count in expected.items()}
    assert sorted(os.listdir(os.path.join(lab.work_dir, state["run_id"]))) == [
        "circle-data", "circle-data.tar.gz", "circleci-mongo-export.archive.gz", "circleci-vault.tar.gz", "manifest.json"]
