# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is there a recent, good Velero backup of the server namespace? (server-4x-docs.md section 3)

``read_backups(reader, velero_namespace)`` lists the Backup objects (velero.io/v1); ``backup_report(backups,
server_namespace, now, max_age)`` is pure and decides. A backup covers the server namespace when it is not
excluded and ``spec.includedNamespaces`` names it, is ``*`` or is empty (Velero's "all namespaces"); the
``chart--rev`` label the documented ``velero backup create`` command sets is reported with it.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

VELERO_GROUP = "velero.io"
VELERO_VERSION = "v1"
VELERO_PLURAL = "backups"
CHART_REV_LABEL = "chart--rev"

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


# A year: anything longer is a typo (and a huge number overflows timedelta).
MAX_AGE_SECONDS = 366 * 86400


class DurationError(ValueError):
    """A max age that is not a duration."""


def parse_duration(value) -> timedelta:
    """'24h', '1h30m', '2d', '90s' or a number of seconds -> timedelta."""
    if isinstance(value, bool):
        raise DurationError("'%s' is not a duration: use for example 24h, 90m or 2d" % value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(r"(?:\d+(?:\.\d+)?[dhms])+", text):
            seconds = sum(float(num) * _UNITS[unit] for num, unit in _DURATION_RE.findall(text))
        else:
            raise DurationError("'%s' is not a duration: use for example 24h, 90m or 2d" % _shown(value))
    if math.isnan(seconds) or seconds <= 0:
        raise DurationError("'%s' is not a positive duration: use for example 24h" % value)
    if seconds > MAX_AGE_SECONDS:
        raise DurationError("'%s' is longer than %dd, the longest max age that makes sense for the backup before an "
                            "upgrade: use for example 24h or 7d" % (_shown(value), MAX_AGE_SECONDS // 86400))
    return timedelta(seconds=seconds)


def _shown(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "... (%d characters)" % len(text)


def format_duration(delta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        return "%s%dd%dh" % (sign, hours // 24, hours % 24)
    return "%s%dh%02dm" % (sign, hours, minutes)


def parse_time(text):
    """An RFC 3339 timestamp as the API returns it -> aware datetime, or None."""
    if not text:
        return None
    value = str(text).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def read_backups(reader, velero_namespace):
    """Every Backup in the Velero namespace ([] when Velero's CRD is not installed)."""
    return reader.list_custom(VELERO_GROUP, VELERO_VERSION, VELERO_PLURAL, velero_namespace)


def covers(backup, server_namespace) -> bool:
    spec = backup.get("spec") or {}
    if server_namespace in (spec.get("excludedNamespaces") or []):
        return False
    included = spec.get("includedNamespaces") or []
    return not included or "*" in included or server_namespace in included


def _sort_key(backup):
    status = backup.get("status") or {}
    meta = backup.get("metadata") or {}
    for text in (status.get("completionTimestamp"), status.get("startTimestamp"), meta.get("creationTimestamp")):
        when = parse_time(text)
        if when:
            return when
    return datetime.min.replace(tzinfo=timezone.utc)


def describe_backup(backup, now, max_age):
    """The facts about one backup and the problems that make it unfit as the pre-upgrade backup."""
    meta = backup.get("metadata") or {}
    spec = backup.get("spec") or {}
    status = backup.get("status") or {}
    name = meta.get("name")
    phase = status.get("phase") or "New"
    errors = int(status.get("errors") or 0)
    warnings = int(status.get("warnings") or 0)
    completed = parse_time(status.get("completionTimestamp"))
    expiration = parse_time(status.get("expiration"))
    age = now - completed if completed else None
    problems = []
    if phase != "Completed":
        reason = status.get("failureReason") or "; ".join(status.get("validationErrors") or [])
        problems.append("its phase is %s, not Completed%s" % (phase, " (%s)" % reason if reason else ""))
    if errors:
        problems.append("it recorded %d error(s) (velero backup logs %s)" % (errors, name))
    if completed is None:
        problems.append("it has no completion time")
    elif age > max_age:
        problems.append("it completed %s ago, more than the maximum age %s" % (
            format_duration(age), format_duration(max_age)))
    if expiration is not None and expiration <= now:
        problems.append("it expired at %s" % status.get("expiration"))
    facts = {
        "name": name,
        "namespace": meta.get("namespace"),
        "phase": phase,
        "errors": errors,
        "warnings": warnings,
        "start_time": status.get("startTimestamp"),
        "completion_time": status.get("completionTimestamp"),
        "expiration": status.get("expiration"),
        "age_seconds": int(age.total_seconds()) if age is not None else None,
        "age": format_duration(age) if age is not None else None,
        "included_namespaces": list(spec.get("includedNamespaces") or []),
        "storage_location": spec.get("storageLocation"),
        "chart_revision": (meta.get("labels") or {}).get(CHART_REV_LABEL),
        "failure_reason": status.get("failureReason"),
        "ok": not problems,
    }
    return facts, problems


def backup_report(backups, server_namespace, now=None, max_age="24h", velero_namespace="velero") -> dict:
    """{'recent_ok', 'backup', 'backups_found', 'problems'} for the server namespace.

    ``backup`` is the newest covering backup that passes every check, else the newest covering backup
    (so the problems explain it), else None.
    """
    now = now or datetime.now(timezone.utc)
    limit = parse_duration(max_age)
    candidates = sorted((b for b in backups if covers(b, server_namespace)), key=_sort_key, reverse=True)
    described = [describe_backup(b, now, limit) for b in candidates]
    good = [facts for facts, problems in described if not problems]
    report = {"recent_ok": bool(good), "backups_found": len(candidates), "max_age_seconds": int(limit.total_seconds())}
    if good:
        report.update(backup=good[0], problems=[])
        return report
    how = ("velero backup create %s-<suffix> --include-namespaces %s --labels chart--rev=<chart>--<revision> "
           "(server docs, Backup and restore), wait until velero backup describe shows Completed and rerun" % (
               server_namespace, server_namespace))
    if not described:
        report.update(backup=None, problems=[
            "No Velero backup in namespace %s covers namespace %s: take one with %s." % (velero_namespace, server_namespace, how)])
        return report
    facts, problems = described[0]
    report.update(backup=facts, problems=[
        "The newest Velero backup of namespace %s, %s, is not a recent good backup: %s. Take a new one with %s." % (
            server_namespace, facts["name"], "; ".join(problems), how)])
    return report
