"""Fixtures of the lab Kubernetes API server tests: one server per test, with its own clock, request
log and fault injector, and a kubeconfig that kubectl, helm and the kubernetes client use."""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.kube import KubeApiServer, write_kubeconfig

CHARTS = Path(__file__).resolve().parent / "charts"


@dataclass
class KubeLab:
    server: KubeApiServer
    url: str
    kubeconfig: str
    log_path: str
    faults: FaultInjector
    env: dict
    startup_seconds: float
    tmp: Path
    extra: dict = field(default_factory=dict)

    def requests(self) -> list[dict]:
        return RequestLog.read(self.log_path)

    def kubectl(self, *args, check=True, stdin=None):
        return self._run(["kubectl", *args], check, stdin)

    def helm(self, *args, check=True):
        return self._run(["helm", *args], check, None)

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def _run(self, argv, check, stdin):
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, input=stdin, check=False, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
        return proc


@pytest.fixture
def kube_lab(tmp_path, ansible_env):
    clock = LabClock(factor=60)
    log_path = str(tmp_path / "requests.jsonl")
    faults = FaultInjector()
    started = time.monotonic()
    server = KubeApiServer(clock, RequestLog(log_path, clock), faults, kubernetes_version="1.27.9")
    url = server.start()
    startup = time.monotonic() - started
    kubeconfig = write_kubeconfig(str(tmp_path / "kubeconfig"), url)
    env = dict(ansible_env)
    env.update(KUBECONFIG=kubeconfig, K8S_AUTH_KUBECONFIG=kubeconfig, HOME=str(tmp_path),
               HELM_CACHE_HOME=str(tmp_path / "helm" / "cache"), HELM_CONFIG_HOME=str(tmp_path / "helm" / "config"),
               HELM_DATA_HOME=str(tmp_path / "helm" / "data"))
    lab = KubeLab(server, url, kubeconfig, log_path, faults, env, startup, tmp_path)
    try:
        yield lab
    finally:
        server.stop()


@pytest.fixture
def kube_client(kube_lab):
    """A kubernetes Python client (ApiClient) configured from the lab's kubeconfig."""
    from kubernetes import config  # pylint: disable=import-outside-toplevel
    client = config.new_client_from_config(config_file=kube_lab.kubeconfig)
    try:
        yield client
    finally:
        client.close()


def wait_for(predicate, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def chart_path(name: str = "labapp") -> str:
    return str(CHARTS / name)
