"""The internal MongoDB and PostgreSQL of a CircleCI Server release, as far as an upgrade can see them.

The version a data store runs is the tag of its StatefulSet Pod's image (``mongodb.image.tag``,
``postgresql.image.tag`` in the values, or the chart's default of that minor), as with the real images.
What lives in the data is kept here, per namespace:

- MongoDB: the featureCompatibilityVersion (FCV) of the data. A Pod whose binary cannot open that data
  (a binary more than one minor of the chain above the FCV, or older than it) goes into
  ``CrashLoopBackOff``, as mongod refuses to start; so a helm upgrade that jumps MongoDB from 3.6 to 4.4
  fails its ``--wait``. ``kubectl exec`` in ``mongodb-*`` answers the ``mongo`` shell up to 4.4 and
  ``mongosh`` from 5.0 (each missing where the real images lack it): ``db.version()``, ``getParameter``
  of ``featureCompatibilityVersion``, ``setFeatureCompatibilityVersion`` (only to the binary's minor or
  the one before; ``confirm: true`` required from 7.0), ``mongodump --archive=<path>`` and
  ``test -s <path>`` for a dump taken. The shells must be given ``-u root``.
- PostgreSQL: ``psql ... -c 'SHOW server_version'`` prints the image's major.minor.

Each change is appended to ``<state dir>/datastores.jsonl`` (what tests read: FCV steps, dumps).
Not modelled: the data itself, replica sets, authentication beyond the presence of ``-u root``, the
``mongo``/``mongosh`` output formats beyond the JSON printed here, PostgreSQL major upgrades.
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
            return self._set_fcv(binary, line)
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


class PostgresStandIn:
    """The internal PostgreSQL of one namespace: its version, from the image."""

    def __init__(self, namespace: str):
        self.namespace = namespace

    def install(self, kube) -> None:
        kube.set_exec(self.namespace, "postgresql-", "", stdout=self.exec)

    @staticmethod
    def exec(pod: dict, container, argv: list) -> tuple:
        del container
        line = " ".join(argv)
        if not re.search(r"(?<![\w-])psql(?![\w-])", line):
            return "", "lab: %s: not scripted in the PostgreSQL stand-in\n" % (argv[0] if argv else ""), 127
        if "server_version" in line or "version()" in line:
            return image_version(_container_image(pod, "postgresql"))[0] + "\n", "", 0
        return "", "lab: this query is not scripted in the PostgreSQL stand-in\n", 1


def install(kube, namespace: str, spec: dict | None, journal_path: str | None) -> dict:
    """Put the data-store stand-ins of ``namespace`` into the lab cluster (scenario key ``datastores``:
    ``{mongodb: {fcv: "3.6"}}``; without an FCV, the first MongoDB Pod's minor)."""
    spec = spec or {}
    if journal_path and os.path.exists(journal_path):
        os.remove(journal_path)  # a lab brought up again in the same state dir starts a new journal
    journal = _Journal(journal_path)
    mongo = MongoStandIn(namespace, journal, (spec.get("mongodb") or {}).get("fcv"))
    mongo.install(kube)
    postgres = PostgresStandIn(namespace)
    postgres.install(kube)
    return {"mongodb": mongo, "postgresql": postgres}
