# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 2.19 -> 3.x migration's logic (playbooks/migrate-2.19-to-3.yml), plain Python for tests to call.

- What the export and import compare: ``parse_table_checksums`` reads what the role file
  ``roles/migrate219_preflight/files/pg_table_checksums.sh`` prints on both sides (per database, every user
  table's row count and an md5 over its rows' text, sorted, so row order does not matter), ``parse_mongo_counts``
  what ``mongo_counts.js`` prints; ``compare_counts`` lists the differences.
- Which archives of the controller's run directory may be imported (``plan_import``): only those of this run
  (the manifest names the run and each archive's sha256, as the box computed it), each checked again on the
  controller; a datastore already imported with the same checksum (recorded in the cluster) is not imported
  again; a skipped datastore is neither required nor imported, whatever archive lies around.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

DATASTORES = ("postgresql", "mongodb", "vault", "keys")
RESTORED = ("postgresql", "mongodb", "vault")  # the keys are handed to the operator, not restored in a pod
ARCHIVE_NAMES = {
    "postgresql": "circleci-pg-export.sql.gz",
    "mongodb": "circleci-mongo-export.archive.gz",
    "vault": "circleci-vault.tar.gz",
    "keys": "circle-data.tar.gz",
}
MANIFEST = "manifest.json"
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z(-[0-9a-f]{1,12})?$")


class MigrationError(Exception):
    """A problem the operator must fix; the message says what and what to do."""


def parse_table_checksums(text: str) -> dict:
    """``{database: {schema.table: [rows, md5]}}`` from the output of pg_table_checksums.sh."""
    result: dict = {}
    current = None
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("== "):
            current = result.setdefault(line[3:].strip(), {})
            continue
        parts = line.rsplit("|", 2)
        if current is None or len(parts) != 3 or not parts[1].isdigit():
            raise MigrationError("unexpected line in the table checksums: %r" % line[:200])
        current[parts[0]] = [int(parts[1]), parts[2]]
    return result


def parse_mongo_counts(text: str) -> dict:
    """``{db: {collection: count}}`` from the JSON the mongo shell printed (the last JSON line of its output)."""
    for line in reversed((text or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            data = json.loads(line)
            return {str(db): {str(c): int(n) for c, n in (colls or {}).items()} for db, colls in data.items()}
    raise MigrationError("no JSON object in the mongo shell's output")


def compare_counts(source: dict, target: dict, what: str) -> list:
    """The differences between two ``{db: {name: value}}`` maps, one line each (empty: equal)."""
    problems = []
    for database in sorted(set(source) | set(target)):
        left, right = source.get(database), target.get(database)
        if right is None:
            problems.append("%s: database %s is missing on 3.x" % (what, database))
            continue
        if left is None:
            continue  # a database 3.x has of its own (the 2.19 export did not carry it)
        for name in sorted(set(left) | set(right)):
            if left.get(name) != right.get(name):
                problems.append("%s: %s.%s is %s on 2.19 and %s on 3.x" % (what, database, name, left.get(name),
                                                                           right.get(name)))
    return problems


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_import(run_dir: str, run_id: str, enabled: list, imported: dict) -> dict:
    """Which datastores to import from ``run_dir`` (the controller's copy of this run's export).

    ``enabled``: the datastores not skipped. ``imported``: ``{datastore: sha256}`` already imported (recorded in
    the cluster). Raises MigrationError when this run's manifest is missing or names another run, or an enabled
    datastore's archive is missing or does not match its recorded checksum."""
    if not RUN_ID.match(run_id or ""):
        raise MigrationError("run id %r is not one this playbook generates (YYYYMMDDTHHMMSSZ)" % run_id)
    unknown = sorted(set(enabled) - set(DATASTORES))
    if unknown:
        raise MigrationError("unknown datastore(s) %s: use %s" % (", ".join(unknown), ", ".join(DATASTORES)))
    manifest_path = os.path.join(run_dir, MANIFEST)
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        raise MigrationError("cannot read this run's manifest %s (%s): the export did not finish; run the playbook "
                             "again, it exports again" % (manifest_path, exc)) from exc
    if manifest.get("run_id") != run_id:
        raise MigrationError("the manifest in %s is of run %r, not of this run %r: an archive of another run is never "
                             "imported; remove the directory and run again" % (run_dir, manifest.get("run_id"), run_id))
    archives, problems = {}, []
    for datastore in DATASTORES:
        if datastore not in enabled:
            continue
        entry = (manifest.get("archives") or {}).get(datastore)
        path = os.path.join(run_dir, ARCHIVE_NAMES[datastore])
        if not entry:
            problems.append("%s: not in this run's manifest (its export did not run)" % datastore)
            continue
        if not os.path.isfile(path) or os.path.islink(path):
            problems.append("%s: %s is missing" % (datastore, path))
            continue
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            problems.append("%s: %s has sha256 %s, the box recorded %s (damaged in transfer?)"
                            % (datastore, path, actual, entry.get("sha256")))
            continue
        archives[datastore] = {"path": path, "sha256": actual, "size": os.path.getsize(path),
                               "counts": (manifest.get("counts") or {}).get(datastore)}
    if problems:
        raise MigrationError("this run's archives cannot be imported: %s. Run the playbook again to export them "
                             "again." % "; ".join(problems))
    to_import = [d for d in RESTORED if d in archives and (imported or {}).get(d) != archives[d]["sha256"]]
    already = [d for d in RESTORED if d in archives and (imported or {}).get(d) == archives[d]["sha256"]]
    return {"run_id": run_id, "archives": archives, "to_import": to_import, "already_imported": already,
            "skipped": [d for d in DATASTORES if d not in enabled]}
