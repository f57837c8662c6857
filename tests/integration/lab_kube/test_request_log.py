"""The request log misses no write: a request is recorded when it arrives, and a read waits for it to end.

The old log recorded a request after its handler returned. kubectl exits as soon as it has an exec's
status frame, while the handler still closes its WebSocket: a test that read the log right after kubectl
returned could miss that write (test_exec_printenv_and_scripted_commands failed one run in six), and a
check-mode test could pass when it should fail.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.lab.core import LabClock, RequestLog, RequestLogNotDrained

LINGER = 1.5  # wall seconds the handler keeps working after the client has its answer


def test_a_write_whose_client_returns_before_the_handler_ends_is_in_the_log(kube_lab):
    """Fails on the old log (the exec was recorded LINGER seconds after kubectl returned, or never when
    aiohttp cancelled the handler of a client that hung up); passes now."""
    kube_lab.kubectl("create", "deploy", "frontend", "--image=circleci/frontend:3.4")
    pod = kube_lab.kubectl("get", "pod", "-l", "app=frontend", "-o", "name").stdout.split()[-1]
    answered_then_working = kube_lab.server._exec  # pylint: disable=protected-access

    async def exec_then_keep_working(request, pod_object):
        socket = await answered_then_working(request, pod_object)
        await asyncio.sleep(LINGER)
        return socket

    kube_lab.server._exec = exec_then_keep_working  # pylint: disable=protected-access
    began = time.monotonic()
    assert kube_lab.kubectl("exec", pod, "--", "hostname").stdout.startswith("frontend-")
    returned = time.monotonic()
    records = kube_lab.requests()
    read = time.monotonic()
    execs = [r for r in records if "/exec?" in r["path"]]
    assert len(execs) == 1 and execs[0]["method"] == "POST" and "command=hostname" in execs[0]["path"]
    # kubectl had its answer before the handler ended, and the read waited for the handler, not longer.
    assert returned - began < LINGER + 5
    assert execs[0]["status"] == 101 and read - returned < LINGER + 5


def test_a_request_in_flight_is_in_the_log_from_its_arrival_and_gets_its_status_when_it_ends(tmp_path):
    log = RequestLog(str(tmp_path / "requests.jsonl"), LabClock(100))
    token = log.begin("nomad", "POST", "/v1/node/n1/drain")
    assert log.begin("nomad", "GET", "/v1/nodes") is None  # reads are not kept
    ended = threading.Timer(0.3, log.end, (token, 200))
    ended.start()
    records = RequestLog.read(log.path, timeout=10)
    ended.join()
    assert [(r["service"], r["method"], r["path"], r["status"]) for r in records] == [
        ("nomad", "POST", "/v1/node/n1/drain", 200)]
    assert records[0]["ended_lab_time"] >= records[0]["lab_time"]


def test_a_request_that_never_ends_makes_the_read_fail_with_its_name(tmp_path):
    log = RequestLog(str(tmp_path / "requests.jsonl"), LabClock(100))
    log.record("aws", "POST", "autoscaling/SetDesiredCapacity", 200)
    log.begin("kube", "DELETE", "/api/v1/namespaces/circleci-server")
    with pytest.raises(RequestLogNotDrained, match="1 request.*kube DELETE /api/v1/namespaces/circleci-server"):
        RequestLog.read(log.path, timeout=0.2)
    with pytest.raises(RequestLogNotDrained, match="kube DELETE /api/v1/namespaces/circleci-server"):
        log.entries(timeout=0.2)


def test_clear_drops_the_arrival_and_the_late_end_of_a_request_in_flight(tmp_path):
    log = RequestLog(str(tmp_path / "requests.jsonl"), LabClock(100))
    token = log.begin("gcp", "PATCH", "/compute/v1/projects/p/zones/z/instanceGroupManagers/nomad")
    log.clear()
    log.end(token, 200)
    log.record("gcp", "POST", "/compute/v1/projects/p/zones/z/instanceGroupManagers/nomad/resize", 200)
    assert [r["path"].rsplit("/", 1)[-1] for r in log.entries(timeout=1)] == ["resize"]
