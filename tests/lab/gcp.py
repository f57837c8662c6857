"""A stand-in for the Compute Engine v1 endpoints a managed instance group (MIG) roll uses, and for IAM v1
service-account policies, on one server with the real paths (so code takes two base-URL options,
``compute`` and ``iam``, that both point here; selfLinks point here too, so following them stays in the lab).

Reachable with ``google.auth.transport.requests.AuthorizedSession(AnonymousCredentials())``; an
``Authorization`` header is accepted and not checked. Served:
- ``/compute/v1/projects/{p}/zones/{z}/instanceGroupManagers[/{m}]``: list, get, ``PATCH`` (JSON merge
  patch of ``instanceTemplate``, ``versions``, ``updatePolicy``, ``targetSize``, ``description``;
  ``fingerprint``, when sent, must match: 412 otherwise), and ``POST`` ``{m}/resize?size=``,
  ``deleteInstances``, ``createInstances``, ``recreateInstances``, ``applyUpdatesToInstances``,
  ``setInstanceTemplate``, ``listManagedInstances`` (``PAGELESS`` by default as on GCP; ``maxResults`` /
  ``pageToken`` when the group's ``listManagedInstancesResults`` is ``PAGINATED``);
- ``/compute/v1/projects/{p}/zones/{z}/instances[/{name}]``: list, get;
- ``/compute/v1/projects/{p}/global/instanceTemplates[/{name}]``: list, get, insert, delete (400 while a
  group uses it);
- ``/compute/v1/projects/{p}/zones/{z}/operations/{op}`` and ``global/operations/{op}``: get and ``/wait``;
- ``POST /v1/projects/{p}/serviceAccounts/{email}:getIamPolicy`` / ``:setIamPolicy`` (etag checked: a stale
  etag answers 409 ABORTED; no etag overwrites) and ``GET /v1/projects/{p}/serviceAccounts/{email}``;
- Cloud DNS ``/dns/v1/projects/{p}/managedZones...`` and ``POST /token`` (``tests/lab/gcp_dns.py``, which also
  has the proxy the google.cloud modules reach it through).

The request log records writes only: the read-only POSTs (``listManagedInstances``, ``getIamPolicy``,
``operations.wait``) are left out, so a check-mode run that lists instances still logs nothing.

Semantics (lab seconds from the shared clock; state advances lazily, event by event, whenever anyone
looks): mutations answer an Operation that is ``RUNNING`` for ``op_delay`` then ``DONE``; the change itself
applies at once, and the group's ``status.isStable`` / each instance's ``currentAction`` say when the
instances caught up. An instance is created ``PROVISIONING`` -> ``STAGING`` -> ``RUNNING`` over
``create_delay`` (``currentAction`` ``CREATING``), deleted ``STOPPING`` over ``delete_delay`` then gone
(``DELETING``), recreated ``STOPPING`` then created again with a new id (``RECREATING``). A group keeps
``targetSize`` instances; new ones get the template of the version that is short of its ``targetSize``
(the last, size-less version otherwise). With ``updatePolicy.type`` ``PROACTIVE`` (the lab's default for
``create_mig``: a template change then rolls the group on its own, as GCP does, *without* draining Nomad)
instances not on a current version are replaced within ``maxSurge``/``maxUnavailable`` (``SUBSTITUTE``:
surge then delete; ``RECREATE``: recreate in place; ``minimalAction`` is always taken as REPLACE and a
``mostDisruptiveAllowedAction`` of NONE or REFRESH stops it); ``OPPORTUNISTIC`` changes only new instances.
Resizing down deletes non-running, then outdated, then the newest instances first. (GCP's default
``updatePolicy.type`` for a new group could not be confirmed from its documentation: the lab defaults to the
dangerous PROACTIVE so that a roll must set the type it relies on.) ``reset()`` forgets everything.

Not modelled: regional MIGs and instance templates, autoscalers, health checks and autohealing,
stateful policies, per-instance configs, ``filter``/``orderBy`` (ignored), quotas, IAM permissions (every
caller may do everything), project-level IAM.
"""
from __future__ import annotations

import base64
import math
import random
import re
import string
import struct
import threading
import time
from datetime import datetime, timezone

from .gcp_dns import CloudDns, DnsError
from .standin_http import HttpStandIn, Request, Response

_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_TEMPLATE_REF = re.compile(r"(?:^|/)(?:projects/([^/]+)/)?global/instanceTemplates/([^/]+)$")
_IAM_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_COMPUTE_REASON = {400: "invalid", 403: "forbidden", 404: "notFound", 409: "alreadyExists", 412: "conditionNotMet",
                   429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
_MEMBER_PREFIXES = ("user:", "serviceAccount:", "group:", "domain:", "principal:", "principalSet:", "deleted:")
_ACTIONS = ("abandoning", "creating", "creatingWithoutRetries", "deleting", "none", "recreating", "refreshing",
            "restarting", "resuming", "starting", "stopping", "suspending", "verifying")


class GcpError(Exception):
    """An API error, rendered in the Compute or the IAM error format depending on the path."""

    def __init__(self, status: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason or _COMPUTE_REASON.get(status, "backendError")


class _Instance:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    def __init__(self, name, instance_id, project, zone, mig, template, version_name, now):
        self.name = name
        self.id = instance_id
        self.project = project
        self.zone = zone
        self.mig = mig
        self.template = template
        self.version_name = version_name
        self.created_at = now
        self.status = "PROVISIONING"
        self.action = "CREATING"
        self.next_at = None
        self.after_stop = None
        self.running_since = None
        self.stopping_since = None
        self.ip = None


class _Mig:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    def __init__(self, project, zone, name, mig_id, base_instance_name, versions, target_size, update_policy, now):
        self.project = project
        self.zone = zone
        self.name = name
        self.id = mig_id
        self.base_instance_name = base_instance_name
        self.versions = versions
        self.target_size = target_size
        self.update_policy = update_policy
        self.created = now
        self.description = ""
        self.fingerprint = ""
        self.list_results = "PAGELESS"


class GcpLab(HttpStandIn):  # pylint: disable=too-many-public-methods,too-many-instance-attributes
    """The GCP stand-in: an HTTP server plus a Python API for the lab (``create_template``, ``create_mig``...)."""

    SERVICE = "gcp"

    def __init__(self, clock, request_log=None, faults=None, op_delay=2.0, create_delay=20.0, delete_delay=10.0,
                 seed=0, wait_wall_cap=5.0):
        super().__init__(clock, request_log, faults)
        self.op_delay = float(op_delay)
        self.create_delay = float(create_delay)
        self.delete_delay = float(delete_delay)
        self.wait_wall_cap = wait_wall_cap
        self.epoch = time.time() - clock.now()
        self._seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forgets every template, group, instance, operation and service account (the server keeps serving)."""
        with self._lock:
            self._init_state()

    def _init_state(self) -> None:
        self._rng = random.Random(self._seed)
        self._now = self.clock.now()
        self._templates: dict = {}
        self._migs: dict = {}
        self._instances: dict = {}
        self._operations: dict = {}
        self._accounts: dict = {}
        self._ip_counter = 10
        self.dns = CloudDns(self.clock, self._timestamp)
        self.removed: list[dict] = []  # every instance that went away: name, id, template, when

    # ================================================================ Python API for the lab and tests
    def create_template(self, project, name, properties=None, description="") -> str:
        """Creates an instance template at once (no operation); returns its selfLink."""
        with self._lock:
            self._advance()
            self._insert_template(project, {"name": name, "properties": properties or {}, "description": description})
            return self._template_url(project, name)

    def create_mig(self, project, zone, name, template, size, base_instance_name=None, update_policy=None) -> dict:
        """Creates a zonal MIG whose ``size`` instances are already ``RUNNING`` (a seeded, settled group).

        ``template`` is a name or a URL; ``update_policy`` defaults to PROACTIVE / REPLACE / SUBSTITUTE with
        maxSurge 1 and maxUnavailable 1 (GCP's defaults for a zonal group)."""
        with self._lock:
            self._advance()
            template_url = self._resolve_template(project, template if "/" in template else "global/instanceTemplates/" + template)
            policy = {"type": "PROACTIVE", "minimalAction": "REPLACE", "replacementMethod": "SUBSTITUTE",
                      "maxSurge": {"fixed": 1}, "maxUnavailable": {"fixed": 1}}
            policy.update(update_policy or {})
            mig = _Mig(project, zone, name, self._new_numeric_id(), base_instance_name or name,
                       [{"name": "primary", "instanceTemplate": template_url}], int(size), policy, self._now)
            mig.fingerprint = self._new_fingerprint()
            self._migs[(project, zone, name)] = mig
            for _position in range(int(size)):
                instance = self._create_instance(mig, template_url, "primary")
                instance.status, instance.action, instance.next_at = "RUNNING", "NONE", None
                instance.running_since = self._now
            return self._render_mig(mig)

    def instances(self, project, zone, mig) -> list[dict]:
        """The group's instances: name, id, status, current_action, template (name), running_since..."""
        with self._lock:
            self._advance()
            group = self._migs.get((project, zone, mig))
            if group is None:
                raise KeyError("no MIG %s/%s/%s" % (project, zone, mig))
            return [self._instance_summary(i) for i in self._mig_instances(group)]

    def all_instances(self) -> list[dict]:
        """Every instance in every zone (what the world registers as Nomad nodes)."""
        with self._lock:
            self._advance()
            return [self._instance_summary(i) for i in self._instances.values()]

    def mig(self, project, zone, name) -> dict:
        with self._lock:
            self._advance()
            return self._render_mig(self._get_mig(project, zone, name))

    def create_service_account(self, project, account_id, display_name="") -> str:
        """Creates a service account with an empty IAM policy; returns its email."""
        with self._lock:
            email = "%s@%s.iam.gserviceaccount.com" % (account_id, project)
            self._accounts[email] = {"project": project, "email": email, "display_name": display_name,
                                     "unique_id": str(self._rng.randrange(10 ** 20, 10 ** 21)), "bindings": [],
                                     "version": 1, "serial": 0}
            return email

    def iam_policy(self, email) -> dict:
        with self._lock:
            return self._render_policy(self._account(email))

    def now(self) -> float:
        with self._lock:
            self._advance()
            return self._now

    # ================================================================ simulation
    def _new_numeric_id(self) -> str:
        return str(self._rng.randrange(10 ** 18, 10 ** 19))

    def _new_fingerprint(self) -> str:
        return base64.b64encode(self._rng.getrandbits(64).to_bytes(8, "big")).decode()

    def _advance(self) -> None:
        target = self.clock.now()
        while True:
            due = [i.next_at for i in self._instances.values() if i.next_at is not None]
            if not due or min(due) > target:
                break
            self._now = max(self._now, min(due))
            self._settle()
        self._now = max(self._now, target)
        self._settle()

    def _settle(self) -> None:
        for key, instance in list(self._instances.items()):
            if instance.next_at is not None and instance.next_at <= self._now:
                self._step(key, instance)
        for mig in list(self._migs.values()):
            for _step in range(4):  # to a fixed point: a deletion may let the next surge start at the same instant
                if not self._reconcile(mig):
                    break

    def _step(self, key, instance) -> None:
        now = self._now
        if instance.status == "PROVISIONING":
            instance.status = "STAGING"
            instance.next_at = instance.created_at + self.create_delay
        elif instance.status == "STAGING":
            instance.status, instance.action, instance.next_at = "RUNNING", "NONE", None
            instance.running_since = now
        elif instance.status == "STOPPING" and instance.after_stop == "delete":
            del self._instances[key]
            self.removed.append({"name": instance.name, "id": instance.id, "template": self._name_of(instance.template),
                                 "stopping_since": instance.stopping_since, "gone_at": now})
        elif instance.status == "STOPPING":
            self.removed.append({"name": instance.name, "id": instance.id, "template": self._name_of(instance.template),
                                 "stopping_since": instance.stopping_since, "gone_at": now})
            mig = self._migs.get(instance.mig)
            if mig is not None:
                version = self._version_for_new(mig, exclude=instance)
                instance.template, instance.version_name = version["instanceTemplate"], version.get("name", "")
            instance.id = self._new_numeric_id()
            instance.status, instance.created_at, instance.after_stop = "PROVISIONING", now, None
            instance.next_at = now + self.create_delay / 2
            instance.running_since = instance.stopping_since = None

    def _create_instance(self, mig, template_url, version_name, name=None) -> _Instance:
        while name is None:
            suffix = "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _char in range(4))
            candidate = "%s-%s" % (mig.base_instance_name, suffix)
            if (mig.project, mig.zone, candidate) not in self._instances:
                name = candidate
        instance = _Instance(name, self._new_numeric_id(), mig.project, mig.zone, (mig.project, mig.zone, mig.name),
                             template_url, version_name, self._now)
        self._ip_counter += 1
        instance.ip = "10.128.%d.%d" % (self._ip_counter // 250, self._ip_counter % 250 + 2)
        instance.next_at = self._now + self.create_delay / 2
        self._instances[(mig.project, mig.zone, name)] = instance
        return instance

    def _delete_instance(self, instance) -> None:
        if instance.action == "DELETING":
            return
        instance.action, instance.status, instance.after_stop = "DELETING", "STOPPING", "delete"
        instance.stopping_since = self._now
        instance.next_at = self._now + self.delete_delay

    def _recreate_instance(self, instance) -> None:
        if instance.action in ("DELETING", "RECREATING"):
            return
        instance.action, instance.status, instance.after_stop = "RECREATING", "STOPPING", "recreate"
        instance.stopping_since = self._now
        instance.next_at = self._now + self.delete_delay

    def _mig_instances(self, mig) -> list:
        key = (mig.project, mig.zone, mig.name)
        return sorted((i for i in self._instances.values() if i.mig == key), key=lambda i: (i.created_at, i.name))

    def _version_targets(self, mig) -> list[int | None]:
        targets = []
        for version in mig.versions:
            size = version.get("targetSize")
            if not size:
                targets.append(None)
            elif "fixed" in size:
                targets.append(int(size["fixed"]))
            else:
                targets.append(int(math.ceil(mig.target_size * float(size.get("percent", 0)) / 100.0)))
        return targets

    def _version_for_new(self, mig, exclude=None) -> dict:
        members = [i for i in self._mig_instances(mig) if i.action != "DELETING" and i is not exclude]
        for version, target in zip(mig.versions, self._version_targets(mig)):
            if target is None:
                continue
            if sum(1 for i in members if i.template == version["instanceTemplate"]) < target:
                return version
        sizeless = [v for v, t in zip(mig.versions, self._version_targets(mig)) if t is None]
        return sizeless[-1] if sizeless else mig.versions[-1]

    def _up_to_date(self, mig, instance) -> bool:
        return any(v["instanceTemplate"] == instance.template for v in mig.versions)

    def _calculated(self, mig, key) -> int:
        value = mig.update_policy.get(key) or {}
        if "percent" in value:
            return int(math.ceil(mig.target_size * float(value["percent"]) / 100.0))
        return int(value.get("fixed", 0))

    def _reconcile(self, mig) -> bool:
        """One step of the group manager; True when it changed something."""
        changed = False
        members = [i for i in self._mig_instances(mig) if i.action != "DELETING"]
        outdated = [i for i in members if not self._up_to_date(mig, i) and i.action != "RECREATING"]
        # A template change needs a REPLACE (or RESTART); a policy that forbids those never replaces anything.
        proactive = (mig.update_policy.get("type") == "PROACTIVE" and outdated
                     and mig.update_policy.get("mostDisruptiveAllowedAction", "REPLACE") not in ("NONE", "REFRESH"))
        if proactive:
            changed = self._proactive_step(mig, members, outdated)
            members = [i for i in self._mig_instances(mig) if i.action != "DELETING"]
        while len(members) < mig.target_size:
            version = self._version_for_new(mig)
            members.append(self._create_instance(mig, version["instanceTemplate"], version.get("name", "")))
            changed = True
        if len(members) > mig.target_size and not proactive:
            for instance in self._victims(mig, members, len(members) - mig.target_size):
                self._delete_instance(instance)
                changed = True
        return changed

    def _proactive_step(self, mig, members, outdated) -> bool:
        changed = False
        max_unavailable = self._calculated(mig, "maxUnavailable")
        available = sum(1 for i in members if i.status == "RUNNING" and i.action == "NONE")
        floor = mig.target_size - max_unavailable
        if mig.update_policy.get("replacementMethod") == "RECREATE":
            for instance in sorted(outdated, key=lambda i: i.status == "RUNNING"):
                if instance.status != "RUNNING" or available - 1 >= floor:
                    available -= instance.status == "RUNNING"
                    self._recreate_instance(instance)
                    changed = True
            return changed
        surge_in_use = len(members) - mig.target_size
        while surge_in_use < min(self._calculated(mig, "maxSurge"), len(outdated)):
            version = self._version_for_new(mig)
            self._create_instance(mig, version["instanceTemplate"], version.get("name", ""))
            surge_in_use += 1
            changed = True
        # Count the surged instances that are up: they let as many old ones go without losing capacity.
        members = [i for i in self._mig_instances(mig) if i.action != "DELETING"]
        available = sum(1 for i in members if i.status == "RUNNING" and i.action == "NONE")
        floor = mig.target_size - max_unavailable
        for instance in sorted(outdated, key=lambda i: i.status == "RUNNING"):
            if instance.status != "RUNNING":
                self._delete_instance(instance)
                changed = True
            elif available - 1 >= floor and len([i for i in members if i.action != "DELETING"]) - 1 >= floor:
                self._delete_instance(instance)
                available -= 1
                changed = True
        return changed

    def _victims(self, mig, members, count) -> list:
        ranked = sorted(members, key=lambda i: (i.status == "RUNNING", self._up_to_date(mig, i), -i.created_at, i.name))
        return ranked[:count]

    # ================================================================ URLs and rendering
    def _compute(self, project) -> str:
        return "%s/compute/v1/projects/%s" % (self.base_url, project)

    def _template_url(self, project, name) -> str:
        return "%s/global/instanceTemplates/%s" % (self._compute(project), name)

    def _zone_url(self, project, zone) -> str:
        return "%s/zones/%s" % (self._compute(project), zone)

    def _instance_url(self, instance) -> str:
        return "%s/instances/%s" % (self._zone_url(instance.project, instance.zone), instance.name)

    def _mig_url(self, mig) -> str:
        return "%s/instanceGroupManagers/%s" % (self._zone_url(mig.project, mig.zone), mig.name)

    @staticmethod
    def _name_of(url) -> str:
        return url.rstrip("/").rsplit("/", 1)[-1]

    def _resolve_template(self, project, reference) -> str:
        match = _TEMPLATE_REF.search(str(reference or ""))
        if not match:
            raise GcpError(400, "Invalid value for field 'resource.instanceTemplate': '%s'. The URL is malformed." % reference)
        template_project = match.group(1) or project
        if (template_project, match.group(2)) not in self._templates:
            raise GcpError(404, "The resource 'projects/%s/global/instanceTemplates/%s' was not found"
                           % (template_project, match.group(2)))
        return self._template_url(template_project, match.group(2))

    def _timestamp(self, lab_time) -> str:
        return datetime.fromtimestamp(self.epoch + lab_time, tz=timezone.utc).isoformat(timespec="milliseconds")

    def _instance_summary(self, instance) -> dict:
        return {"project": instance.project, "zone": instance.zone, "name": instance.name, "id": instance.id,
                "mig": instance.mig[2] if instance.mig else None, "status": instance.status,
                "current_action": instance.action, "template": self._name_of(instance.template),
                "template_url": instance.template, "running_since": instance.running_since,
                "stopping_since": instance.stopping_since, "ip": instance.ip, "created_at": instance.created_at}

    def _render_instance(self, instance) -> dict:
        mig = self._migs.get(instance.mig)
        items = [{"key": "instance-template", "value": instance.template}]
        if mig is not None:
            items.append({"key": "created-by", "value": self._mig_url(mig)})
        return {"kind": "compute#instance", "id": instance.id, "name": instance.name,
                "creationTimestamp": self._timestamp(instance.created_at), "status": instance.status,
                "zone": self._zone_url(instance.project, instance.zone),
                "machineType": "%s/machineTypes/n2-standard-8" % self._zone_url(instance.project, instance.zone),
                "networkInterfaces": [{"name": "nic0", "networkIP": instance.ip}],
                "metadata": {"kind": "compute#metadata", "items": items}, "labels": {},
                "selfLink": self._instance_url(instance)}

    def _render_managed(self, instance) -> dict:
        return {"instance": self._instance_url(instance), "id": instance.id, "name": instance.name,
                "instanceStatus": instance.status, "currentAction": instance.action,
                "version": {"instanceTemplate": instance.template, "name": instance.version_name}, "lastAttempt": {}}

    def _render_size(self, mig, size) -> dict:
        if not size:
            return size
        rendered = dict(size)
        rendered["calculated"] = (int(size["fixed"]) if "fixed" in size
                                  else int(math.ceil(mig.target_size * float(size.get("percent", 0)) / 100.0)))
        return rendered

    def _render_mig(self, mig) -> dict:
        members = self._mig_instances(mig)
        actions = {name: 0 for name in _ACTIONS}
        for instance in members:
            key = instance.action.lower()
            actions[key] = actions.get(key, 0) + 1
        stable = all(i.action == "NONE" for i in members) and len(members) == mig.target_size
        reached = all(self._up_to_date(mig, i) for i in members)
        versions = []
        for version in mig.versions:
            rendered = {"instanceTemplate": version["instanceTemplate"]}
            if version.get("name") is not None:
                rendered["name"] = version["name"]
            if version.get("targetSize"):
                rendered["targetSize"] = self._render_size(mig, version["targetSize"])
            versions.append(rendered)
        policy = dict(mig.update_policy)
        for key in ("maxSurge", "maxUnavailable"):
            if key in policy:
                policy[key] = self._render_size(mig, policy[key])
        resource = {
            "kind": "compute#instanceGroupManager", "id": mig.id, "name": mig.name, "description": mig.description,
            "creationTimestamp": self._timestamp(mig.created), "zone": self._zone_url(mig.project, mig.zone),
            "versions": versions, "instanceGroup": "%s/instanceGroups/%s" % (self._zone_url(mig.project, mig.zone), mig.name),
            "baseInstanceName": mig.base_instance_name, "fingerprint": mig.fingerprint, "currentActions": actions,
            "status": {"isStable": stable, "versionTarget": {"isReached": reached},
                       "stateful": {"hasStatefulConfig": False, "perInstanceConfigs": {"allEffective": True}},
                       "allInstancesConfig": {"effective": True}},
            "targetSize": mig.target_size, "updatePolicy": policy, "listManagedInstancesResults": mig.list_results,
            "selfLink": self._mig_url(mig),
        }
        if len(mig.versions) == 1:
            resource["instanceTemplate"] = mig.versions[0]["instanceTemplate"]
        return resource

    def _render_template(self, project, template) -> dict:
        return {"kind": "compute#instanceTemplate", "id": template["id"], "name": template["name"],
                "description": template.get("description", ""), "properties": template.get("properties", {}),
                "creationTimestamp": self._timestamp(template["created"]),
                "selfLink": self._template_url(project, template["name"])}

    def _new_operation(self, project, zone, op_type, target_link, target_id) -> dict:
        name = "operation-%d-%s" % (int((self.epoch + self._now) * 1000),
                                    "".join(self._rng.choice(string.hexdigits.lower()) for _char in range(12)))
        operation = {"name": name, "id": self._new_numeric_id(), "project": project, "zone": zone, "type": op_type,
                     "target": target_link, "target_id": target_id, "inserted": self._now,
                     "done_at": self._now + self.op_delay}
        self._operations[(project, zone, name)] = operation
        return self._render_operation(operation)

    def _render_operation(self, operation) -> dict:
        done = self._now >= operation["done_at"]
        scope = ("%s" % self._zone_url(operation["project"], operation["zone"]) if operation["zone"]
                 else "%s/global" % self._compute(operation["project"]))
        rendered = {"kind": "compute#operation", "id": operation["id"], "name": operation["name"],
                    "operationType": operation["type"], "targetLink": operation["target"],
                    "targetId": operation["target_id"], "status": "DONE" if done else "RUNNING",
                    "user": "lab@example.com", "progress": 100 if done else 0,
                    "insertTime": self._timestamp(operation["inserted"]), "startTime": self._timestamp(operation["inserted"]),
                    "selfLink": "%s/operations/%s" % (scope, operation["name"])}
        if operation["zone"]:
            rendered["zone"] = self._zone_url(operation["project"], operation["zone"])
        if done:
            rendered["endTime"] = self._timestamp(operation["done_at"])
        return rendered

    # ================================================================ HTTP
    def read_only(self, request):
        """listManagedInstances, getIamPolicy and operations.wait are POSTs that change nothing."""
        return request.method == "POST" and (request.path.endswith(("/listManagedInstances", ":getIamPolicy", "/wait"))
                                             or request.path == "/token")

    def fault_response(self, fault, request):
        return self._error_response(GcpError(fault.status, fault.message), request)

    def internal_error(self, exc, request):
        return self._error_response(GcpError(500, "lab gcp stand-in error: %s: %s" % (type(exc).__name__, exc)), request)

    @staticmethod
    def _error_response(error, request) -> Response:
        if request.path.startswith("/v1/"):
            body = {"error": {"code": error.status, "message": error.message,
                              "status": _IAM_STATUS.get(error.status, "UNKNOWN")}}
        else:
            body = {"error": {"code": error.status, "message": error.message,
                              "errors": [{"message": error.message, "domain": "global", "reason": error.reason}]}}
        return Response(error.status, body)

    def handle(self, request: Request) -> Response:
        try:
            with self._lock:
                self._advance()
                if request.path.startswith("/v1/projects/"):
                    return Response(200, self._iam_route(request))
                if request.path.startswith("/dns/v1/") or request.path == "/token":
                    try:
                        return Response(200, self.dns.handle(request))
                    except DnsError as exc:
                        raise GcpError(exc.status, exc.message, exc.reason) from exc
                parts = [p for p in request.path.split("/") if p]
                if parts[:3] != ["compute", "v1", "projects"] or len(parts) < 4:
                    raise GcpError(404, "The requested URL %s was not found on this server." % request.path)
                payload = self._compute_route(request, parts[3], parts[4:])
            if isinstance(payload, _Wait):
                payload = self._wait(payload)
            return Response(200, payload)
        except GcpError as exc:
            return self._error_response(exc, request)

    def _compute_route(self, request, project, rest):  # pylint: disable=too-many-return-statements
        method = request.method
        if not rest:
            raise GcpError(404, "The requested URL was not found on this server.")
        if rest[0] == "global" and len(rest) >= 2 and rest[1] == "instanceTemplates":
            return self._templates_route(request, project, rest[2:])
        if rest[0] == "global" and len(rest) >= 3 and rest[1] == "operations":
            return self._operation_route(method, project, None, rest[2:])
        if rest[0] != "zones" or len(rest) < 3:
            raise GcpError(404, "The requested URL was not found on this server.")
        zone, collection, tail = rest[1], rest[2], rest[3:]
        if collection == "operations" and tail:
            return self._operation_route(method, project, zone, tail)
        if collection == "instances":
            return self._instances_route(request, project, zone, tail)
        if collection == "instanceGroupManagers":
            return self._mig_route(request, project, zone, tail)
        raise GcpError(404, "The requested URL was not found on this server.")

    @staticmethod
    def _body(request) -> dict:
        try:
            body = request.json(default={})
        except ValueError as exc:
            raise GcpError(400, "Invalid JSON payload received. %s" % exc, "parseError") from exc
        if not isinstance(body, dict):
            raise GcpError(400, "Invalid JSON payload received. Expected an object.", "parseError")
        return body

    def _page(self, request, items, key, kind, self_link, paged=True) -> dict:
        result = {"kind": kind, "id": self_link, "selfLink": self_link}
        if paged:
            try:
                size = max(1, min(500, int(request.query.get("maxResults", 500))))
                start = int(request.query.get("pageToken") or 0)
            except ValueError as exc:
                raise GcpError(400, "Invalid value for pageToken or maxResults") from exc
            chunk = items[start:start + size]
            if start + size < len(items):
                result["nextPageToken"] = str(start + size)
        else:
            chunk = items
        if chunk:  # like GCP, an empty list has no key at all
            result[key] = chunk
        return result

    def _templates_route(self, request, project, tail):
        method = request.method
        if not tail and method == "GET":
            items = [self._render_template(project, t) for (p, _name), t in sorted(self._templates.items()) if p == project]
            return self._page(request, items, "items", "compute#instanceTemplateList",
                              "%s/global/instanceTemplates" % self._compute(project))
        if not tail and method == "POST":
            template = self._insert_template(project, self._body(request))
            return self._new_operation(project, None, "insert", self._template_url(project, template["name"]), template["id"])
        if len(tail) == 1:
            template = self._templates.get((project, tail[0]))
            if template is None:
                raise GcpError(404, "The resource 'projects/%s/global/instanceTemplates/%s' was not found" % (project, tail[0]))
            if method == "GET":
                return self._render_template(project, template)
            if method == "DELETE":
                url = self._template_url(project, tail[0])
                users = [m.name for m in self._migs.values() if any(v["instanceTemplate"] == url for v in m.versions)]
                if users:
                    raise GcpError(400, "The instance_template resource '%s' is already being used by '%s'"
                                   % ("projects/%s/global/instanceTemplates/%s" % (project, tail[0]), users[0]),
                                   "resourceInUseByAnotherResource")
                del self._templates[(project, tail[0])]
                return self._new_operation(project, None, "delete", url, template["id"])
        raise GcpError(405, "Method not allowed", "methodNotAllowed")

    def _insert_template(self, project, body) -> dict:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise GcpError(400, "Invalid value for field 'resource.name': '%s'. Must be a match of regex "
                                "'[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?'" % name)
        if (project, name) in self._templates:
            raise GcpError(409, "The resource 'projects/%s/global/instanceTemplates/%s' already exists" % (project, name))
        template = {"name": name, "id": self._new_numeric_id(), "properties": body.get("properties") or {},
                    "description": body.get("description", ""), "created": self._now}
        self._templates[(project, name)] = template
        return template

    def _operation_route(self, method, project, zone, tail):
        operation = self._operations.get((project, zone, tail[0]))
        if operation is None:
            raise GcpError(404, "The resource 'projects/%s/%s/operations/%s' was not found"
                           % (project, ("zones/" + zone) if zone else "global", tail[0]))
        if len(tail) == 1 and method == "GET":
            return self._render_operation(operation)
        if tail[1:] == ["wait"] and method == "POST":
            return _Wait(operation)
        raise GcpError(405, "Method not allowed", "methodNotAllowed")

    def _wait(self, waiting) -> dict:
        """operations.wait: returns when DONE or after a while (2 lab minutes, capped in wall time)."""
        deadline_lab = self.clock.now() + 120.0
        deadline_wall = time.monotonic() + self.wait_wall_cap
        while True:
            with self._lock:
                self._advance()
                if self._now >= waiting.operation["done_at"] or self._now >= deadline_lab or time.monotonic() >= deadline_wall:
                    return self._render_operation(waiting.operation)
            time.sleep(0.01)

    def _instances_route(self, request, project, zone, tail):
        if request.method != "GET":
            raise GcpError(405, "Method not allowed", "methodNotAllowed")
        if not tail:
            items = [self._render_instance(i) for (p, z, _name), i in sorted(self._instances.items()) if (p, z) == (project, zone)]
            return self._page(request, items, "items", "compute#instanceList", "%s/instances" % self._zone_url(project, zone))
        instance = self._instances.get((project, zone, tail[0]))
        if instance is None or len(tail) != 1:
            raise GcpError(404, "The resource 'projects/%s/zones/%s/instances/%s' was not found" % (project, zone, tail[0]))
        return self._render_instance(instance)

    def _get_mig(self, project, zone, name) -> _Mig:
        mig = self._migs.get((project, zone, name))
        if mig is None:
            raise GcpError(404, "The resource 'projects/%s/zones/%s/instanceGroupManagers/%s' was not found" % (project, zone, name))
        return mig

    def _mig_route(self, request, project, zone, tail):  # pylint: disable=too-many-return-statements,too-many-branches
        method = request.method
        if not tail:
            if method != "GET":
                raise GcpError(405, "Method not allowed", "methodNotAllowed")
            items = [self._render_mig(m) for (p, z, _name), m in sorted(self._migs.items()) if (p, z) == (project, zone)]
            return self._page(request, items, "items", "compute#instanceGroupManagerList",
                              "%s/instanceGroupManagers" % self._zone_url(project, zone))
        mig = self._get_mig(project, zone, tail[0])
        action = tail[1] if len(tail) > 1 else None
        if action is None and method == "GET":
            return self._render_mig(mig)
        if action is None and method == "PATCH":
            self._patch_mig(mig, self._body(request))
            return self._mig_operation(mig, "compute.instanceGroupManagers.patch")
        if method != "POST" or action is None:
            raise GcpError(405, "Method not allowed", "methodNotAllowed")
        if action == "listManagedInstances":
            items = [self._render_managed(i) for i in self._mig_instances(mig)]
            return self._page(request, items, "managedInstances", "compute#instanceGroupManagersListManagedInstancesResponse",
                              self._mig_url(mig), paged=mig.list_results == "PAGINATED")
        if action == "resize":
            self._resize(mig, request.query.get("size"))
        elif action == "deleteInstances":
            for instance in self._members_named(mig, self._body(request).get("instances")):
                if instance.action != "DELETING":  # deleting twice must not shrink the group twice
                    mig.target_size -= 1
                    self._delete_instance(instance)
        elif action in ("recreateInstances", "applyUpdatesToInstances"):
            body = self._body(request)
            if action == "applyUpdatesToInstances" and body.get("allInstances"):
                targets = [i for i in self._mig_instances(mig) if i.action == "NONE"]
            else:
                targets = self._members_named(mig, body.get("instances"))
            if action == "applyUpdatesToInstances" and body.get("minimalAction", "NONE") != "REPLACE":
                targets = [i for i in targets if not self._up_to_date(mig, i)]
            for instance in targets:
                self._recreate_instance(instance)
        elif action == "createInstances":
            self._create_named(mig, self._body(request).get("instances"))
        elif action == "setInstanceTemplate":
            url = self._resolve_template(project, self._body(request).get("instanceTemplate"))
            mig.versions = [{"name": mig.versions[0].get("name", "") if mig.versions else "", "instanceTemplate": url}]
        else:
            raise GcpError(400, "Invalid request: unknown method %s" % action, "badRequest")
        mig.fingerprint = self._new_fingerprint()
        self._settle()
        return self._mig_operation(mig, "compute.instanceGroupManagers.%s" % action)

    def _mig_operation(self, mig, op_type) -> dict:
        return self._new_operation(mig.project, mig.zone, op_type, self._mig_url(mig), mig.id)

    def _members_named(self, mig, references) -> list:
        if not isinstance(references, list) or not references:
            raise GcpError(400, "Required field 'instances' not specified", "required")
        members = {i.name: i for i in self._mig_instances(mig)}
        found = []
        for reference in references:
            name = self._name_of(str(reference))
            if name not in members:
                raise GcpError(400, "The resource 'projects/%s/zones/%s/instances/%s' is not a member of the managed "
                                    "instance group '%s'" % (mig.project, mig.zone, name, mig.name), "invalid")
            found.append(members[name])
        return found

    def _create_named(self, mig, specs) -> None:
        if not isinstance(specs, list) or not specs:
            raise GcpError(400, "Required field 'instances' not specified", "required")
        for spec in specs:
            name = (spec or {}).get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise GcpError(400, "Invalid value for field 'instances.name': '%s'" % name)
            if (mig.project, mig.zone, name) in self._instances:
                raise GcpError(409, "The resource 'projects/%s/zones/%s/instances/%s' already exists" % (mig.project, mig.zone, name))
        for spec in specs:
            version = self._version_for_new(mig)
            self._create_instance(mig, version["instanceTemplate"], version.get("name", ""), name=spec["name"])
            mig.target_size += 1

    def _resize(self, mig, size) -> None:
        try:
            size = int(size)
        except (TypeError, ValueError) as exc:
            raise GcpError(400, "Required parameter 'size' is missing or not an integer", "required") from exc
        if size < 0:
            raise GcpError(400, "Invalid value for field 'size': '%d'. Must be greater than or equal to 0." % size)
        members = [i for i in self._mig_instances(mig) if i.action != "DELETING"]
        mig.target_size = size
        if len(members) > size:
            for instance in self._victims(mig, members, len(members) - size):
                self._delete_instance(instance)

    def _patch_mig(self, mig, body) -> None:
        if "fingerprint" in body and body["fingerprint"] != mig.fingerprint:
            raise GcpError(412, "Supplied fingerprint does not match current metadata fingerprint.")
        versions = mig.versions
        if "versions" in body:
            versions = []
            for version in body["versions"] or []:
                entry = {"name": version.get("name", ""),
                         "instanceTemplate": self._resolve_template(mig.project, version.get("instanceTemplate"))}
                if version.get("targetSize"):
                    entry["targetSize"] = {k: v for k, v in version["targetSize"].items() if k in ("fixed", "percent")}
                versions.append(entry)
            if not versions:
                raise GcpError(400, "Invalid value for field 'resource.versions': at least one version is required")
        elif "instanceTemplate" in body:
            url = self._resolve_template(mig.project, body["instanceTemplate"])
            versions = [{"name": versions[0].get("name", "") if versions else "", "instanceTemplate": url}]
        policy = dict(mig.update_policy)
        for key, value in (body.get("updatePolicy") or {}).items():
            if value is None:
                policy.pop(key, None)
            else:
                policy[key] = dict(value) if isinstance(value, dict) else value
        if policy.get("type") not in ("PROACTIVE", "OPPORTUNISTIC"):
            raise GcpError(400, "Invalid value for field 'resource.updatePolicy.type': '%s'" % policy.get("type"))
        target_size = body.get("targetSize", mig.target_size)
        if not isinstance(target_size, int) or target_size < 0:
            raise GcpError(400, "Invalid value for field 'resource.targetSize': '%s'" % target_size)
        probe = _Mig(mig.project, mig.zone, mig.name, mig.id, mig.base_instance_name, versions, target_size, policy, mig.created)
        surge, unavailable = self._calculated(probe, "maxSurge"), self._calculated(probe, "maxUnavailable")
        if policy.get("type") == "PROACTIVE" and surge <= 0 and unavailable <= 0:
            raise GcpError(400, "Fixed or percent value of maxSurge or maxUnavailable must be greater than 0.")
        if policy.get("replacementMethod") == "RECREATE" and surge > 0:
            raise GcpError(400, "maxSurge must be equal to 0 when replacement method is set to RECREATE")
        mig.versions, mig.update_policy, mig.target_size = versions, policy, target_size
        if "description" in body:
            mig.description = body["description"] or ""
        if body.get("listManagedInstancesResults") in ("PAGELESS", "PAGINATED"):
            mig.list_results = body["listManagedInstancesResults"]
        mig.fingerprint = self._new_fingerprint()
        self._settle()

    # ================================================================ IAM
    def _account(self, email) -> dict:
        account = self._accounts.get(email)
        if account is None:
            raise GcpError(404, "Service account %s does not exist." % email)
        return account

    @staticmethod
    def _etag(account) -> str:
        if account["serial"] == 0:
            return "ACAB"
        return base64.b64encode(b"\x07\x05" + struct.pack(">Q", account["serial"])[2:]).decode()

    def _render_policy(self, account) -> dict:
        policy = {"version": account["version"], "etag": self._etag(account)}
        if account["bindings"]:
            policy["bindings"] = [dict(b, members=list(b["members"])) for b in account["bindings"]]
        return policy

    def _iam_route(self, request) -> dict:
        match = re.match(r"^/v1/projects/([^/]+)/serviceAccounts/([^/:]+)(?::(getIamPolicy|setIamPolicy))?$", request.path)
        if match is None:
            raise GcpError(404, "The requested URL %s was not found on this server." % request.path)
        project, email, verb = match.groups()
        account = self._account(email)
        if project not in ("-", account["project"]):
            raise GcpError(404, "Service account projects/%s/serviceAccounts/%s does not exist." % (project, email))
        if verb is None and request.method == "GET":
            return {"name": "projects/%s/serviceAccounts/%s" % (account["project"], email), "projectId": account["project"],
                    "uniqueId": account["unique_id"], "email": email, "displayName": account["display_name"],
                    "etag": "MDEwMjE5MjA=", "oauth2ClientId": account["unique_id"]}
        if verb is None or request.method != "POST":
            raise GcpError(405, "Method not allowed")
        body = self._body(request)
        if verb == "getIamPolicy":
            return self._render_policy(account)
        policy = body.get("policy")
        if not isinstance(policy, dict):
            raise GcpError(400, "Invalid JSON payload: 'policy' is required")
        bindings = policy.get("bindings") or []
        for binding in bindings:
            role, members = binding.get("role"), binding.get("members")
            if not isinstance(role, str) or not role.startswith(("roles/", "projects/", "organizations/")):
                raise GcpError(400, "Role (%s) does not exist in the resource's hierarchy." % role)
            if not isinstance(members, list) or not members or not all(
                    isinstance(m, str) and m.startswith(_MEMBER_PREFIXES) for m in members):
                raise GcpError(400, "Invalid member in binding for role %s: %s" % (role, members))
        etag = policy.get("etag")
        if etag and etag != self._etag(account):
            raise GcpError(409, "There were concurrent policy changes. Please retry the whole read-modify-write with "
                                "exponential backoff. The request's ETag '%s' did not match the current policy's ETag '%s'."
                           % (etag, self._etag(account)))
        account["bindings"] = [{"role": b["role"], "members": sorted(set(b["members"]))} for b in bindings]
        account["version"] = int(policy.get("version") or 1)
        account["serial"] += 1
        return self._render_policy(account)


class _Wait:  # pylint: disable=too-few-public-methods
    """An operations.wait that must block outside the lock."""

    def __init__(self, operation):
        self.operation = operation
