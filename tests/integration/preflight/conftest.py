# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab cluster per scenario for the preflight role: the lab's Kubernetes API server, seeded from the
lab scenario (the release installed with the real helm and the lab's stand-in chart, revision by
revision; the Tink Secret, the leftover Vault PVC and the Velero Backup as the scenario says).

When the full lab (``tests/lab/seed.py``) is present, ``Lab`` brings the scenario up instead, so the
role runs against exactly what the other playbooks use.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.lab.core import FaultInjector, LabClock, RequestLog

REGISTRY_USER = "lab-fake-registry-user"
REGISTRY_PASSWORD = "lab-fake-registry-password-9b3e"


@dataclass
class PreflightLab:
    scenario: dict
    kube: object            # tests.lab.kube.KubeApiServer
    kubeconfig: str
    log_path: str
    tmp: Path
    stop: object
    full: object = None     # the tests.lab.server.Lab, when the full lab is up (files, registry, AWS)

    def mutations(self) -> list:
        return RequestLog.read(self.log_path)

    def backup(self) -> dict:
        name = self.scenario["velero"]["backup"]["name"]
        return self.kube.get("velero.io/v1", "Backup", self.scenario["velero"]["namespace"], name)

    def replace_backup(self, **status) -> None:
        """Change the Backup's status behind the API's back (no request, so nothing in the request log)."""
        backup = self.backup()
        backup["status"].update(status)
        self.kube.replace(backup)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ttl_hours(ttl: str) -> float:
    hours = 0.0
    for number, unit in __import__("re").findall(r"(\d+)([hms])", ttl or "720h"):
        hours += float(number) * {"h": 1, "m": 1 / 60, "s": 1 / 3600}[unit]
    return hours


def _seed_kube(scenario, kube, kubeconfig, tmp, env):
    """What tests/lab/seed.py does for Kubernetes, reduced to what the preflight reads."""
    from tests.lab.charts import chart_path  # pylint: disable=import-outside-toplevel
    from tests.lab.scenarios import release_steps, write_values_file  # pylint: disable=import-outside-toplevel

    namespace = scenario["kubernetes"]["namespace"]
    release = scenario["helm"]["release"]
    for step in release_steps(scenario):
        values = write_values_file(scenario, str(tmp / ("values-%d.yaml" % step["revision"])),
                                   extra_overrides=step["extra_overrides"])
        verb = ["install", "--create-namespace"] if step["revision"] == 1 else ["upgrade"]
        argv = ["helm", *verb, release, chart_path(step["version"]), "-n", namespace, "-f", values,
                "--wait", "--timeout", "60s"]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=180)
        assert proc.returncode == 0, "seeding %s failed: %s" % (" ".join(argv), proc.stderr)
    pvc = (scenario.get("tink") or {}).get("leftover_vault_pvc")
    if pvc and kube.get("v1", "PersistentVolumeClaim", namespace, pvc["name"]) is None:
        kube.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": pvc["name"], "namespace": namespace, "labels": pvc.get("labels") or {}},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": pvc["size"]}}}})
    velero = scenario.get("velero") or {}
    backup = velero.get("backup")
    if backup:
        completed = datetime.now(timezone.utc) - timedelta(hours=backup.get("age_hours", 2))
        started = completed - timedelta(minutes=backup.get("duration_minutes", 7))
        kube.create({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": backup["name"], "namespace": velero["namespace"], "labels": backup.get("labels") or {},
                         "creationTimestamp": _stamp(started)},
            "spec": {"includedNamespaces": backup.get("included_namespaces") or [namespace],
                     "storageLocation": backup.get("storage_location", "default"), "ttl": backup.get("ttl", "720h0m0s")},
            "status": {"phase": backup.get("phase", "Completed"), "errors": backup.get("errors", 0),
                       "warnings": backup.get("warnings", 0), "startTimestamp": _stamp(started),
                       "completionTimestamp": _stamp(completed),
                       "expiration": _stamp(completed + timedelta(hours=_ttl_hours(backup.get("ttl"))))},
        })


def _full_lab_available() -> bool:
    return importlib.util.find_spec("tests.lab.seed") is not None and not os.environ.get("PREFLIGHT_KUBE_ONLY")


def _start_full_lab(name, tmp):
    from tests.lab.server import Lab  # pylint: disable=import-outside-toplevel
    lab = Lab(str(tmp / "lab"), name)
    state = lab.start()
    kubeconfig = state["files"].get("kubeconfig")
    return lab.kube, kubeconfig, lab.request_log.path, lab.stop, lab


def _start_kube_lab(scenario, tmp, ansible_env):
    from tests.lab.kube import KubeApiServer, write_kubeconfig  # pylint: disable=import-outside-toplevel
    clock = LabClock(100.0)
    log_path = str(tmp / "requests.jsonl")
    kube = KubeApiServer(clock, RequestLog(log_path, clock), FaultInjector(),
                         kubernetes_version=scenario["kubernetes"]["version"],
                         platform=scenario["kubernetes"].get("distribution", "eks"))
    url = kube.start()
    kubeconfig = write_kubeconfig(str(tmp / "kubeconfig"), url)
    env = dict(ansible_env)
    env.update(KUBECONFIG=kubeconfig, HOME=str(tmp), HELM_CACHE_HOME=str(tmp / "helm" / "cache"),
               HELM_CONFIG_HOME=str(tmp / "helm" / "config"), HELM_DATA_HOME=str(tmp / "helm" / "data"))
    try:
        _seed_kube(scenario, kube, kubeconfig, tmp, env)
    except BaseException:
        kube.stop()
        raise
    # Seeding wrote; the preflight's own requests are what the tests look at.
    open(log_path, "w").close()
    return kube, kubeconfig, log_path, kube.stop, None


@pytest.fixture(scope="module")
def preflight_labs(tmp_path_factory, ansible_env):
    """lab(name) -> a PreflightLab for the scenario, started once per test module."""
    try:
        from tests.lab.scenarios import load_scenario  # pylint: disable=import-outside-toplevel
        from tests.lab.kube import KubeApiServer  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError as exc:
        pytest.skip("the lab (tests/lab/kube, tests/lab/scenarios) is not importable: %s" % exc)
    labs = {}

    def lab(name):
        if name not in labs:
            scenario = load_scenario(name)
            tmp = tmp_path_factory.mktemp(name)
            started = time.monotonic()
            if _full_lab_available():
                kube, kubeconfig, log_path, stop, full = _start_full_lab(name, tmp)
            else:
                kube, kubeconfig, log_path, stop, full = _start_kube_lab(scenario, tmp, ansible_env)
            print("lab %s up in %.1fs" % (name, time.monotonic() - started))
            labs[name] = PreflightLab(scenario, kube, kubeconfig, log_path, tmp, stop, full)
        return labs[name]

    yield lab
    for started in labs.values():
        started.stop()


@pytest.fixture(scope="module")
def secret_vars(tmp_path_factory):
    """The registry credentials in a 0600 vars file, never on the command line."""
    path = tmp_path_factory.mktemp("vars") / "secrets.yml"
    path.write_text(json.dumps({"preflight_registry_username": REGISTRY_USER,
                                "preflight_registry_password": REGISTRY_PASSWORD}))
    os.chmod(path, 0o600)
    return str(path)
