# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pausing the Nomad Autoscaler's deployment, against a fake AppsV1Api."""

from __future__ import annotations

import pytest

from ansible_collections.circleci.server.plugins.module_utils.roll.autoscaler import DeploymentPause
from ansible_collections.circleci.server.plugins.module_utils.roll.model import RollError


class NotFound(Exception):
    status = 404
    reason = "Not Found"


class FakeApps:
    def __init__(self, replicas=2, lag=1, exists=True):
        self.spec = replicas
        self.pods = replicas
        self.lag = lag  # reads before the pods follow the spec
        self.exists = exists
        self.patches = []
        self.timeouts = []

    def read_namespaced_deployment_scale(self, name, namespace, _request_timeout=None):
        self.timeouts.append(_request_timeout)
        if not self.exists:
            raise NotFound()
        if self.lag:
            self.lag -= 1
        else:
            self.pods = self.spec
        return {"spec": {"replicas": self.spec}, "status": {"replicas": self.pods}}

    def patch_namespaced_deployment_scale(self, name, namespace, body, _request_timeout=None):
        self.patches.append((namespace, name, body))
        self.spec = body["spec"]["replicas"]


class Clock:
    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


def test_pause_scales_to_zero_waits_for_the_pods_and_resume_puts_back_the_count():
    apps = FakeApps(replicas=2, lag=2)
    pause = DeploymentPause(apps, "circleci-server", "nomad-autoscaler", clock=Clock(), request_timeout=7)
    assert pause.replicas() == 2
    pause.pause()
    assert apps.pods == 0 and apps.patches == [("circleci-server", "nomad-autoscaler", {"spec": {"replicas": 0}})]
    pause.resume(2)
    assert apps.spec == 2 and set(apps.timeouts) == {7}


def test_pods_that_do_not_stop_fail_the_pause_within_its_timeout():
    apps = FakeApps(replicas=1, lag=10 ** 6)
    clock = Clock()
    with pytest.raises(RollError, match="still runs pods"):
        DeploymentPause(apps, "ns", "nomad-autoscaler", clock=clock, timeout=30, poll_interval=2).pause()
    assert clock.t <= 32


def test_a_missing_deployment_is_explained():
    with pytest.raises(RollError, match="autoscaler_deployment"):
        DeploymentPause(FakeApps(exists=False), "ns", "nomad-autoscaler").replicas()
