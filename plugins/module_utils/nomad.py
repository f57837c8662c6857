# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small Nomad HTTP API client: what a client roll needs (nodes, allocations, eligibility, drain).

Plain HTTP through ``requests`` so that it works against any Nomad version from 0.9 on, with an ACL
token, a region, and TLS (CA bundle, and client certificate and key for mTLS). Transient failures
(connection errors, 5xx, 429) are retried with a jittered backoff until ``timeout`` seconds have passed: the
timeout bounds the whole call, retries included (an endpoint that accepts and never answers costs ``timeout``,
not ``timeout`` per attempt). The sleep and the clock are injectable.
"""

from __future__ import annotations

import json
import random
import time

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the controller's Python
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

NANOSECONDS = 1000000000
# Allocation client statuses that still hold a slot on the node.
ACTIVE_CLIENT_STATUSES = frozenset({"pending", "running"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class NomadError(Exception):
    """A Nomad API call failed; ``status`` is the HTTP status, or None when no answer came."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class NomadClient:
    """Talks to one Nomad agent's HTTP API (``/v1/...``)."""

    def __init__(self, address, token=None, region=None, ca_cert=None, client_cert=None, client_key=None,
                 validate_certs=True, timeout=30, retries=8, session=None, sleep=None, now=None):
        if not address:
            raise NomadError("The Nomad address is empty: set nomad_address (or NOMAD_ADDR), for example https://nomad.example.com:4646.")
        if session is None and not HAS_REQUESTS:
            raise NomadError("The Python library requests is required to talk to Nomad: %s" % REQUESTS_IMPORT_ERROR)
        if bool(client_cert) != bool(client_key):
            raise NomadError("Nomad mTLS needs both a client certificate and its key: set nomad_client_cert and nomad_client_key together.")
        if not timeout or timeout <= 0:
            raise NomadError("nomad_timeout must be a positive number of seconds, got %r." % (timeout,))
        self.address = address.rstrip("/")
        self.region = region
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self._sleep = sleep or time.sleep
        self._now = now or time.monotonic
        self.session = session or requests.Session()
        if token:
            self.session.headers["X-Nomad-Token"] = token
        if ca_cert and validate_certs:
            self.session.verify = ca_cert
        elif not validate_certs:
            self.session.verify = False
        if client_cert:
            self.session.cert = (client_cert, client_key)

    # -- transport ---------------------------------------------------------------------------------
    def request(self, method, path, params=None, body=None):
        params = dict(params or {})
        if self.region:
            params.setdefault("region", self.region)
        url = self.address + path
        data = None if body is None else json.dumps(body)
        attempt = 0
        deadline = self._now() + self.timeout
        while True:
            attempt += 1
            left = deadline - self._now()
            try:
                if left <= 0:
                    raise TimeoutError("no time left")
                # (connect, read): an endpoint that accepts and never answers is given what is left, no more
                response = self.session.request(method, url, params=params, data=data, timeout=(min(left, 10.0), left))
            except Exception as exc:  # pylint: disable=broad-except
                # requests' ConnectionError/Timeout, and whatever a custom session raises.
                if attempt > self.retries or not self._backoff(attempt, deadline):
                    raise NomadError("Cannot reach Nomad at %s (%s %s) within nomad_timeout=%ss (%d attempt(s)): %s. Check nomad_address, "
                                     "the network path and TLS settings, or raise nomad_timeout." % (self.address, method, path,
                                                                                                     _seconds(self.timeout), attempt, exc))
                continue
            status = response.status_code
            if status in RETRY_STATUSES and attempt <= self.retries and self._backoff(attempt, deadline):
                continue
            if status == 403:
                raise NomadError("Nomad refused %s %s (403): the token lacks the permission, or is missing. The roll needs an ACL token"
                                 " with node:write (and namespace read-job on every namespace) in nomad_token." % (method, path), status)
            if status >= 400:
                raise NomadError("Nomad answered %s %s with %s: %s" % (method, path, status, (response.text or "")[:300].strip()), status)
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise NomadError("Nomad answered %s %s with something that is not JSON: %s" % (method, path, response.text[:200]), status)

    def _backoff(self, attempt, deadline):
        """Sleep before the next attempt; False (no sleep) when the next attempt would start past the deadline."""
        pause = min(10.0, 0.5 * (2 ** (attempt - 1))) * (0.5 + random.random() / 2)
        left = deadline - self._now()
        if left <= pause + 0.05:
            return False
        self._sleep(pause)
        return True

    # -- API -----------------------------------------------------------------------------------------
    def nodes(self):
        """Node stubs (ID, Name, Status, Drain, SchedulingEligibility, ...)."""
        return self.request("GET", "/v1/nodes") or []

    def node(self, node_id):
        """One node, with its attributes and DrainStrategy."""
        return self.request("GET", "/v1/node/%s" % node_id)

    def node_allocations(self, node_id):
        return self.request("GET", "/v1/node/%s/allocations" % node_id) or []

    def set_eligibility(self, node_id, eligible):
        return self.request("POST", "/v1/node/%s/eligibility" % node_id,
                            body={"NodeID": node_id, "Eligibility": "eligible" if eligible else "ineligible"})

    def drain(self, node_id, deadline_seconds, ignore_system_jobs=False, meta=None):
        """Start a drain. ``deadline_seconds``: None or 0 means no deadline (Nomad never stops allocations);
        a positive number makes Nomad stop what still runs after that many seconds; negative forces."""
        deadline = 0 if not deadline_seconds else int(deadline_seconds * NANOSECONDS)
        body = {"NodeID": node_id, "DrainSpec": {"Deadline": deadline, "IgnoreSystemJobs": bool(ignore_system_jobs)}}
        if meta:
            body["Meta"] = dict(meta)
        return self.request("POST", "/v1/node/%s/drain" % node_id, body=body)


def _seconds(value):
    return int(value) if float(value).is_integer() else value


def node_is_draining(node):
    """Whether a node (stub or full) is in drain mode."""
    return bool(node.get("Drain")) or node.get("DrainStrategy") is not None


def node_ready_eligible(node):
    return node.get("Status") == "ready" and node.get("SchedulingEligibility") == "eligible" and not node_is_draining(node)


def alloc_job_type(alloc):
    job = alloc.get("Job") or {}
    return job.get("Type") or alloc.get("JobType") or ""


def active_allocations(allocs, ignore_system_jobs=False):
    """Allocations that still occupy the node: pending or running, not told to stop and already gone.

    With ``ignore_system_jobs`` the system jobs' allocations are left out (Nomad leaves them running)."""
    result = []
    for alloc in allocs:
        if alloc.get("ClientStatus") not in ACTIVE_CLIENT_STATUSES:
            continue
        if ignore_system_jobs and alloc_job_type(alloc) == "system":
            continue
        result.append(alloc)
    return result


def was_killed(alloc):
    """Whether an allocation that was running ended because it was told to stop (drain deadline, force) or
    was lost with its node, rather than by finishing: a CI job killed. Service allocations that Nomad
    migrated, and system allocations, are not counted."""
    if alloc.get("ClientStatus") in ACTIVE_CLIENT_STATUSES:
        return False
    if alloc_job_type(alloc) in ("service", "system"):
        return False
    if alloc.get("ClientStatus") == "lost":
        return True
    return alloc.get("DesiredStatus") in ("stop", "evict")


def nomad_argspec():
    """The argument spec matching the circleci.server.nomad doc fragment (the only part that needs Ansible)."""
    from ansible.module_utils.basic import env_fallback
    return dict(
        nomad_address=dict(type="str", required=True, fallback=(env_fallback, ["NOMAD_ADDR"])),
        nomad_token=dict(type="str", no_log=True, fallback=(env_fallback, ["NOMAD_TOKEN"])),
        nomad_region=dict(type="str", fallback=(env_fallback, ["NOMAD_REGION"])),
        nomad_ca_cert=dict(type="path", fallback=(env_fallback, ["NOMAD_CACERT"])),
        nomad_client_cert=dict(type="path", fallback=(env_fallback, ["NOMAD_CLIENT_CERT"])),
        nomad_client_key=dict(type="path", no_log=False, fallback=(env_fallback, ["NOMAD_CLIENT_KEY"])),
        nomad_validate_certs=dict(type="bool", default=True),
        nomad_timeout=dict(type="float", default=30.0),
    )


def client_from_params(params, **kwargs):
    return NomadClient(params["nomad_address"], token=params.get("nomad_token"), region=params.get("nomad_region"),
                       ca_cert=params.get("nomad_ca_cert"), client_cert=params.get("nomad_client_cert"),
                       client_key=params.get("nomad_client_key"), validate_certs=params.get("nomad_validate_certs", True),
                       timeout=params.get("nomad_timeout") or 30.0, **kwargs)
