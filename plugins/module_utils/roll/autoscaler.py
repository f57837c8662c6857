# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pausing the Nomad Autoscaler for a roll: its Kubernetes deployment scaled to 0, and back to exactly the
replicas it had.

The Nomad Autoscaler (``nomad.auto_scaler`` in CircleCI Server's values) scales the clients' group through
the cloud API: during a roll it would undo the surge, or scale in and terminate undrained nodes. The roll
records the replicas in its durable state before scaling to 0, so a re-run after a crash puts back the
original count, not the 0 it finds.
"""

from __future__ import annotations

from .model import RollError, WallClock


class DeploymentPause:
    """``pause()`` -> the replicas before; ``resume(replicas)``. ``apps`` is a ``kubernetes.client.AppsV1Api``
    (or anything with ``read_namespaced_deployment_scale`` and ``patch_namespaced_deployment_scale``)."""

    kind = "deployment"

    def __init__(self, apps, namespace, name, clock=None, timeout=120.0, poll_interval=2.0, request_timeout=30):
        self.apps = apps
        self.namespace = namespace
        self.name = name
        self.clock = clock or WallClock()
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout

    @property
    def label(self):
        return "deployment %s/%s" % (self.namespace, self.name)

    def _scale(self):
        try:
            return self.apps.read_namespaced_deployment_scale(self.name, self.namespace, _request_timeout=self.request_timeout)
        except Exception as exc:  # pylint: disable=broad-except
            status = getattr(exc, "status", None)
            if status == 404:
                raise RollError("The Nomad Autoscaler's %s was not found: check autoscaler_deployment and autoscaler_namespace (leave "
                                "autoscaler_deployment unset when the installation runs no autoscaler)." % self.label)
            raise RollError("Cannot read the scale of the Nomad Autoscaler's %s: %s. Check the Kubernetes credentials (the roll needs "
                            "get and patch on deployments/scale in %s)." % (self.label, getattr(exc, "reason", None) or exc, self.namespace))

    def replicas(self):
        scale = self._scale()
        spec = scale.spec if hasattr(scale, "spec") else scale.get("spec", {})
        value = getattr(spec, "replicas", None) if not isinstance(spec, dict) else spec.get("replicas")
        return int(value or 0)

    def running(self):
        scale = self._scale()
        status = scale.status if hasattr(scale, "status") else scale.get("status", {})
        value = getattr(status, "replicas", None) if not isinstance(status, dict) else status.get("replicas")
        return int(value or 0)

    def set_replicas(self, replicas):
        try:
            self.apps.patch_namespaced_deployment_scale(self.name, self.namespace, {"spec": {"replicas": int(replicas)}},
                                                        _request_timeout=self.request_timeout)
        except Exception as exc:  # pylint: disable=broad-except
            raise RollError("Cannot scale the Nomad Autoscaler's %s to %d: %s. Scale it by hand (kubectl -n %s scale deployment %s "
                            "--replicas=%d)." % (self.label, replicas, getattr(exc, "reason", None) or exc, self.namespace, self.name,
                                                 replicas))

    def pause(self):
        """Scale to 0 and wait until no autoscaler pod runs; returns nothing (the caller recorded the replicas)."""
        self.set_replicas(0)
        deadline = self.clock.now() + self.timeout
        while self.running() > 0:
            if self.clock.now() >= deadline:
                raise RollError("The Nomad Autoscaler's %s still runs pods %ss after being scaled to 0: nothing else was changed. "
                                "Look at its pods, then re-run." % (self.label, self.timeout))
            self.clock.sleep(self.poll_interval)

    def resume(self, replicas):
        self.set_replicas(replicas)
