# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The GCP back-end of a Nomad client roll: a zonal or regional managed instance group (Compute v1 REST).

Requests go through a ``requests``-compatible session (google-auth's ``AuthorizedSession`` in real use)
to ``base_url`` (the public endpoint by default, a lab's stand-in in tests). An instance is outdated when
its version's instance template is not one of the group's. Surge is ``resize`` (+batch), removal is
``deleteInstances`` (which lowers the target size). Operations are polled until DONE; 429, 5xx and
rate-limit 403s are retried with a jittered backoff.

The roll keeps its state (the size to return to, what it turned off) and its lock in one project metadata item,
``circleci-server-nomad-client-roll--<zone or region>--<group>`` (JSON ``{"lock": ..., "state": ...}``), written with
``projects.setCommonInstanceMetadata`` and the metadata's fingerprint: the lock and the state go in one write, and a
write that raced another one (412 ``conditionNotMet``) is read again and redone, so two rolls cannot both take the
lock. The item is removed at the end. Why not the group's ``description`` (where earlier versions kept it): the
Terraform google provider changes a zonal group's description in place through ``instanceGroupManagers.patch``, but
still marks it ForceNew (recreate the group) on a regional one, so that Compute accepts the change on every group
could not be confirmed; project metadata is surely writable, by design, with an optimistic lock.

An autoscaler on the group (server-terraform attaches one) would undo the surge or scale in undrained clients:
the roll sets its ``autoscalingPolicy.mode`` to ``OFF`` (which keeps its configuration) before the first change
and puts back the mode it had (``ON`` or ``ONLY_SCALE_OUT``) at the end, the mode being kept in the roll's state
so that a re-run after a crash restores it. On a stop with the group still surged it stays ``OFF`` (turned
back on, it would scale the group in by deleting instances, busy ones included); the re-run that finishes the
roll restores it.
"""

from __future__ import annotations

import datetime
import json
import random
import time

from .model import IN_SERVICE, OTHER, PENDING, TERMINATING, GroupInstance, GroupState, ProviderError

DEFAULT_BASE_URL = "https://compute.googleapis.com/compute/v1"
RECORD_KEY_PREFIX = "circleci-server-nomad-client-roll--"
RECORD_WRITE_ATTEMPTS = 5
AUTOSCALER_MARK = "autoscaler-mode="
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PENDING_ACTIONS = frozenset({"CREATING", "CREATING_WITHOUT_RETRIES", "RECREATING", "VERIFYING", "STARTING", "RESUMING"})
LEAVING_ACTIONS = frozenset({"DELETING", "ABANDONING", "STOPPING", "SUSPENDING"})


def last_segment(url):
    return str(url or "").rstrip("/").rsplit("/", 1)[-1]


def action_state(entry):
    action = entry.get("currentAction") or "NONE"
    if action in PENDING_ACTIONS:
        return PENDING
    if action in LEAVING_ACTIONS:
        return TERMINATING
    status = entry.get("instanceStatus")
    if status in (None, "RUNNING", "PROVISIONING", "STAGING"):
        return IN_SERVICE if status in (None, "RUNNING") else PENDING
    return OTHER


class GcpMigProvider:
    kind = "gcp"

    def __init__(self, project, group_name, session, zone=None, region=None, base_url=DEFAULT_BASE_URL, retries=8, delay=1.0,
                 max_delay=30.0, sleep=None, clock=None, operation_timeout=600, poll_interval=2.0, instance_template=None,
                 api_timeout=30.0, now=None, wall=None):
        if bool(zone) == bool(region):
            raise ProviderError("Give exactly one of zone (zonal managed instance group) or region (regional one) for the GCP group %s." % group_name)
        if not project:
            raise ProviderError("The GCP project is not set: set project (server-terraform's project_id).")
        self.project = project
        self.group_name = group_name
        self.session = session
        self.zone = zone
        self.region = region
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.retries = retries
        self.api_timeout = float(api_timeout)
        self._wall_now = now or time.monotonic
        self._wall = wall or time.time
        self.delay = delay
        self.max_delay = max_delay
        self._sleep = sleep or time.sleep
        self._now = clock.now if clock else time.monotonic
        self._clock_sleep = clock.sleep if clock else self._sleep
        self.operation_timeout = operation_timeout
        self.poll_interval = poll_interval
        self._urls = {}
        # The instance template to put on the group before the roll (None: keep the group's).
        self.instance_template = instance_template
        self._mig_body = None

    @property
    def _scope(self):
        return "projects/%s/zones/%s" % (self.project, self.zone) if self.zone else "projects/%s/regions/%s" % (self.project, self.region)

    @property
    def _mig(self):
        return "%s/%s/instanceGroupManagers/%s" % (self.base_url, self._scope, self.group_name)

    def _request(self, method, url, what, params=None, body=None):
        """One API call, retried within api_timeout seconds (retries included)."""
        attempt = 0
        deadline = self._wall_now() + self.api_timeout
        while True:
            left = deadline - self._wall_now()
            try:
                if left <= 0:
                    raise TimeoutError("no time left")
                response = self.session.request(method, url, params=params, json=body, timeout=(min(10.0, left), left))
            except Exception as exc:  # pylint: disable=broad-except
                if attempt < self.retries and self._backoff(attempt + 1, deadline):
                    attempt += 1
                    continue
                raise ProviderError("Failed to %s: cannot reach %s within api_timeout=%ss (%d attempt(s)): %s. Check gcp_base_url and the "
                                    "network path, or raise api_timeout." % (what, self.base_url, _num(self.api_timeout), attempt + 1, exc))
            status = response.status_code
            text = response.text or ""
            rate_limited = status == 403 and ("rateLimitExceeded" in text or "userRateLimitExceeded" in text)
            if (status in RETRY_STATUSES or rate_limited) and attempt < self.retries and self._backoff(attempt + 1, deadline):
                attempt += 1
                continue
            if status == 404:
                raise ProviderError("Failed to %s: not found (404). Check project, zone or region and group_name: server-terraform names the "
                                    "group <name>-nomad-client-group (4.9.0 and later) or <name>-nomad (before)." % what)
            if status in (401, 403):
                raise ProviderError("Failed to %s: %s %s. The credentials need compute.instanceGroupManagers.get/update, "
                                    "compute.autoscalers.get/update and compute.instances.delete (roles/compute.instanceAdmin.v1), and for "
                                    "the roll's state compute.projects.get and compute.projects.setCommonInstanceMetadata on the project."
                                    % (what, status, text[:300]))
            if status >= 400:
                error = ProviderError("Failed to %s: %s %s" % (what, status, text[:300]))
                error.status = status
                raise error
            return response.json() if text.strip() else {}

    def _backoff(self, attempt, deadline):
        pause = random.uniform(0, min(self.max_delay, self.delay * 2 ** (attempt - 1)))
        if self._wall_now() + pause >= deadline:
            return False
        self._sleep(pause)
        return True

    def _wait_operation(self, operation, what):
        deadline = self._now() + self.operation_timeout
        while operation.get("status") != "DONE":
            if self._now() >= deadline:
                raise ProviderError("Failed to %s: operation %s still %s after %ss."
                                    % (what, operation.get("name"), operation.get("status"), self.operation_timeout))
            self._clock_sleep(self.poll_interval)
            url = operation.get("selfLink") or "%s/%s/operations/%s" % (self.base_url, self._scope, operation.get("name"))
            if not url.startswith(self.base_url):
                # the public selfLink host (www.googleapis.com) for a private endpoint or a stand-in: same path, zonal, regional or global
                path = url.split("/compute/v1/", 1)[1] if "/compute/v1/" in url else "%s/operations/%s" % (self._scope, last_segment(url))
                url = "%s/%s" % (self.base_url, path)
            operation = self._request("GET", url, "wait for %s" % what)
        errors = (operation.get("error") or {}).get("errors") or []
        if errors:
            raise ProviderError("Failed to %s: %s" % (what, "; ".join("%s: %s" % (e.get("code"), e.get("message")) for e in errors)))
        return operation

    def describe(self):
        mig = self._request("GET", self._mig, "read managed instance group %s" % self.group_name)
        self._mig_body = mig
        templates = {last_segment(v.get("instanceTemplate")) for v in mig.get("versions") or [] if v.get("instanceTemplate")}
        if not templates and mig.get("instanceTemplate"):
            templates = {last_segment(mig["instanceTemplate"])}
        if self.instance_template:
            templates = {last_segment(self.instance_template)}
        if not templates:
            raise ProviderError("Group %s has no instance template: cannot tell outdated instances." % self.group_name)
        managed = []
        token = None
        while True:
            params = {"maxResults": 500}
            if token:
                params["pageToken"] = token
            page = self._request("POST", self._mig + "/listManagedInstances", "list the instances of %s" % self.group_name, params=params)
            managed.extend(page.get("managedInstances") or [])
            token = page.get("nextPageToken")
            if not token:
                break
        instances = []
        for entry in managed:
            name = last_segment(entry.get("instance"))
            self._urls[name] = entry.get("instance")
            version = last_segment((entry.get("version") or {}).get("instanceTemplate"))
            reason = "" if version in templates else "instance template %s, the group uses %s" % (version or "unknown", ", ".join(sorted(templates)))
            keys = tuple(str(k) for k in (entry.get("id"),) if k)
            instances.append(GroupInstance(id=name, up_to_date=not reason, state=action_state(entry), reason=reason, keys=keys))
        warnings = []
        blockers = []
        policy = mig.get("updatePolicy") or {}
        if policy.get("type", "OPPORTUNISTIC") == "PROACTIVE" and any(not i.up_to_date for i in instances) and not self.instance_template:
            blockers.append(
                "Group %s has a PROACTIVE update policy: GCP itself replaces the outdated instances (within maxSurge/maxUnavailable) "
                "without draining Nomad, which kills their jobs. Set it to OPPORTUNISTIC before changing the instance template "
                "(gcloud compute instance-groups managed rolling-action stop-proactive-update, or updatePolicy.type in Terraform), "
                "then run the roll." % self.group_name)
        return GroupState(name=self.group_name, desired=int(mig.get("targetSize") or 0), max_size=None, instances=instances,
                          config="instance template %s" % ", ".join(sorted(templates)), warnings=warnings, blockers=blockers)

    def apply_configuration(self):
        """Put ``instance_template`` on the group, with an OPPORTUNISTIC update policy in the same patch so that
        GCP does not replace the instances itself (without draining Nomad). Returns whether it changed anything."""
        if not self.instance_template:
            return False
        mig = self._mig_body or self._request("GET", self._mig, "read managed instance group %s" % self.group_name)
        versions = mig.get("versions") or []
        wanted = last_segment(self.instance_template)
        if [last_segment(v.get("instanceTemplate")) for v in versions] == [wanted]:
            return False
        reference = self.instance_template if "/" in self.instance_template else "projects/%s/global/instanceTemplates/%s" % (
            self.project, self.instance_template)
        body = {"versions": [{"name": (versions[0].get("name") if versions else None) or "primary", "instanceTemplate": reference}],
                "updatePolicy": {"type": "OPPORTUNISTIC"}}
        if mig.get("fingerprint"):
            body["fingerprint"] = mig["fingerprint"]
        what = "set the instance template of %s to %s (update policy OPPORTUNISTIC)" % (self.group_name, wanted)
        operation = self._request("PATCH", self._mig, what, body=body)
        self._wait_operation(operation, what)
        self._mig_body = None
        return True

    def set_capacity(self, desired):
        operation = self._request("POST", self._mig + "/resize", "resize %s to %d" % (self.group_name, desired), params={"size": int(desired)})
        self._wait_operation(operation, "resize %s to %d" % (self.group_name, desired))

    def set_max_size(self, max_size):  # pylint: disable=unused-argument
        return None

    def terminate(self, instance_ids):
        urls = [self._urls.get(name) or "%s/%s/instances/%s" % (self.base_url, self._scope, name) for name in instance_ids]
        what = "delete %s from %s" % (", ".join(instance_ids), self.group_name)
        operation = self._request("POST", self._mig + "/deleteInstances", what, body={"instances": urls, "skipInstancesOnValidationError": False})
        self._wait_operation(operation, what)

    # -- the group's autoscaler: OFF for the roll, then back to its mode ----------------------------------------
    def _autoscaler(self):
        """The autoscaler that targets the group (``status.autoscaler``), or None."""
        mig = self._mig_body or self._request("GET", self._mig, "read managed instance group %s" % self.group_name)
        url = (mig.get("status") or {}).get("autoscaler")
        if not url:
            return None
        name = last_segment(url)
        return self._request("GET", "%s/%s/autoscalers/%s" % (self.base_url, self._scope, name), "read autoscaler %s of %s" % (name, self.group_name))

    def _set_autoscaler_mode(self, name, mode):
        what = "set the mode of autoscaler %s of %s to %s" % (name, self.group_name, mode)
        operation = self._request("PATCH", "%s/%s/autoscalers" % (self.base_url, self._scope), what, params={"autoscaler": name},
                                  body={"autoscalingPolicy": {"mode": mode}})
        self._wait_operation(operation, what)

    def scaling_to_pause(self):
        """What the roll turns off on the group for its duration (shown by the plan)."""
        autoscaler = self._autoscaler()
        mode = ((autoscaler or {}).get("autoscalingPolicy") or {}).get("mode") or "ON"
        if autoscaler is None or mode == "OFF":
            return []
        return ["autoscaler %s (mode %s): set to OFF for the roll, then back to %s" % (autoscaler.get("name"), mode, mode)]

    def suspend_scaling(self):
        """Sets the group's autoscaler to OFF (it keeps its configuration) unless it is OFF already; returns what to put
        back, as ``autoscaler-mode=<name>=<mode>`` entries the roll keeps in its state."""
        autoscaler = self._autoscaler()
        mode = ((autoscaler or {}).get("autoscalingPolicy") or {}).get("mode") or "ON"
        if autoscaler is None or mode == "OFF":
            return []
        self._set_autoscaler_mode(autoscaler["name"], "OFF")
        return ["%s%s=%s" % (AUTOSCALER_MARK, autoscaler["name"], mode)]

    def resume_scaling(self, processes):
        for entry in processes or ():
            if entry.startswith(AUTOSCALER_MARK):
                name, _sep, mode = entry[len(AUTOSCALER_MARK):].rpartition("=")
                self._set_autoscaler_mode(name, mode)

    def unsafe_to_resume(self, processes):  # pylint: disable=unused-argument
        return {}

    # -- the roll's state and lock, as one project metadata item --------------------------------------------
    @property
    def _record_key(self):
        return "%s%s--%s" % (RECORD_KEY_PREFIX, self.zone or self.region, self.group_name)

    def _read_record(self):
        """(metadata fingerprint, every item, this group's record as a dict)."""
        project = self._request("GET", "%s/projects/%s" % (self.base_url, self.project), "read the metadata of project %s" % self.project)
        metadata = project.get("commonInstanceMetadata") or {}
        items = metadata.get("items") or []
        record = {}
        for item in items:
            if item.get("key") == self._record_key:
                try:
                    record = json.loads(item.get("value") or "{}")
                except ValueError:
                    record = {}
        return metadata.get("fingerprint"), items, record if isinstance(record, dict) else {}

    def _change_record(self, change):
        """Writes ``change(record)`` (a dict; empty removes the item) with the fingerprint just read; on a 412 (someone changed the
        project's metadata in between) reads and applies ``change`` again. Returns the record written."""
        what = "record the roll's state in the metadata of project %s" % self.project
        for _attempt in range(RECORD_WRITE_ATTEMPTS):
            fingerprint, items, record = self._read_record()
            record = change(dict(record))
            items = [item for item in items if item.get("key") != self._record_key]
            if record:
                items.append({"key": self._record_key, "value": json.dumps(record, sort_keys=True, separators=(",", ":"))})
            try:
                operation = self._request("POST", "%s/projects/%s/setCommonInstanceMetadata" % (self.base_url, self.project), what,
                                          body={"fingerprint": fingerprint, "items": items})
                self._wait_operation(operation, what)
                return record
            except ProviderError as exc:
                if getattr(exc, "status", None) != 412:
                    raise
        raise ProviderError("Failed to %s: its metadata kept changing under %d attempts. Re-run the roll." % (what, RECORD_WRITE_ATTEMPTS))

    def load_state(self):
        return self._read_record()[2].get("state")

    def save_state(self, state):
        self._change_record(lambda record: dict(record, state=dict(state)))

    def clear_state(self):
        if self.load_state() is not None:
            self._change_record(lambda record: {k: v for k, v in record.items() if k != "state"})

    def lock_holder(self):
        holder = self._read_record()[2].get("lock")
        if holder and _epoch(holder.get("until")) > self._wall():
            return holder
        return None

    def pending_suspension(self):
        """What ``suspend_scaling`` would turn off now (``autoscaler-mode=<name>=<mode>``), written into the roll's state first, so
        that a run that dies with the autoscaler OFF leaves its mode for the re-run to put back."""
        autoscaler = self._autoscaler()
        mode = ((autoscaler or {}).get("autoscalingPolicy") or {}).get("mode") or "ON"
        return [] if autoscaler is None or mode == "OFF" else ["%s%s=%s" % (AUTOSCALER_MARK, autoscaler["name"], mode)]

    def acquire_lock(self, owner, ttl, state=None):
        """The lock, and with ``state`` the state, in one metadata write; the holder is checked against the metadata that write is
        conditional on (its fingerprint), so of two rolls at once one gets the lock and the other stops."""
        def take(record):
            holder = record.get("lock")
            if holder and holder.get("owner") != owner and _epoch(holder.get("until")) > self._wall():
                raise ProviderError("Another nomad_client_roll holds the roll lock of %s (%s, until %s). Wait for it to finish; if it "
                                    "died, the lock expires by itself at that time." % (self.group_name, holder.get("owner"), holder.get("until")))
            record["lock"] = {"owner": owner, "until": _utc(self._wall() + ttl)}
            if state is not None:
                record["state"] = dict(state)
            return record
        self._change_record(take)

    def release_lock(self, owner):
        if (self._read_record()[2].get("lock") or {}).get("owner") == owner:
            self._change_record(lambda record: {k: v for k, v in record.items() if k != "lock"}
                                if (record.get("lock") or {}).get("owner") == owner else record)


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text):
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _num(value):
    return int(value) if float(value).is_integer() else value
