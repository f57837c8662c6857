# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each hop of a 4.x upgrade needs besides ``helm upgrade``, as data: one row per minor landed on.

``versions.plan_upgrade`` says which hops an upgrade takes; this table says, per hop, which roles run
(cloud/IAM steps before the release diff, post-checks after the upgrade), which data-store versions
the hop needs, which server-terraform release the Nomad clients must be on first, and what is left to
do by hand. A new release adds a row here, not a branch in a playbook.

The MongoDB chain is the one of CircleCI-Public/server-scripts (``upgrade-mongo-to-4.4``,
``upgrade-mongo-to-7.0``): one minor at a time, the image of ``statefulset/mongodb`` replaced, then
``setFeatureCompatibilityVersion`` (``confirm: true`` from 7.0, which is one-way), ``mongosh`` from 5.0.

Facts: ``server-4x-docs.md`` sections 1.4-1.9 (UPG-4.X), ``server-scripts.md`` sections 3.5-3.7.
Plain Python with no Ansible import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.circleci.server.plugins.module_utils.versions import Version, VersionError

#: Roles a hop may name (the playbook includes ``circleci.server.<role>``); anything else in the table is a bug.
KNOWN_ROLES = ("machine_provisioner_iam", "vm_service_leftovers", "vm_service_security_group", "post_upgrade")


@dataclass(frozen=True)
class HopHooks:
    """What the hop landing on ``minor`` needs besides the values hop, the release diff and helm upgrade."""

    minor: str
    cloud_roles: tuple = ()            # run after the values hop, before the release diff
    check_roles: tuple = ()            # their read-only check.yml runs with the whole path's checks, before any change
    post_roles: tuple = ()             # run after helm upgrade
    mongodb_min: str = ""              # the MongoDB version the hop needs before it starts
    postgresql_recommended: str = ""   # a PostgreSQL major the release recommends (a warning, or the opt-in step)
    terraform_module: str = ""         # the server-terraform release the Nomad clients must be on first
    manual_after: tuple = ()           # (id, title, detail) left to the operator after the hop
    source: str = ""


HOOKS = (
    HopHooks("4.3", cloud_roles=("machine_provisioner_iam", "vm_service_leftovers"),
             post_roles=("vm_service_security_group", "post_upgrade"),
             check_roles=("machine_provisioner_iam", "vm_service_leftovers", "vm_service_security_group"), source="UPG-4.3"),
    HopHooks("4.7", terraform_module="4.7.0", source="UPG-4.7"),
    HopHooks("4.8", terraform_module="4.8.0", manual_after=(
        ("machine-runner-3", "Migrate machine runners to machine runner 3.0",
         "The launch agent is not supported from 4.8 (UPG-4.8)."),), source="UPG-4.8"),
    HopHooks("4.9", terraform_module="4.9.0", mongodb_min="4.4", source="UPG-4.9"),
    HopHooks("4.10", terraform_module="4.10.0", mongodb_min="7.0", postgresql_recommended="14", manual_after=(
        ("workflow-retention", "Re-apply a custom workflow retention period",
         "4.10 reads :wfc-workflow-expired-delete-after-days instead of :wfc-workflow-deletion-retention-period and "
         "does not migrate it: left unset, retention reverts to 660 days. In the frontend REPL (kubectl port-forward "
         "<frontend pod> 16000:6005): (circle.http.api.admin-commands/set-setting "
         ":wfc-workflow-expired-delete-after-days <DAYS>)."),), source="UPG-4.10; data-retention (4.10)"),
)
_BY_MINOR = {row.minor: row for row in HOOKS}

# (MongoDB minor, image tag) in upgrade order (server-scripts upgrade-mongo-to-4.4 and -7.0).
MONGODB_CHAIN = (
    ("3.6", "3.6.22-debian-9-r38"),
    ("4.0", "4.0.27-debian-9-r118"),
    ("4.2", "4.2.21-debian-10-r8"),
    ("4.4", "4.4.15-debian-10-r8"),
    ("5.0", "5.0.24-debian-11-r20"),
    ("6.0", "6.0.13-debian-11-r21"),
    ("7.0", "7.0.15-debian-12-r2"),
)
MONGODB_REPOSITORY = "server-mongodb"
# PostgreSQL 12 -> 14 (the image of server-scripts upgrade-postgres-to-14; for server 4.9 and later). The collection
# moves the data by dump and restore (counts compared) onto a new data directory instead of pg_upgrade --link in
# place, so the 12 data stays untouched for a rollback.
POSTGRESQL_14_TAG = "14.22.4094-4922444"
POSTGRESQL_REPOSITORY = "server-postgres"

_TAG_RE = re.compile(r"^v?(\d+)\.(\d+)")


class HopsError(ValueError):
    """Inputs the hop table cannot be applied to; the message says what and what to do."""


def hooks_for(minor: str) -> HopHooks:
    """The hooks of the hop landing on ``minor`` (an empty row for a minor without any)."""
    return _BY_MINOR.get(minor, HopHooks(minor))


def minor_of(text) -> str:
    """``"4.4"`` from an image tag or version such as ``4.4.15-debian-10-r8``, ``v7.0.15`` or ``12.16.37-7629bfd``."""
    match = _TAG_RE.match(str(text or "").strip())
    if not match:
        raise HopsError("'%s' is not a data-store version or image tag (expected MAJOR.MINOR...)" % (text,))
    return "%d.%d" % (int(match.group(1)), int(match.group(2)))


def _key(minor: str) -> tuple:
    return tuple(int(part) for part in minor.split("."))


def mongodb_shell(minor: str) -> str:
    """The shell a MongoDB image ships: ``mongo`` up to 4.4, ``mongosh`` from 5.0 (server-scripts 3.6)."""
    return "mongosh" if _key(minor) >= (5, 0) else "mongo"


def mongodb_steps(version: str, fcv: str, target: str) -> list:
    """The MongoDB steps from the running ``version`` (and its ``fcv``) to at least ``target``, in order.

    Each step is ``{version, tag, fcv, shell, confirm, set_image}``. A step whose image already runs but whose
    featureCompatibilityVersion lags (a run stopped between the two) comes first with ``set_image`` false,
    so a re-run resumes where the last one stopped.
    """
    minors = [minor for minor, _tag in MONGODB_CHAIN]
    current = minor_of(version)
    wanted = minor_of(target)
    if current not in minors:
        raise HopsError("MongoDB %s is not on the documented upgrade chain (%s): upgrade it by hand to one of those "
                        "first." % (version, ", ".join(minors)))
    if wanted not in minors:
        raise HopsError("MongoDB %s is not on the documented upgrade chain (%s)." % (target, ", ".join(minors)))
    steps = []
    if fcv and _key(minor_of(fcv)) < _key(current) and _key(current) <= _key(wanted) and current != minors[0]:
        steps.append(_step(current, set_image=False))
    for minor, _tag in MONGODB_CHAIN:
        if _key(current) < _key(minor) <= _key(wanted):
            steps.append(_step(minor))
    return steps


def _step(minor: str, set_image: bool = True) -> dict:
    tag = dict(MONGODB_CHAIN)[minor]
    return {"version": minor, "tag": tag, "fcv": minor, "shell": mongodb_shell(minor),
            "confirm": _key(minor) >= (7, 0), "set_image": set_image}


def mongodb_procedure(namespace: str, version: str, fcv: str, target: str, registry: str = "cciserver.azurecr.io") -> list:
    """The exact commands that take the internal MongoDB from ``version`` to ``target``, for a stopped run."""
    steps = mongodb_steps(version, fcv, target)
    lines = [
        "Take a dump first: kubectl -n %s exec mongodb-0 -- bash -c 'mongodump -u root -p \"$MONGODB_ROOT_PASSWORD\" "
        "--authenticationDatabase admin --gzip --archive=/bitnami/mongodb/pre-upgrade-%s.archive.gz'" % (
            namespace, minor_of(version)),
    ]
    for step in steps:
        if step["set_image"]:
            image = "%s/%s:%s" % (registry, MONGODB_REPOSITORY, step["tag"])
            lines.append("kubectl -n %s set image statefulset/mongodb mongodb=%s && kubectl -n %s rollout status "
                         "statefulset/mongodb --timeout=300s" % (namespace, image, namespace))
        command = "db.adminCommand({setFeatureCompatibilityVersion: \\\"%s\\\"%s})" % (
            step["fcv"], ", confirm: true" if step["confirm"] else "")
        one_way = "; one-way: 7.0 cannot go back" if step["confirm"] else ""
        lines.append("kubectl -n %s exec mongodb-0 -- bash -c '%s -u root -p \"$MONGODB_ROOT_PASSWORD\" --quiet --eval "
                     "\"%s\"' (expect ok: 1%s)" % (namespace, step["shell"], command, one_way))
    lines.append("Then set mongodb.image.{registry: %s, repository: %s, tag: %s} in the values file (or leave it to the "
                 "chart's default) and run the playbook again. Or run it with circleci_upgrade_mongodb: true, which does "
                 "all of this." % (registry, MONGODB_REPOSITORY, steps[-1]["tag"] if steps else "<unchanged>"))
    return lines


def _version_at_least(have: str, need: str) -> bool:
    return _key(minor_of(have)) >= _key(minor_of(need))


def postgresql_procedure(namespace: str, version: str, tag: str = POSTGRESQL_14_TAG,
                         registry: str = "cciserver.azurecr.io") -> list:
    """What the PostgreSQL step of a hop does (the role ``postgresql_upgrade``), as commands an operator can follow."""
    major = minor_of(version).split(".")[0]
    dump = "/bitnami/postgresql/pre-upgrade-%s.sql" % major
    return [
        "Stop the application: kubectl -n %s scale deploy -l layer=application --replicas=0" % namespace,
        "Count the rows of every table of every database (kept next to the dump).",
        "Dump: kubectl -n %s exec postgresql-0 -- bash -c 'PGPASSWORD=\"$POSTGRES_PASSWORD\" pg_dumpall -U postgres "
        "--clean --if-exists -f %s'" % (namespace, dump),
        "Run PostgreSQL %s on a new data directory (the %s data stays in /bitnami/postgresql/data for a rollback): "
        "postgresql.image.{registry: %s, repository: %s, tag: %s} and postgresql.postgresqlDataDir: "
        "/bitnami/postgresql/data-%s" % (tag.split(".")[0], major, registry, POSTGRESQL_REPOSITORY, tag, tag.split(".")[0]),
        "Restore: kubectl -n %s exec postgresql-0 -- bash -c 'PGPASSWORD=\"$POSTGRES_PASSWORD\" psql -U postgres -d "
        "postgres -f %s'" % (namespace, dump),
        "Count again and compare; then vacuumdb --all --analyze-in-stages.",
    ]


def plan_hops(path: list, namespace: str = "circleci-server", mongodb_version: str = "", mongodb_fcv: str = "",
              postgresql_version: str = "", terraform_version: str = "", upgrade_mongodb: bool = False,
              upgrade_postgresql: bool = False) -> dict:
    """Each hop of ``path`` (``UpgradePlan.as_dict()['path']``) with its hooks and whether it may start.

    A hop that needs what the cluster does not have yet is ``blocked`` (with the reason and the exact procedure)
    unless the run will do it itself (``upgrade_mongodb``). ``first_blocked`` is the index of the first blocked hop
    (None when none is): the run goes as far as the hop before it and stops there, before any change of that hop.
    A PostgreSQL older than a hop recommends is a warning, or, with ``upgrade_postgresql``, the hop's ``postgresql``
    step (dump, restore on the new major, counts compared) before its values hop.
    """
    if terraform_version:
        try:
            terraform = Version.parse(terraform_version)
        except VersionError as exc:
            raise HopsError("circleci_nomad_terraform_version: %s" % exc)
    hops, warnings = [], []
    mongodb_after = mongodb_version
    postgresql_after = postgresql_version
    first_blocked = None
    for index, hop in enumerate(path):
        target_minor = ".".join(str(hop["to"]).split(".")[:2])
        hooks = hooks_for(target_minor) if hop.get("kind") == "minor" else HopHooks(target_minor)
        entry = {
            "index": index, "from": hop["from"], "to": hop["to"], "kind": hop.get("kind", "minor"),
            "kubernetes_range": hop.get("kubernetes_range"), "notes": list(hop.get("notes") or []),
            "cloud_roles": list(hooks.cloud_roles), "post_roles": list(hooks.post_roles),
            "check_roles": list(hooks.check_roles),
            "mongodb": None, "postgresql": None, "terraform_module": hooks.terraform_module or None,
            "manual_after": [{"id": i, "title": t, "detail": d} for i, t, d in hooks.manual_after],
            "blocked": [], "source": hooks.source,
        }
        for role in entry["cloud_roles"] + entry["post_roles"] + entry["check_roles"]:
            if role not in KNOWN_ROLES:
                raise HopsError("hop table bug: role %r is not one of %s" % (role, ", ".join(KNOWN_ROLES)))
        if hooks.mongodb_min:
            need = {"min": hooks.mongodb_min, "current": mongodb_after or None, "upgrade": False, "steps": []}
            if not mongodb_after:
                entry["blocked"].append(
                    "CircleCI Server %s needs MongoDB %s or later, and the MongoDB version could not be read from the "
                    "cluster (statefulset/mongodb): check it yourself, then set circleci_mongodb_version to it." % (
                        hop["to"], hooks.mongodb_min))
            elif not _version_at_least(mongodb_after, hooks.mongodb_min):
                need["steps"] = mongodb_steps(mongodb_after, mongodb_fcv, hooks.mongodb_min)
                if upgrade_mongodb:
                    need["upgrade"] = True
                    mongodb_after = hooks.mongodb_min
                    mongodb_fcv = hooks.mongodb_min
                else:
                    entry["blocked"].append(
                        "CircleCI Server %s needs MongoDB %s or later (%s); the cluster runs MongoDB %s. The run stops "
                        "before this hop changes anything. Procedure: %s" % (
                            hop["to"], hooks.mongodb_min, hooks.source, mongodb_after, " ; ".join(
                                mongodb_procedure(namespace, mongodb_after, mongodb_fcv, hooks.mongodb_min))))
            entry["mongodb"] = need
        if hooks.terraform_module and (not terraform_version or terraform < Version.parse(hooks.terraform_module)):
            entry["blocked"].append(
                "CircleCI Server %s needs the Nomad clients' Terraform module (CircleCI-Public/server-terraform) at "
                "release %s first (%s)%s: terraform plan and apply it, then run again with "
                "circleci_nomad_terraform_version: %s." % (
                    hop["to"], hooks.terraform_module, hooks.source,
                    "; circleci_nomad_terraform_version is %s" % terraform_version if terraform_version else "",
                    hooks.terraform_module))
        older = hooks.postgresql_recommended and postgresql_after and \
            _key(minor_of(postgresql_after))[0] < int(hooks.postgresql_recommended)
        if hooks.postgresql_recommended and postgresql_after and upgrade_postgresql:
            # The step runs even when the image is already on the new major: a run stopped after the move resumes
            # the restore there, and the values must keep the new image and data directory.
            entry["postgresql"] = {"recommended": hooks.postgresql_recommended, "current": postgresql_after,
                                   "upgrade": bool(older), "tag": POSTGRESQL_14_TAG}
            postgresql_after = POSTGRESQL_14_TAG if older else postgresql_after
        elif older:
            warnings.append(
                "CircleCI Server %s recommends PostgreSQL %s; the internal PostgreSQL is %s (end of life). Run with "
                "circleci_upgrade_postgresql: true to upgrade it in this run (downtime: the application is scaled "
                "to 0; a dump of every database, restored on PostgreSQL %s, row counts compared), or by hand: %s" % (
                    hop["to"], hooks.postgresql_recommended, minor_of(postgresql_after),
                    hooks.postgresql_recommended, " ; ".join(postgresql_procedure(namespace, postgresql_after))))
        if entry["blocked"] and first_blocked is None:
            first_blocked = index
        hops.append(entry)
    return {"hops": hops, "first_blocked": first_blocked, "warnings": warnings,
            "versions": [hop["to"] for hop in hops]}
