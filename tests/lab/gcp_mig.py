"""The GCP stand-in (``tests/lab/gcp.py``) plus what a Nomad client roll meets on real groups: regional managed
instance groups and autoscalers.

``GcpMigLab`` serves, besides everything ``GcpLab`` serves:

- ``/compute/v1/projects/{p}/regions/{r}/instanceGroupManagers[/{m}]``: the same methods as the zonal groups
  (get, list, ``PATCH``, ``resize``, ``deleteInstances``, ``listManagedInstances``...); the group spreads its
  instances evenly over its zones (``distributionPolicy.zones``; each new instance goes to the zone with the
  fewest), and its operations are regional (``regions/{r}/operations/{op}``);
- ``/compute/v1/projects/{p}/zones/{z}/autoscalers[/{a}]`` and ``regions/{r}/autoscalers[/{a}]``: list, get, and
  ``PATCH ...autoscalers?autoscaler={a}`` (JSON merge patch of ``autoscalingPolicy``: ``mode`` ``ON``, ``OFF``,
  ``ONLY_SCALE_OUT``, ``ONLY_UP``; min and max replicas), answering an Operation. The group names its autoscaler
  in ``status.autoscaler``, as on GCP;
- ``/compute/v1/projects/{p}`` (get: ``commonInstanceMetadata`` with its ``fingerprint`` and ``items``) and
  ``POST .../projects/{p}/setCommonInstanceMetadata``, answering a global Operation: the body's ``fingerprint`` must
  be the current one (412 ``conditionNotMet`` otherwise, or when it is missing), keys must match
  ``[a-zA-Z0-9-_]{1,128}`` and be unique, a value at most 256 KB (400 otherwise); the items replace the project's.

An autoscaler acts whenever anyone looks: mode ``ON`` sets the group's target size to its recommendation (within
min and max replicas; scaling in deletes non-running, then outdated instances first, as a resize does), so a
surge made behind its back is undone at once; ``ONLY_SCALE_OUT`` (and the older ``ONLY_UP``) only raises the
target size to the recommendation; ``OFF`` does nothing and keeps its configuration. The recommendation is
the lab's demand, set with ``set_recommended`` (the group's size when the autoscaler was created).

Seeding: ``create_regional_mig(project, region, name, template, size, zones=None, ...)`` and
``create_autoscaler(project, scope, name, mig, mode="ON", min_replicas=1, max_replicas=10)`` where ``scope`` is
a zone or ``regions/<region>`` (the key the Python API uses for a regional group everywhere: ``mig()``,
``instances()``).

Not modelled: autoscaling signals (CPU, load balancing, metrics, schedules), cool-down and the scale-in
stabilisation period (it acts at once), scale-in controls, predictive autoscaling, refusing a manual resize of
an autoscaled group, target distribution shapes other than EVEN, zone outages.
"""
from __future__ import annotations

import re

from .gcp import GcpError, GcpLab, _Instance

AUTOSCALER_MODES = ("ON", "OFF", "ONLY_SCALE_OUT", "ONLY_UP")
METADATA_KEY = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
METADATA_VALUE_BYTES = 256 * 1024


class GcpMigLab(GcpLab):
    """``GcpLab`` with regional managed instance groups and autoscalers."""

    def _init_state(self) -> None:
        super()._init_state()
        self._autoscalers: dict = {}  # (project, scope, name) -> dict; scope is a zone or "regions/<region>"
        self._regional_zones: dict = {}  # MIG key -> the region's zones it spreads over
        self._project_metadata: dict = {}  # project -> {"fingerprint": str, "items": [{"key", "value"}]}

    # ---- seeding and reading -----------------------------------------------------------------------------------
    def create_regional_mig(self, project, region, name, template, size, zones=None, base_instance_name=None, update_policy=None) -> dict:
        with self._lock:
            self._regional_zones[(project, "regions/" + region, name)] = list(zones or ["%s-%s" % (region, z) for z in "bcd"])
            return self.create_mig(project, "regions/" + region, name, template, size, base_instance_name, update_policy)

    def create_autoscaler(self, project, scope, name, mig, mode="ON", min_replicas=1, max_replicas=10) -> dict:
        with self._lock:
            self._advance()
            group = self._get_mig(project, scope, mig)
            self._autoscalers[(project, scope, name)] = {
                "id": self._new_numeric_id(), "name": name, "mig": (project, scope, mig), "created": self._now,
                "recommended": group.target_size,
                "policy": {"mode": mode, "minNumReplicas": int(min_replicas), "maxNumReplicas": int(max_replicas),
                           "coolDownPeriodSec": 60, "cpuUtilization": {"utilizationTarget": 0.6}}}
            return self._render_autoscaler((project, scope, name))

    def autoscaler(self, project, scope, name) -> dict:
        with self._lock:
            self._advance()
            return self._render_autoscaler((project, scope, name))

    def project_metadata(self, project) -> dict:
        """The project's common instance metadata items, as {key: value}."""
        with self._lock:
            return {item["key"]: item["value"] for item in self._metadata(project)["items"]}

    def _metadata(self, project) -> dict:
        if project not in self._project_metadata:
            self._project_metadata[project] = {"fingerprint": self._new_fingerprint(), "items": []}
        return self._project_metadata[project]

    def set_recommended(self, project, scope, name, size) -> None:
        with self._lock:
            self._advance()
            self._autoscalers[(project, scope, name)]["recommended"] = int(size)
            self._settle()

    # ---- simulation ----------------------------------------------------------------------------------------------
    def _settle(self) -> None:
        for autoscaler in self._autoscalers.values():
            mig = self._migs.get(autoscaler["mig"])
            policy = autoscaler["policy"]
            if mig is None:
                continue
            wanted = min(max(autoscaler["recommended"], policy["minNumReplicas"]), policy["maxNumReplicas"])
            mode = policy.get("mode", "ON")
            if (mode == "ON" and mig.target_size != wanted) or (mode in ("ONLY_SCALE_OUT", "ONLY_UP") and mig.target_size < wanted):
                self._resize(mig, wanted)
                mig.fingerprint = self._new_fingerprint()
        super()._settle()

    def _create_instance(self, mig, template_url, version_name, name=None) -> _Instance:
        zones = self._regional_zones.get((mig.project, mig.zone, mig.name))
        if not zones:
            return super()._create_instance(mig, template_url, version_name, name)
        counts = {zone: 0 for zone in zones}
        for member in self._mig_instances(mig):
            if member.action != "DELETING" and member.zone in counts:
                counts[member.zone] += 1
        zone = min(zones, key=lambda z: (counts[z], zones.index(z)))
        taken = {n for (_p, _z, n) in self._instances}
        while name is None:
            candidate = "%s-%s" % (mig.base_instance_name, "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _c in range(4)))
            if candidate not in taken:
                name = candidate
        instance = _Instance(name, self._new_numeric_id(), mig.project, zone, (mig.project, mig.zone, mig.name), template_url, version_name, self._now)
        self._ip_counter += 1
        instance.ip = "10.128.%d.%d" % (self._ip_counter // 250, self._ip_counter % 250 + 2)
        instance.next_at = self._now + self.create_delay / 2
        self._instances[(mig.project, zone, name)] = instance
        return instance

    # ---- URLs and rendering --------------------------------------------------------------------------------------
    def _scope_url(self, project, scope) -> str:
        return "%s/%s" % (self._compute(project), scope) if scope.startswith("regions/") else self._zone_url(project, scope)

    def _mig_url(self, mig) -> str:
        return "%s/instanceGroupManagers/%s" % (self._scope_url(mig.project, mig.zone), mig.name)

    def _render_mig(self, mig) -> dict:
        resource = super()._render_mig(mig)
        key = (mig.project, mig.zone, mig.name)
        if key in self._regional_zones:
            region_url = self._scope_url(mig.project, mig.zone)
            resource.pop("zone", None)
            resource["region"] = region_url
            resource["instanceGroup"] = "%s/instanceGroups/%s" % (region_url, mig.name)
            resource["distributionPolicy"] = {"zones": [{"zone": self._zone_url(mig.project, z)} for z in self._regional_zones[key]],
                                              "targetShape": "EVEN"}
        for autoscaler_key, autoscaler in self._autoscalers.items():
            if autoscaler["mig"] == key:
                resource["status"]["autoscaler"] = self._autoscaler_url(autoscaler_key)
        return resource

    def _render_operation(self, operation) -> dict:
        rendered = super()._render_operation(operation)
        scope = operation["zone"] or ""
        if scope.startswith("regions/"):
            rendered.pop("zone", None)
            rendered["region"] = self._scope_url(operation["project"], scope)
            rendered["selfLink"] = "%s/operations/%s" % (rendered["region"], operation["name"])
        return rendered

    def _autoscaler_url(self, key) -> str:
        project, scope, name = key
        return "%s/autoscalers/%s" % (self._scope_url(project, scope), name)

    def _render_autoscaler(self, key) -> dict:
        autoscaler = self._autoscalers.get(key)
        if autoscaler is None:
            raise GcpError(404, "The resource 'projects/%s/%s/autoscalers/%s' was not found" % (
                key[0], key[1] if key[1].startswith("regions/") else "zones/" + key[1], key[2]))
        project, scope, _name = key
        mig = self._migs.get(autoscaler["mig"])
        resource = {"kind": "compute#autoscaler", "id": autoscaler["id"], "name": autoscaler["name"],
                    "creationTimestamp": self._timestamp(autoscaler["created"]),
                    "target": self._mig_url(mig) if mig else "", "autoscalingPolicy": dict(autoscaler["policy"]),
                    "recommendedSize": autoscaler["recommended"], "status": "ACTIVE", "selfLink": self._autoscaler_url(key)}
        resource["region" if scope.startswith("regions/") else "zone"] = self._scope_url(project, scope)
        return resource

    # ---- HTTP ----------------------------------------------------------------------------------------------------
    def _compute_route(self, request, project, rest):
        if not rest and request.method == "GET":
            metadata = self._metadata(project)
            return {"kind": "compute#project", "name": project, "selfLink": self._compute(project),
                    "commonInstanceMetadata": {"kind": "compute#metadata", "fingerprint": metadata["fingerprint"],
                                               **({"items": [dict(item) for item in metadata["items"]]} if metadata["items"] else {})}}
        if rest == ["setCommonInstanceMetadata"] and request.method == "POST":
            return self._set_common_instance_metadata(project, self._body(request))
        if len(rest) >= 3 and rest[0] == "regions":
            scope, collection, tail = "regions/" + rest[1], rest[2], rest[3:]
            if collection == "operations" and tail:
                return self._operation_route(request.method, project, scope, tail)
            if collection == "instanceGroupManagers":
                return self._mig_route(request, project, scope, tail)
            if collection == "autoscalers":
                return self._autoscaler_route(request, project, scope, tail)
            raise GcpError(404, "The requested URL was not found on this server.")
        if len(rest) >= 3 and rest[0] == "zones" and rest[2] == "autoscalers":
            return self._autoscaler_route(request, project, rest[1], rest[3:])
        return super()._compute_route(request, project, rest)

    def _set_common_instance_metadata(self, project, body) -> dict:
        metadata = self._metadata(project)
        if body.get("fingerprint") != metadata["fingerprint"]:
            raise GcpError(412, "Supplied fingerprint does not match current metadata fingerprint.", "conditionNotMet")
        items = body.get("items") or []
        keys = [item.get("key") for item in items]
        for item in items:
            if not METADATA_KEY.match(str(item.get("key") or "")):
                raise GcpError(400, "Invalid value for field 'resource.items[].key': '%s'." % item.get("key"))
            if len(str(item.get("value") or "").encode()) > METADATA_VALUE_BYTES:
                raise GcpError(400, "Value for field 'resource.items[].value' is too large: the maximum is 256 KB.")
        if len(set(keys)) != len(keys):
            raise GcpError(400, "Invalid value for field 'resource.items': duplicate keys.")
        metadata["items"] = [{"key": item["key"], "value": str(item.get("value") or "")} for item in items]
        metadata["fingerprint"] = self._new_fingerprint()
        return self._new_operation(project, None, "compute.projects.setCommonInstanceMetadata", self._compute(project), project)

    def _autoscaler_route(self, request, project, scope, tail):
        if request.method == "GET" and not tail:
            items = [self._render_autoscaler(k) for k in sorted(self._autoscalers) if k[:2] == (project, scope)]
            return self._page(request, items, "items", "compute#autoscalerList", "%s/autoscalers" % self._scope_url(project, scope))
        if request.method == "GET" and len(tail) == 1:
            return self._render_autoscaler((project, scope, tail[0]))
        if request.method == "PATCH" and not tail:
            name = request.query.get("autoscaler")
            key = (project, scope, name)
            self._render_autoscaler(key)  # 404 when unknown
            autoscaler = self._autoscalers[key]
            body = self._body(request)
            policy = dict(autoscaler["policy"])
            for field, value in (body.get("autoscalingPolicy") or {}).items():
                if value is None:
                    policy.pop(field, None)
                else:
                    policy[field] = value
            if policy.get("mode", "ON") not in AUTOSCALER_MODES:
                raise GcpError(400, "Invalid value for field 'resource.autoscalingPolicy.mode': '%s'." % policy.get("mode"))
            if int(policy.get("minNumReplicas", 0)) > int(policy.get("maxNumReplicas", 0)):
                raise GcpError(400, "Invalid value for field 'resource.autoscalingPolicy.minNumReplicas': must not exceed maxNumReplicas.")
            autoscaler["policy"] = policy
            self._settle()
            return self._new_operation(project, scope, "compute.autoscalers.patch", self._autoscaler_url(key), autoscaler["id"])
        raise GcpError(405, "Method not allowed", "methodNotAllowed")
