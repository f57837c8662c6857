"""Stand-in ``circleci-server`` Helm charts for the lab, built on demand per server version.

Stands in for ``oci://cciserver.azurecr.io/circleci-server`` (chart name ``circleci-server``; chart
version = appVersion = server version), one chart per patch of every minor from 4.2 to the newest of the
release catalog (``LAST_PATCHES``). ``chart_path("4.3.9")`` returns a chart directory that
``helm install/upgrade/template/lint`` accept; ``chart_archive(version)`` the same as a ``.tgz``.

Why built on demand rather than committed per version: one source tree serves every version
(``src/templates`` gated on the chart version by ``cci.is43``, ``src/values-common.yaml`` plus the
``values-<minor>.yaml`` overlays up to that minor, ``schema.py`` per minor), so the nine charts cannot drift
apart, any other patch of a known minor is one argument away, and the tracked sources stay valid YAML for
ansible-test (Go templates are kept as ``.tpl`` and become ``.yaml`` only in the built chart). A build takes
a few milliseconds; it lands in ``<repo>/.cache/lab-charts`` (or ``$CIRCLECI_LAB_CHARTS_DIR``) under a
digest of the sources, so an edited source is never served stale and concurrent builders do not clash.

What the charts render: the workloads the docs name (application Deployments, the data StatefulSets
with volumeClaimTemplates, ``vault`` only while ``tink.enabled`` is false, ``vm-service`` on 4.2 /
``machine-provisioner`` from 4.3 with its ServiceAccount, ConfigMap and key Secret), the Secrets the chart
generates, the ``circleci-proxy`` LoadBalancer. The data images follow each minor's documented defaults
(``mongodb.image.tag`` 3.6.22 up to 4.8, 4.4.15 on 4.9, 7.0.15 with the ``mongosh`` probes on 4.10;
``postgresql.image.tag`` 12.6.0 on 4.2, 12.16.37 after) or the values' ``<store>.image.{registry,repository,tag}``:
the lab's data-store stand-in (``tests/lab/datastores.py``) reads the version a pod runs from that tag.
Not modelled: the real images, probes (other than MongoDB's custom ones), resources, hooks and Jobs, RBAC,
the hundred smaller services, the services each minor adds, and the real chart's value-to-config
translation (provider settings are rendered as given).
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile


from .. import yaml_c
from .schema import MINORS, values_schema

CHART_NAME = "circleci-server"
#: The last patch of every minor from 4.2 to the newest of the collection's release catalog
#: (``plugins/module_utils/versions.py``; a test keeps them equal), in order.
LAST_PATCHES = ("4.2.7", "4.3.9", "4.4.7", "4.5.5", "4.6.6", "4.7.15", "4.8.12", "4.9.5", "4.10.0")
NEWEST = LAST_PATCHES[-1]
#: The versions the lab's scenarios and the upgrade tests use; any other patch of a minor in MINORS builds.
VERSIONS = ("4.2.5",) + LAST_PATCHES

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_VERSION_RE = re.compile(r"^(?:circleci-server-)?(\d+)\.(\d+)\.(\d+)$")


def parse_version(version: str) -> tuple[str, str]:
    """``("4.3.9", "4.3")`` from ``4.3.9`` or ``circleci-server-4.3.9``; ValueError for anything else."""
    match = _VERSION_RE.match(str(version).strip())
    if not match:
        raise ValueError("not a circleci-server chart version: %r" % (version,))
    minor = "%s.%s" % match.group(1, 2)
    if minor not in MINORS:
        raise ValueError("no stand-in chart for server %s (minors: %s)" % (version, ", ".join(MINORS)))
    return "%s.%s" % (minor, match.group(3)), minor


def cache_dir() -> str:
    return os.environ.get("CIRCLECI_LAB_CHARTS_DIR") or os.path.join(REPO_ROOT, ".cache", "lab-charts")


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _load_yaml(name: str) -> dict:
    with open(os.path.join(SRC, name), encoding="utf-8") as handle:
        return yaml_c.safe_load(handle) or {}


def values_overlays(minor: str) -> list[str]:
    """The ``values-<minor>.yaml`` files laid over ``values-common.yaml`` for ``minor``, in order.

    ``values-4.2.yaml`` serves 4.2 alone (the vm-service family); from 4.3 on, every overlay of a minor
    from 4.3 up to ``minor`` applies, so each file holds only what its minor changed.
    """
    if minor == "4.2":
        return ["values-4.2.yaml"]
    key = tuple(int(p) for p in minor.split("."))
    return ["values-%s.yaml" % m for m in MINORS[1:]
            if tuple(int(p) for p in m.split(".")) <= key and os.path.isfile(os.path.join(SRC, "values-%s.yaml" % m))]


_RENDERED: dict = {}


def _sources_stamp() -> tuple:
    """(folder, name, mtime, size) of every source file: an edited source makes a new key, never a stale chart."""
    stamp = []
    for root, _dirs, names in os.walk(SRC):
        for name in names:
            status = os.stat(os.path.join(root, name))
            stamp.append((root, name, status.st_mtime_ns, status.st_size))
    return tuple(sorted(stamp))


def chart_files(version: str) -> dict[str, str]:
    """Relative path -> text of every file of the chart of ``version`` (what ``chart_path`` writes).

    Rendered once per process and version while the sources are unchanged: a lab's bring-up asks for every
    version's chart (the registry's repository) and the seeding asks again.
    """
    key = (parse_version(version)[0], _sources_stamp())
    if key not in _RENDERED:
        _RENDERED[key] = _render_chart_files(key[0])
    return dict(_RENDERED[key])


def _render_chart_files(version: str) -> dict[str, str]:
    version, minor = parse_version(version)
    chart = {
        "apiVersion": "v2",
        "name": CHART_NAME,
        "description": "CircleCI Server (lab stand-in chart of the circleci.server Ansible collection)",
        "type": "application",
        "version": version,
        "appVersion": version,
        "home": "https://circleci.com/docs/server-admin/server-%s/" % minor,
    }
    values = _load_yaml("values-common.yaml")
    for name in values_overlays(minor):
        values = _deep_merge(values, _load_yaml(name))
    files = {
        "Chart.yaml": yaml_c.safe_dump(chart, sort_keys=False),
        "values.yaml": "# Default values of the lab's stand-in circleci-server %s chart (built from %s).\n%s" % (
            version, os.path.relpath(SRC, REPO_ROOT), yaml_c.safe_dump(values, sort_keys=False, width=160)),
        "values.schema.json": json.dumps(values_schema(minor), indent=2, sort_keys=True) + "\n",
        ".helmignore": "*.tgz\n",
    }
    templates = os.path.join(SRC, "templates")
    for name in sorted(os.listdir(templates)):
        with open(os.path.join(templates, name), encoding="utf-8") as handle:
            text = handle.read()
        target = name
        if name.endswith(".tpl") and not name.startswith("_"):
            target = name[:-len(".tpl")] + ".yaml"
        files["templates/" + target] = text
    return files


def _digest(files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:12]


def build_chart(files: dict[str, str], tag: str) -> str:
    """Write a chart's ``files`` to ``<cache>/<tag>-<digest of the files>/circleci-server`` once; return that path.

    Content-addressed, so an edited template tree is never served stale; built in a staging folder and
    renamed, so two processes building at once cannot leave half a chart.
    """
    folder = os.path.join(cache_dir(), "%s-%s" % (tag, _digest(files)))
    target = os.path.join(folder, CHART_NAME)
    if os.path.isfile(os.path.join(target, "Chart.yaml")):
        return target
    os.makedirs(cache_dir(), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".build-%s-" % tag, dir=cache_dir())
    try:
        for name, text in files.items():
            path = os.path.join(staging, CHART_NAME, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        try:
            os.rename(staging, folder)
        except OSError:
            if not os.path.isfile(os.path.join(target, "Chart.yaml")):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def package_chart(directory: str, version: str) -> str:
    """The chart in ``directory`` packaged beside it as ``circleci-server-<version>.tgz`` (as ``helm package`` does)."""
    archive = os.path.join(os.path.dirname(directory), "%s-%s.tgz" % (CHART_NAME, version))
    if os.path.isfile(archive):
        return archive
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for root, _dirs, names in sorted(os.walk(directory)):
            for name in sorted(names):
                path = os.path.join(root, name)
                tar.add(path, arcname=os.path.join(CHART_NAME, os.path.relpath(path, directory)))
    partial = archive + ".%d.part" % os.getpid()
    with open(partial, "wb") as handle:
        handle.write(buffer.getvalue())
    os.replace(partial, archive)
    return archive


def chart_path(version: str) -> str:
    """The directory of the built stand-in chart of ``version`` (built now unless already up to date).

    The directory is named ``circleci-server`` (as ``helm lint`` expects); pass it as the chart reference to
    helm or kubernetes.core.helm.
    """
    version, _minor = parse_version(version)
    return build_chart(chart_files(version), version)


def chart_archive(version: str) -> str:
    """The chart of ``version`` packaged as ``circleci-server-<version>.tgz``."""
    return package_chart(chart_path(version), parse_version(version)[0])
