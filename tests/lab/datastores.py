"""The internal MongoDB and PostgreSQL of a CircleCI Server release, as far as an upgrade can see them.

The version a data store runs is the tag of its StatefulSet Pod's image (``mongodb.image.tag``,
``postgresql.image.tag`` in the values, or the chart's default of that minor), as with the real images.
What lives in the data is kept here, per namespace:

- MongoDB: the featureCompatibilityVersion (FCV) of the data. A Pod whose binary cannot open that data
  (a binary more than one minor of the chain above the FCV, or older than it) goes into
  ``CrashLoopBackOff``, as mongod refuses to start; so a helm upgrade that jumps MongoDB from 3.6 to 4.4
  fails its ``--wait``. ``kubectl exec`` in ``mongodb-*`` answers the ``mongo`` shell up to 4.4 and
  ``mongosh`` from 5.0 (each missing where the real images lack it): ``db.version()``, ``getParameter``
  of ``featureCompatibilityVersion``, ``setFeatureCompatibilityVersion`` (then that ``getParameter`` when the same
  ``--eval`` asks for both) (only to the binary's minor or
  the one before; ``confirm: true`` required from 7.0), ``mongodump --archive=<path>`` and
  ``test -s <path>`` for a dump taken. The shells must be given ``-u root``.
- PostgreSQL: ``psql ... -c 'SHOW server_version'`` prints the image's major.minor; its data directories (the
  major that created each, the tables' row counts), dumps and restores (``PostgresStandIn``).

Each change is appended to ``<state dir>/datastores.jsonl`` (what tests read: FCV steps, dumps).
Not modelled: the data itself, replica sets, authentication beyond the presence of ``-u root``, the
``mongo``/``mongosh`` output formats beyond the JSON printed here, SQL, pg_upgrade.
"""
from __future__ import annotations

import json
import os
import re
import threading

MONGODB_CHAIN = ("3.6", "4.0", "4.2", "4.4", "5.0", "6.0", "7.0")
_TAG = re.compile(r":v?(\d+)\.(\d+)(?:\.(\d+))?[^:/]*$")


def image_version(image: str) -> tuple:
    """(major.minor, full version) from an image reference such as ``reg/server-mongodb:4.4.15-debian-10-r8``."""
    match = _TAG.search(image or "")
    if not match:
        return "", ""
    minor = "%s.%s" % (int(match.group(1)), int(match.group(2)))
    return minor, "%s.%s" % (minor, int(match.group(3) or 0))


def _container_image(pod: dict, name: str) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    spec = next((c for c in containers if c.get("name") == name), containers[0] if containers else {})
    return spec.get("image", "")


class _Journal:
    def __init__(self, path: str | None):
        self.path = path
        self.lock = threading.Lock()

    def write(self, **event) -> None:
        if not self.path:
            return
        with self.lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, sort_keys=True) + "\n")


class MongoStandIn:
    """The internal MongoDB of one namespace: its data's FCV, dumps, and the shells' answers."""

    def __init__(self, namespace: str, journal: _Journal, fcv: str | None = None):
        self.namespace = namespace
        self.journal = journal
        self.fcv = str(fcv) if fcv else None
        self.dumps: dict = {}

    def install(self, kube) -> None:
        kube.controllers.pod_state_hooks.append(self.pod_state)
        kube.set_exec(self.namespace, "mongodb-", "", stdout=self.exec)

    def _ours(self, pod: dict) -> bool:
        return pod["metadata"].get("namespace") == self.namespace and pod["metadata"]["name"].startswith("mongodb-")

    def pod_state(self, pod: dict):
        if not self._ours(pod):
            return None
        binary, _full = image_version(_container_image(pod, "mongodb"))
        if binary not in MONGODB_CHAIN:
            return None
        if self.fcv is None:  # the data was created by the first binary that ran
            self.fcv = binary
            self.journal.write(store="mongodb", event="initialised", fcv=binary)
        index = MONGODB_CHAIN.index(binary)
        opens = {binary} | ({MONGODB_CHAIN[index - 1]} if index else set())
        if self.fcv not in opens:
            self.journal.write(store="mongodb", event="refused-to-start", binary=binary, fcv=self.fcv)
            return "CrashLoopBackOff"
        return None

    def exec(self, pod: dict, container, argv: list) -> tuple:
        del container
        line = " ".join(argv)
        binary, full = image_version(_container_image(pod, "mongodb"))
        dump = re.search(r"\bmongodump\b.*--archive[= ](\S+)", line)
        if dump:
            path = dump.group(1).strip("'\"")
            self.dumps[path] = {"binary": binary, "fcv": self.fcv}
            self.journal.write(store="mongodb", event="dump", path=path, binary=binary, fcv=self.fcv)
            return "", "writing admin.system.version to archive '%s'\ndone dumping\n" % path, 0
        test = re.match(r"^(?:bash -c )?'?test -s (\S+?)'?$", line)
        if test:
            return "", "", 0 if test.group(1).strip("'\"") in self.dumps else 1
        shell = re.search(r"(?<![\w-])(mongosh|mongo)(?![\w-])", line)
        if not shell:
            return "", "lab: %s: not scripted in the MongoDB stand-in\n" % (argv[0] if argv else ""), 127
        available = {"mongo": binary in MONGODB_CHAIN[:MONGODB_CHAIN.index("6.0")],
                     "mongosh": binary in MONGODB_CHAIN[MONGODB_CHAIN.index("5.0"):]}
        if not available.get(shell.group(1)):
            return "", "bash: line 1: %s: command not found\n" % shell.group(1), 127
        if not re.search(r"(-u|--username)[ =]root\b", line):
            return ("", "MongoServerError: command requires authentication (lab: pass -u root -p \"$MONGODB_ROOT_PASSWORD\")\n", 1)
        if "setFeatureCompatibilityVersion" in line:
            out, err, code = self._set_fcv(binary, line)
            if "getParameter" in line:  # set, then read back in the same --eval
                out += json.dumps({"featureCompatibilityVersion": {"version": self.fcv}, "ok": 1}) + "\n"
            return out, err, code
        if "featureCompatibilityVersion" in line:
            return json.dumps({"featureCompatibilityVersion": {"version": self.fcv}, "ok": 1}) + "\n", "", 0
        if "db.version()" in line:
            return full + "\n", "", 0
        if "ping" in line:
            return json.dumps({"ok": 1}) + "\n", "", 0
        return "", "lab: this --eval is not scripted in the MongoDB stand-in\n", 1

    def _set_fcv(self, binary: str, line: str) -> tuple:
        wanted = re.search(r"setFeatureCompatibilityVersion\W+(\d+\.\d+)", line)
        if not wanted:
            return json.dumps({"ok": 0, "errmsg": "setFeatureCompatibilityVersion needs a version"}) + "\n", "", 0
        target = wanted.group(1)
        index = MONGODB_CHAIN.index(binary)
        allowed = {binary} | ({MONGODB_CHAIN[index - 1]} if index else set())
        if target not in allowed:
            return json.dumps({"ok": 0, "errmsg": "invalid featureCompatibilityVersion %s for a %s binary" % (
                target, binary)}) + "\n", "", 0
        if target >= "7.0" and target != self.fcv and not re.search(r"confirm\W+true", line):
            return json.dumps({"ok": 0, "code": 7369300, "errmsg": (
                "Once you have upgraded to 7.0, you will not be able to downgrade FCV and binary version without "
                "support assistance. Please re-run this command with 'confirm: true' to confirm the upgrade.")}) + "\n", "", 0
        if target != self.fcv:
            self.journal.write(store="mongodb", event="fcv", before=self.fcv, after=target, binary=binary)
            self.fcv = target
        return json.dumps({"ok": 1}) + "\n", "", 0


#: The databases and tables (with their row counts) of the internal PostgreSQL a lab installation starts with:
#: a few of the real ones (server-scripts name domain, conductor_production, contexts_service_production).
SEED_TABLES = {
    "conductor_production": {"public.job_started_events": 250, "public.job_ended_events": 246},
    "contexts_service_production": {"public.contexts": 4, "public.environment_variables": 11},
    "domain": {"domain.orgs": 3, "domain.users": 12},
}
DEFAULT_DATA_DIR = "/bitnami/postgresql/data"
DEFAULT_FREE_KB = 10 * 1024 * 1024   # the data volume's free space: 10 GiB
ROW_BYTES = 8192                     # what a row weighs in pg_database_size (a page per row: the lab's tables are small)


def _container_env(pod: dict, name: str) -> dict:
    containers = (pod.get("spec") or {}).get("containers") or []
    spec = next((c for c in containers if c.get("name") == name), containers[0] if containers else {})
    return {e.get("name"): e.get("value") for e in spec.get("env") or [] if "value" in e}


class PostgresStandIn:
    """The internal PostgreSQL of one namespace: its data directories (each with the major that created it and its
    databases' tables with row counts), dumps and files on the data volume, and psql's answers.

    The data directory a Pod runs on is its ``POSTGRESQL_DATA_DIR`` (Bitnami's; the chart's
    ``postgresql.postgresqlDataDir``). A directory that does not exist is created by the first binary that starts on
    it (initdb: empty, except the lab's first one, which holds ``SEED_TABLES``); a binary of another major than the
    directory's refuses to start (``CrashLoopBackOff``), as postgres does ("database files are incompatible"), from
    major 12 on (the 3.x -> 4.0 migration's 11 -> 12 is not modelled).
    ``kubectl exec`` in ``postgresql-*`` answers (with ``-U postgres``): ``SHOW server_version``, the row-count query
    of the role postgresql_upgrade (anything with ``query_to_xml``: ``db|schema.table|count`` lines, also written to
    the file after ``tee``), ``pg_dumpall ... -f <path>``, ``psql ... -f <path>`` (restores such a dump: drops and
    recreates its databases), ``test -s <path>``, ``cat <path>``, ``touch <path>``, ``ls -1 <dir>``, ``vacuumdb``, and
    ``a && b`` chains of those; ``df -Pk <dir>`` (the data volume: ``free_kb`` available) and the sum of
    ``pg_database_size`` (``ROW_BYTES`` per row of the data directory).
    Knobs (scenario ``datastores.postgresql`` or the admin endpoint ``POST /datastores``): ``free_kb``, the volume's
    free space; ``restore_loses`` (``{db: {table: rows}}``), rows a restore leaves out, as a dump that missed them
    would.
    Not modelled: SQL, roles, locales, extensions, concurrent writes, pg_upgrade, the space files really take.
    """

    def __init__(self, namespace: str, journal: _Journal | None = None, tables: dict | None = None,
                 free_kb: int = DEFAULT_FREE_KB, restore_loses: dict | None = None):
        self.namespace = namespace
        self.journal = journal or _Journal(None)
        self.seed = tables if tables is not None else SEED_TABLES
        self.dirs: dict = {}     # data dir -> {"major": "12", "tables": {db: {table: rows}}}
        self.files: dict = {}    # path on the data volume -> content (dumps: their tables)
        self.free_kb = free_kb
        self.restore_loses = restore_loses or {}

    def configure(self, knobs: dict) -> None:
        """Set the knobs ``free_kb`` and ``restore_loses`` (the admin endpoint; a key absent is left as it is)."""
        if "free_kb" in knobs:
            self.free_kb = int(knobs["free_kb"]) if knobs["free_kb"] is not None else DEFAULT_FREE_KB
        if "restore_loses" in knobs:
            self.restore_loses = knobs["restore_loses"] or {}

    def install(self, kube) -> None:
        kube.controllers.pod_state_hooks.append(self.pod_state)
        kube.set_exec(self.namespace, "postgresql-", "", stdout=self.exec)

    def _ours(self, pod: dict) -> bool:
        return pod["metadata"].get("namespace") == self.namespace and pod["metadata"]["name"].startswith("postgresql-")

    @staticmethod
    def _binary(pod: dict) -> str:
        minor = image_version(_container_image(pod, "postgresql"))[0]
        return minor.split(".")[0] if minor else ""

    @staticmethod
    def _data_dir(pod: dict) -> str:
        return _container_env(pod, "postgresql").get("POSTGRESQL_DATA_DIR") or DEFAULT_DATA_DIR

    def _data(self, pod: dict) -> dict:
        """The data directory ``pod`` runs on, created (initdb) by its binary when it does not exist yet."""
        binary, data_dir = self._binary(pod), self._data_dir(pod)
        if data_dir not in self.dirs:  # initdb
            first = not self.dirs
            self.dirs[data_dir] = {"major": binary, "tables": json.loads(json.dumps(self.seed)) if first else {}}
            self.journal.write(store="postgresql", event="initdb", dir=data_dir, major=binary, seeded=first)
        return self.dirs[data_dir]

    @staticmethod
    def _refuses(data_major: str, binary: str) -> bool:
        """Whether postgres of major ``binary`` refuses data created by ``data_major``. Modelled from 12 on only: the
        KOTS-era 11 -> 12 of the 3.x -> 4.0 migration (the lab's kots_chart) is not modelled."""
        majors = [int(m) for m in (data_major, binary) if str(m).isdigit()]
        return len(majors) == 2 and majors[0] != majors[1] and min(majors) >= 12

    def pod_state(self, pod: dict):
        if not self._ours(pod):
            return None
        binary, data_dir = self._binary(pod), self._data_dir(pod)
        if not binary:
            return None
        if self._refuses(self._data(pod)["major"], binary):
            self.journal.write(store="postgresql", event="refused-to-start", binary=binary, dir=data_dir,
                               major=self.dirs[data_dir]["major"])
            return "CrashLoopBackOff"
        return None

    def exec(self, pod: dict, container, argv: list) -> tuple:
        """Runs each part of an ``a && b`` chain in turn (stdout joined; the first failure stops it)."""
        del container
        out, err = "", ""
        for part in " ".join(argv).split(" && "):
            stdout, stderr, code = self._exec_one(pod, part)
            out, err = out + stdout, err + stderr
            if code != 0:
                return out, err, code
        return out, err, 0

    def _exec_one(self, pod: dict, line: str) -> tuple:
        argv = line.split()
        data = self._data(pod)
        if self._refuses(data["major"], self._binary(pod)):
            return "", "error: unable to upgrade connection: container not found (lab: CrashLoopBackOff)\n", 1
        path = r"['\"]?(/[\w./-]+)['\"]?"
        test = re.search(r"\btest -[se] " + path, line)
        if test:
            return "", "", 0 if self.files.get(test.group(1)) else 1
        touch = re.search(r"\btouch " + path, line)
        if touch:
            self.files.setdefault(touch.group(1), "touched")
            return "", "", 0
        listing = re.search(r"\bls -1 " + path, line)
        if listing:
            prefix = listing.group(1).rstrip("/") + "/"
            names = sorted({f[len(prefix):].split("/")[0] for f in list(self.files) + list(self.dirs) if f.startswith(prefix)})
            return "".join(n + "\n" for n in names), "", 0
        free = re.search(r"\bdf -Pk " + path, line)
        if free:
            total = max(self.free_kb * 2, 1)
            return ("Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                    "/dev/lab-pvc %d %d %d 50%% %s\n" % (total, total - self.free_kb, self.free_kb, free.group(1))), "", 0
        cat = re.search(r"\bcat " + path, line)
        if cat:
            if cat.group(1) not in self.files:
                return "", "cat: %s: No such file or directory\n" % cat.group(1), 1
            return str(self.files[cat.group(1)]), "", 0
        if "vacuumdb" in line:
            return "", "vacuumdb: processing database ...\n", 0
        tool = re.search(r"(?<![\w-])(psql|pg_dumpall)(?![\w-])", line)
        if not tool:
            return "", "lab: %s: not scripted in the PostgreSQL stand-in\n" % (argv[0] if argv else ""), 127
        if not re.search(r"(-U|--username)[ =]postgres\b", line):
            return "", "psql: error: FATAL: role \"root\" does not exist (lab: pass -U postgres)\n", 2
        if tool.group(1) == "pg_dumpall":
            dump = re.search(r"(?:-f|--file)[ =]" + path, line)
            if not dump:
                return "", "lab: pg_dumpall without -f is not scripted in the PostgreSQL stand-in\n", 1
            self.files[dump.group(1)] = {"major": data["major"], "tables": json.loads(json.dumps(data["tables"]))}
            self.journal.write(store="postgresql", event="dump", path=dump.group(1), major=data["major"],
                               rows=_rows(data["tables"]))
            return "", "", 0
        restore = re.search(r"(?:-f|--file)[ =]" + path, line)
        if restore:
            dump = self.files.get(restore.group(1))
            if not isinstance(dump, dict):
                return "", "psql: error: %s: No such file or directory\n" % restore.group(1), 1
            restored = json.loads(json.dumps(dump["tables"]))
            for db, tables in self.restore_loses.items():
                for table, lost in tables.items():
                    if table in restored.get(db, {}):
                        restored[db][table] = max(restored[db][table] - int(lost), 0)
            data["tables"].update(restored)
            self.journal.write(store="postgresql", event="restore", path=restore.group(1), major=data["major"],
                               from_major=dump["major"], rows=_rows(data["tables"]))
            return "SET\nCREATE DATABASE\nCOPY 12\n", "", 0
        if "query_to_xml" in line:
            out = "".join("%s|%s|%d\n" % (db, table, rows) for db in sorted(data["tables"])
                          for table, rows in sorted(data["tables"][db].items()))
            tee = re.search(r"\btee " + path, line)
            if tee:
                self.files[tee.group(1)] = out
            return out, "", 0
        if "pg_database_size" in line:
            return "%d\n" % (_rows(data["tables"]) * ROW_BYTES), "", 0
        if "server_version" in line or "version()" in line:
            return image_version(_container_image(pod, "postgresql"))[0] + "\n", "", 0
        return "", "lab: this query is not scripted in the PostgreSQL stand-in\n", 1


def _rows(tables: dict) -> int:
    return sum(rows for db in tables.values() for rows in db.values())


def install(kube, namespace: str, spec: dict | None, journal_path: str | None) -> dict:
    """Put the data-store stand-ins of ``namespace`` into the lab cluster (scenario key ``datastores``:
    ``{mongodb: {fcv: "3.6"}, postgresql: {tables: {db: {table: rows}}, free_kb, restore_loses}}``; without an FCV, the first MongoDB Pod's
    minor; without tables, ``SEED_TABLES``)."""
    spec = spec or {}
    if journal_path and os.path.exists(journal_path):
        os.remove(journal_path)  # a lab brought up again in the same state dir starts a new journal
    journal = _Journal(journal_path)
    mongo = MongoStandIn(namespace, journal, (spec.get("mongodb") or {}).get("fcv"))
    mongo.install(kube)
    postgresql = spec.get("postgresql") or {}
    postgres = PostgresStandIn(namespace, journal, postgresql.get("tables"), int(postgresql.get("free_kb") or DEFAULT_FREE_KB),
                               postgresql.get("restore_loses"))
    postgres.install(kube)
    return {"mongodb": mongo, "postgresql": postgres}
