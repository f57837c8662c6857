# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The few Compute Engine v1 calls the 4.3 upgrade makes on GCP, over an authorised ``requests`` session.

Plain Python (the modules gcp_vm_instances_info and gcp_firewall_port are thin wrappers): list every VM of a
project (aggregated list), read a firewall rule, take one port out of it (PATCH, or DELETE when nothing else is
allowed), and wait for the Operation. Retries 429 and 5xx with backoff. ``base_url`` is
``https://compute.googleapis.com`` unless a stand-in serves the API.
"""
from __future__ import annotations

import copy
import re
import time

from ansible_collections.circleci.server.plugins.module_utils.gcp_auth import authorised_session, gcp_auth_spec

COMPUTE_URL = "https://compute.googleapis.com"
COMPUTE_SCOPES = ["https://www.googleapis.com/auth/compute"]
RETRY_STATUSES = (429, 500, 502, 503, 504)


class GcpComputeError(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ComputeClient:
    def __init__(self, session, project, base_url=COMPUTE_URL, retries=5, backoff=1.0, sleep=time.sleep):
        self.session = session
        self.project = project
        self.base = "%s/compute/v1/projects/%s" % ((base_url or COMPUTE_URL).rstrip("/"), project)
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def _call(self, method, path_or_url, body=None, missing_ok=False):
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, url, json=body, timeout=60)
            except OSError as exc:  # requests' connection errors are OSErrors
                raise GcpComputeError("cannot reach %s: %s" % (url, exc)) from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self.sleep(self.backoff * (2 ** attempt))
                continue
            break
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise GcpComputeError("%s %s answered %d: %s" % (method, url, response.status_code, message), response.status_code)
        return response.json() if response.content else {}

    def instances(self) -> list:
        """Every VM of the project, in every zone (instances.aggregatedList, every page)."""
        found, token = [], None
        while True:
            page = self._call("GET", "/aggregated/instances" + ("?pageToken=%s" % token if token else ""))
            for scoped in (page.get("items") or {}).values():
                found.extend(scoped.get("instances") or [])
            token = page.get("nextPageToken")
            if not token:
                return found

    def firewall(self, name):
        return self._call("GET", "/global/firewalls/%s" % name, missing_ok=True)

    def wait(self, operation, timeout=300.0, poll=2.0):
        deadline = time.monotonic() + timeout
        while operation.get("status") != "DONE":
            if time.monotonic() > deadline:
                raise GcpComputeError("Operation %s did not finish in %ds" % (operation.get("name"), timeout))
            self.sleep(poll)
            operation = self._call("GET", operation["selfLink"])
        if operation.get("error"):
            raise GcpComputeError("Operation %s failed: %s" % (operation.get("name"), operation["error"]))
        return operation

    def patch_firewall(self, name, body):
        return self.wait(self._call("PATCH", "/global/firewalls/%s" % name, body))

    def delete_firewall(self, name):
        return self.wait(self._call("DELETE", "/global/firewalls/%s" % name))


def compute_spec():
    """The options of the ``circleci.server.gcp_compute`` and ``circleci.server.gcp_auth`` doc fragments."""
    return dict(project=dict(type="str", required=True), gcp_base_url=dict(type="str", default=COMPUTE_URL), **gcp_auth_spec())


def compute_client(module):
    """A ComputeClient for a module built on ``compute_spec()`` (``fail_json`` when it cannot authenticate)."""
    params = module.params
    return ComputeClient(authorised_session(module, COMPUTE_SCOPES), params["project"], base_url=params["gcp_base_url"])


def matching_instances(instances, label_key, label_value, name_pattern) -> list:
    """The VMs labelled ``label_key=label_value`` or named like ``name_pattern``, as short dicts."""
    pattern = re.compile(name_pattern) if name_pattern else None
    found = []
    for instance in instances:
        labelled = (instance.get("labels") or {}).get(label_key) == label_value
        named = bool(pattern and pattern.search(instance.get("name", "")))
        if labelled or named:
            found.append({"name": instance.get("name"), "zone": (instance.get("zone") or "").rsplit("/", 1)[-1],
                          "status": instance.get("status"), "labels": instance.get("labels") or {}})
    return found


def _port_in(spec, port) -> bool:
    low, _sep, high = str(spec).partition("-")
    return int(low) <= port <= int(high or low)


def without_port(rule, protocol, port):
    """``(allowed, other_rules_with_port)``: the rule's ``allowed`` without ``port`` (entries that allowed only that
    port dropped; a range that contains it is left alone and reported), or None when nothing would be left."""
    allowed, ranges = [], []
    for entry in rule.get("allowed") or []:
        entry = copy.deepcopy(entry)
        if entry.get("IPProtocol") not in (protocol, "all") or not entry.get("ports"):
            allowed.append(entry)
            if entry.get("IPProtocol") in (protocol, "all"):
                ranges.append("%s (every port)" % entry.get("IPProtocol"))
            continue
        kept = []
        for spec in entry["ports"]:
            if str(spec) == str(port):
                continue
            if _port_in(spec, port):
                ranges.append("%s:%s" % (entry["IPProtocol"], spec))
            kept.append(spec)
        if kept:
            entry["ports"] = kept
            allowed.append(entry)
    return (allowed or None), ranges
