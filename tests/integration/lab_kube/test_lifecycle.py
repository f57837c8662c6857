"""Start-up, stop and reset of the lab Kubernetes API server: fast, idempotent, and leaving no port
or thread behind, even with a watch open."""
from __future__ import annotations

import socket
import threading
import time

import urllib3

from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.kube import KubeApiServer


def test_start_stop_reset(tmp_path):
    clock = LabClock()
    started = time.monotonic()
    server = KubeApiServer(clock, RequestLog(str(tmp_path / "requests.jsonl"), clock), FaultInjector(), kubernetes_version="1.31.4",
                           platform="gke")
    url = server.start()
    assert time.monotonic() - started < 2.0
    port = int(url.rsplit(":", 1)[1])
    http = urllib3.PoolManager()
    assert b'"v1.31.4-gke.lab"' in http.request("GET", url + "/version").data
    server.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "seeded"}})
    assert server.get("v1", "ConfigMap", "seeded", "x") is not None
    server.reset()
    assert server.get("v1", "ConfigMap", "seeded", "x") is None and server.get("v1", "Namespace", None, "default") is not None

    watcher = threading.Thread(target=lambda: http.request("GET", url + "/api/v1/configmaps?watch=1", preload_content=True, retries=False))
    watcher.start()
    time.sleep(0.2)
    stopping = time.monotonic()
    server.stop()
    server.stop()
    assert time.monotonic() - stopping < 3.0
    watcher.join(5)
    assert not watcher.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "lab-kube-apiserver"]
    # Closed connections may linger in TIME_WAIT; what must be gone is the listening socket.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
