# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CircleCI Server 4.x release catalog: one source of truth for versions.

Facts come from CircleCI's server-admin docs (Kubernetes ranges from each minor's prerequisites
page, last patches from the docs' version attributes, broken patches from the release notes).
The ranges are revised after release, so an operator can override them (see ``Catalog``).

Plain Python with no Ansible import: modules, roles' filters and tests all use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# re.ASCII: without it ``\\d`` also matches full-width and other Unicode digits ('４.３.９').
_SERVER_RE = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?$", re.ASCII)
# Kubernetes reports vendor builds: 'v1.27.16-eks-a18cd3a', 'v1.29.4-gke.1043002', 'v1.28.5+k3s1'.
_KUBERNETES_RE = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:[-+][0-9A-Za-z][0-9A-Za-z.+-]*)?$",
                            re.ASCII)
_MAX_SHOWN = 60

# What a version must look like, by ``kind`` and ``form``, for the messages.
SERVER, KUBERNETES = "server", "kubernetes"
PATCH, MINOR, ANY = "patch", "minor", "any"


class VersionError(ValueError):
    """A version string that is not a CircleCI Server or Kubernetes version."""


def _shown(value) -> str:
    """The input as the message quotes it: repr (shows invisible and non-ASCII characters), cut to a length."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...' (%d characters)" % len(str(value))


def _expected(kind, form) -> str:
    if form == MINOR:
        return "MAJOR.MINOR in quotes, for example \"4.3\"" if kind == SERVER else \
            "MAJOR.MINOR in quotes, for example \"1.29\""
    if kind == KUBERNETES:
        return ("MAJOR.MINOR.PATCH, for example 1.29.4 (a leading v and a vendor build suffix such as -eks-a18cd3a "
                "are allowed)")
    example = "4.3.9" if form == PATCH else "4.3.9 (or 4.3 for a minor)"
    return "MAJOR.MINOR.PATCH in ASCII digits, for example %s; a leading v is allowed (v4.3.9 is read as 4.3.9), " \
        "pre-release and build suffixes such as -rc1 are not" % example


def parse_version(value, name="version", kind=SERVER, form=ANY) -> "Version":
    """The one strict parser for every version input: modules, filters, the planner, the catalog.

    ``value`` is the raw option (Ansible's ``type='raw'``): a float or an int is refused with a message telling
    the operator to quote it (YAML reads an unquoted 4.3 as a float, and 4.10 as 4.1). ``name`` is the option or
    variable name the message starts with. ``kind`` SERVER accepts '4.3.9' and 'v4.3.9' only; KUBERNETES also
    accepts a vendor build suffix ('v1.27.16-eks-a18cd3a'). ``form`` PATCH requires MAJOR.MINOR.PATCH, MINOR
    requires MAJOR.MINOR, ANY accepts both. Raises ``VersionError`` naming the input and the accepted form.
    """
    if value is None:
        raise VersionError("%s is not set: set it to %s." % (name, _expected(kind, form)))
    if isinstance(value, bool):
        raise VersionError("%s is the boolean %s, not a version: set it to %s." % (name, value, _expected(kind, form)))
    if isinstance(value, (int, float)):
        example = "1.29.4" if kind == KUBERNETES else ("4.3" if form == MINOR else "4.3.9")
        raise VersionError(
            "%s is the number %r, not a version string: YAML reads an unquoted 4.3 as a float (and 4.10 as 4.1). "
            "Quote it, for example %s." % (name, value, ('%s: "%s"' % (name, example)) if name.isidentifier()
                                           else '"%s"' % example))
    if not isinstance(value, str):
        raise VersionError("%s is a %s, not a version: set it to %s." % (
            name, type(value).__name__, _expected(kind, form)))
    text = value.strip()
    if not text:
        raise VersionError("%s is empty: set it to %s." % (name, _expected(kind, form)))
    match = (_KUBERNETES_RE if kind == KUBERNETES else _SERVER_RE).match(text)
    if match and form == PATCH and match.group(3) is None:
        raise VersionError("%s is %s, a minor: set it to a full version, %s." % (
            name, _shown(value), _expected(kind, form)))
    if match and form == MINOR and match.group(3) is not None:
        raise VersionError("%s is %s: set it to a minor, %s." % (name, _shown(value), _expected(kind, form)))
    if not match:
        raise VersionError("%s is %s, which is not a %sversion: set it to %s." % (
            name, _shown(value), "Kubernetes " if kind == KUBERNETES else "", _expected(kind, form)))
    major, minor, patch = match.groups()
    return Version(int(major), int(minor), int(patch or 0))


def normalise_version(value, name="version", kind=SERVER, form=PATCH) -> str:
    """``parse_version`` then the normalised string the playbooks use: 'v4.3.9' -> '4.3.9', '4.3' -> '4.3'."""
    version = parse_version(value, name, kind, form)
    return version.minor_key if form == MINOR else str(version)


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text, name="version", kind=SERVER, form=ANY) -> "Version":
        """``parse_version``: '4.2.7', 'v4.2.7', '4.3'; with ``kind=KUBERNETES`` also 'v1.27.3-eks-2f008fe'."""
        return parse_version(text, name, kind, form)

    @property
    def minor_key(self) -> str:
        return "%d.%d" % (self.major, self.minor)

    def __str__(self) -> str:
        return "%d.%d.%d" % (self.major, self.minor, self.patch)


@dataclass(frozen=True)
class KubernetesRange:
    low: tuple
    high: tuple

    @classmethod
    def parse(cls, text, name="Kubernetes range") -> "KubernetesRange":
        """Parse '1.26-1.29' (inclusive minors); ``name`` starts the message of a ``VersionError``."""
        try:
            if not isinstance(text, str):
                raise ValueError(text)
            low, high = (part.strip() for part in text.split("-"))
            low_v = parse_version(low, name, KUBERNETES, MINOR)
            high_v = parse_version(high, name, KUBERNETES, MINOR)
        except (ValueError, VersionError):
            raise VersionError("%s is %s, which is not a Kubernetes range: set it to LOW-HIGH in quotes, for example "
                               "\"1.26-1.29\"." % (name, _shown(text)))
        if (low_v.major, low_v.minor) > (high_v.major, high_v.minor):
            raise VersionError("%s %s is empty: its low end is above its high end; write it LOW-HIGH, for example "
                               "\"1.26-1.29\"." % (name, _shown(text)))
        return cls((low_v.major, low_v.minor), (high_v.major, high_v.minor))

    def contains(self, version: Version) -> bool:
        return self.low <= (version.major, version.minor) <= self.high

    def intersect(self, other: "KubernetesRange"):
        low, high = max(self.low, other.low), min(self.high, other.high)
        return KubernetesRange(low, high) if low <= high else None

    def __str__(self) -> str:
        return "%d.%d-%d.%d" % (self.low + self.high)


@dataclass(frozen=True)
class MinorRelease:
    minor: str
    kubernetes: KubernetesRange
    last_patch: Version
    broken_patches: frozenset = field(default_factory=frozenset)
    notes: tuple = ()


def _minor(minor, k8s, last_patch, broken=(), notes=()):
    return MinorRelease(minor, KubernetesRange.parse(k8s), Version.parse(last_patch),
                        frozenset(Version.parse(b) for b in broken), tuple(notes))


# server-4x-docs.md sections 1.0, 1.1, 1.5, 1.6 and 9.
RELEASES = (
    _minor("4.0", "1.22-1.23", "4.0.6"),
    _minor("4.1", "1.22-1.24", "4.1.10"),
    _minor("4.2", "1.22-1.28", "4.2.7"),
    _minor("4.3", "1.26-1.29", "4.3.9", notes=(
        "Disruptive: no jobs may run during the upgrade; vm_service becomes machine_provisioner.",)),
    _minor("4.4", "1.26-1.31", "4.4.7"),
    _minor("4.5", "1.26-1.31", "4.5.5", notes=(
        "Do not upgrade an installation on GKE to 4.5 (release notes).",)),
    _minor("4.6", "1.26-1.31", "4.6.6"),
    _minor("4.7", "1.31-1.33", "4.7.15", broken=("4.7.7",), notes=(
        "Server 4.7.7 is broken: never install or upgrade to it (release notes).",)),
    _minor("4.8", "1.33-1.35", "4.8.12"),
    _minor("4.9", "1.33-1.35", "4.9.5", notes=("MongoDB 4.4 or later is required.",)),
    _minor("4.10", "1.33-1.35", "4.10.0", notes=("MongoDB 7.0 or later is required.",)),
)


class UnknownRelease(LookupError):
    """A server version that the catalog does not know."""


class Catalog:
    """Lookups over the release catalog, with optional per-minor Kubernetes range overrides."""

    def __init__(self, releases=RELEASES, kubernetes_overrides=None):
        self._by_minor = {r.minor: r for r in releases}
        for key, text in (kubernetes_overrides or {}).items():
            minor = normalise_version(key, "kubernetes_overrides key %s" % _shown(key), SERVER, MINOR)
            if minor not in self._by_minor:
                raise UnknownRelease("Cannot override the Kubernetes range of unknown server minor %s" % minor)
            old = self._by_minor[minor]
            self._by_minor[minor] = MinorRelease(minor, KubernetesRange.parse(text, "kubernetes_overrides[%s]" % minor),
                                                 old.last_patch,
                                                 old.broken_patches, old.notes)

    @property
    def minors(self):
        return sorted(self._by_minor.values(), key=lambda r: Version.parse(r.minor))

    def release(self, version: Version) -> MinorRelease:
        try:
            release = self._by_minor[version.minor_key]
        except KeyError:
            known = ", ".join(r.minor for r in self.minors)
            raise UnknownRelease(
                "CircleCI Server %s is not in this collection's release catalog (known minors: %s). "
                "Upgrade the circleci.server collection, or target a known release." % (version, known))
        if version.patch > release.last_patch.patch:
            raise UnknownRelease(
                "CircleCI Server %s is newer than the last %s patch this collection knows (%s). "
                "Upgrade the circleci.server collection, or target %s." % (
                    version, release.minor, release.last_patch, release.last_patch))
        return release

    def is_broken(self, version: Version) -> bool:
        return version in self.release(version).broken_patches


def support_report(server_version, kubernetes_version=None, catalog=None,
                   names=("server_version", "kubernetes_version")) -> dict:
    """What the catalog says about one server version, and a Kubernetes version against it.

    ``names`` are the option names the ``VersionError`` messages use for the two inputs.
    """
    catalog = catalog or Catalog()
    server = parse_version(server_version, names[0], SERVER, PATCH)
    release = catalog.release(server)
    report = {
        "server_version": str(server),
        "minor": release.minor,
        "last_patch": str(release.last_patch),
        "is_last_patch": server == release.last_patch,
        "broken": server in release.broken_patches,
        "kubernetes_range": {"min": "%d.%d" % release.kubernetes.low, "max": "%d.%d" % release.kubernetes.high},
        "notes": list(release.notes),
        "kubernetes_version": None,
        "kubernetes_supported": None,
        "problems": [],
    }
    if report["broken"]:
        report["problems"].append(
            "CircleCI Server %s is a known-broken release: do not install or upgrade to it; use %s." % (
                server, release.last_patch))
    if kubernetes_version is not None:
        kube = parse_version(kubernetes_version, names[1], KUBERNETES)
        supported = release.kubernetes.contains(kube)
        report["kubernetes_version"] = "%d.%d.%d" % (kube.major, kube.minor, kube.patch)
        report["kubernetes_supported"] = supported
        if not supported:
            report["problems"].append(
                "Kubernetes %d.%d is outside the range CircleCI Server %s supports (%s): "
                "upgrade or downgrade the cluster into that range first." % (
                    kube.major, kube.minor, release.minor, release.kubernetes))
    return report


# --- Upgrade-path planner (server-4x-docs.md sections 1.0, 1.1 and 9) --------------------------------------------

# The minor from which the Vault -> Tink migration must be finished before the hop into it (section 2.1).
TINK_REQUIRED_FROM = Version(4, 3, 0)

# "If your CircleCI server installation is on GKE, do not upgrade to v4.5 at this time" (RN-4.5).
GKE_BLOCKED_MINORS = ("4.5",)

# "You can seamlessly upgrade directly from server 4.3, 4.4, 4.5 and 4.6 to server 4.7" (UPG-4.7):
# target minor -> the minors that may jump straight to it (from their last patch).
VALIDATED_SKIPS = {"4.7": ("4.3", "4.4", "4.5", "4.6")}


@dataclass(frozen=True)
class Hop:
    """One `helm upgrade`: from a version to another, with the Kubernetes range both ends support."""

    source: Version
    target: Version
    kubernetes: KubernetesRange
    notes: tuple = ()

    @property
    def kind(self) -> str:
        return "patch" if self.source.minor_key == self.target.minor_key else "minor"

    def as_dict(self) -> dict:
        return {
            "from": str(self.source),
            "to": str(self.target),
            "kind": self.kind,
            "kubernetes_range": {"min": "%d.%d" % self.kubernetes.low, "max": "%d.%d" % self.kubernetes.high},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class UpgradePlan:
    """The hops from ``current`` to ``target``, or the reasons there is no path (``refused``)."""

    current: str
    target: str
    hops: tuple = ()
    refused: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def crosses_tink_boundary(self) -> bool:
        """Whether a hop lands on 4.3 or later: the Vault -> Tink migration must be finished first."""
        return any(hop.target >= TINK_REQUIRED_FROM for hop in self.hops)

    def kubernetes_problems(self, kubernetes_version, name="kubernetes_version") -> list:
        """Sentences for each hop whose range excludes the cluster's Kubernetes version ([] when all fit).

        The first sentence says how far the path can go on this Kubernetes version.
        """
        kube = parse_version(kubernetes_version, name, KUBERNETES)
        problems = []
        reachable = None
        for hop in self.hops:
            if not hop.kubernetes.contains(kube):
                if reachable is None:
                    minors = hop.source.minor_key if hop.kind == "patch" else "both %s and %s" % (
                        hop.source.minor_key, hop.target.minor_key)
                    problems.append(
                        "Kubernetes %d.%d is outside %s, the range CircleCI Server %s support%s, so the upgrade "
                        "%s -> %s cannot start: move the cluster into that range first (Kubernetes cannot be "
                        "downgraded: if the cluster is newer, the documented way is a new cluster in range and a "
                        "restore)." % (kube.major, kube.minor, hop.kubernetes, minors,
                                       "s" if hop.kind == "patch" else "", hop.source, hop.target))
                else:
                    problems.append(
                        "Kubernetes %d.%d is outside %s, the range the hop %s -> %s needs: upgrade to %s in this "
                        "run, then upgrade the cluster into %s, then continue to %s." % (
                            kube.major, kube.minor, hop.kubernetes, hop.source, hop.target, reachable,
                            hop.kubernetes, self.target))
                break
            reachable = hop.target
        return problems

    def platform_problems(self, kubernetes_version) -> list:
        """Sentences for hops a platform must not take: GKE (a '-gke' Kubernetes version) must not land on 4.5."""
        if "-gke" not in str(kubernetes_version or "").lower():
            return []
        landing = [hop for hop in self.hops if hop.target.minor_key in GKE_BLOCKED_MINORS]
        if not landing:
            return []
        return ["CircleCI's 4.5 release notes say not to upgrade an installation on GKE to 4.5, and this path lands on "
                "%s: set allow_validated_skips (preflight_allow_validated_skips) to jump from the last 4.4 patch "
                "straight to 4.7 on Kubernetes 1.31, or wait for CircleCI to announce GKE support for 4.5." % (
                    landing[0].target,)]

    def as_dict(self) -> dict:
        return {
            "current": self.current,
            "target": self.target,
            "ok": self.ok,
            "path": [hop.as_dict() for hop in self.hops],
            "versions": [str(hop.target) for hop in self.hops],
            "refused": list(self.refused),
            "requires_tink": self.crosses_tink_boundary,
        }


def _hop(catalog, source, target):
    source_release, target_release = catalog.release(source), catalog.release(target)
    overlap = source_release.kubernetes.intersect(target_release.kubernetes)
    notes = target_release.notes if source_release.minor != target_release.minor else ()
    return Hop(source, target, overlap, notes) if overlap else None


def plan_upgrade(current, target, catalog=None, allow_validated_skips=False,
                 names=("installed version", "target version")) -> UpgradePlan:
    """Plan the upgrade from the installed ``current`` server version to ``target``.

    Rules (section 1.0): never skip a minor; leave each minor from its last patch; never land on a
    known-broken patch; no downgrades. With ``allow_validated_skips``, the documented jump from 4.3-4.6
    straight to 4.7 is taken when one Kubernetes version supports both ends. Every hop carries the
    Kubernetes range both of its ends support (section 1.1). Unknown or unparsable versions are refused,
    never raised, so every pair of strings gives either a path or a reason.
    """
    catalog = catalog or Catalog()
    try:
        cur = parse_version(current, names[0], SERVER, PATCH)
        tgt = parse_version(target, names[1], SERVER, PATCH)
    except VersionError as exc:
        return UpgradePlan(str(current), str(target), refused=(str(exc),))
    refused = []
    for label, version in (("installed", cur), ("target", tgt)):
        try:
            catalog.release(version)
        except UnknownRelease as exc:
            refused.append("The %s version: %s" % (label, exc))
    if refused:
        return UpgradePlan(str(cur), str(tgt), refused=tuple(refused))
    if catalog.is_broken(tgt):
        last = catalog.release(tgt).last_patch
        return UpgradePlan(str(cur), str(tgt), refused=(
            "CircleCI Server %s is a known-broken release: never install or upgrade to it; target %s instead." % (
                tgt, last),))
    if tgt < cur:
        return UpgradePlan(str(cur), str(tgt), refused=(
            "The target %s is older than the installed %s: helm upgrade cannot downgrade CircleCI Server. "
            "To go back, restore the Velero backup taken before the upgrade; otherwise target %s or later." % (
                tgt, cur, cur),))
    if tgt == cur:
        return UpgradePlan(str(cur), str(tgt))

    # Waypoints: leave the current minor from its last patch, then the last patch of each minor in between.
    waypoints = []
    if tgt.minor_key != cur.minor_key:
        last = catalog.release(cur).last_patch
        if cur != last:
            waypoints.append(last)
        between = [r.last_patch for r in catalog.minors
                   if Version.parse(cur.minor_key) < Version.parse(r.minor) < Version.parse(tgt.minor_key)]
        skip = (allow_validated_skips and cur.minor_key in VALIDATED_SKIPS.get(tgt.minor_key, ())
                and _hop(catalog, last, tgt) is not None)
        if not skip:
            waypoints.extend(between)
    waypoints.append(tgt)

    hops = []
    source = cur
    for waypoint in waypoints:
        hop = _hop(catalog, source, waypoint)
        if hop is None:
            return UpgradePlan(str(cur), str(tgt), refused=(
                "No Kubernetes version supports both CircleCI Server %s (%s) and %s (%s), so the hop %s -> %s is "
                "impossible: upgrade through the intermediate minors instead." % (
                    source.minor_key, catalog.release(source).kubernetes, waypoint.minor_key,
                    catalog.release(waypoint).kubernetes, source, waypoint),))
        hops.append(hop)
        source = waypoint
    return UpgradePlan(str(cur), str(tgt), hops=tuple(hops))
