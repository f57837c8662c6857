"""The GCP stand-in (``tests/lab/gcp.py``) plus the Compute Engine v1 parts the 4.3 upgrade reads and changes on GCP.

``GcpComputeLab`` serves, besides everything ``GcpLab`` serves:

- ``/compute/v1/projects/{p}/global/firewalls[/{name}]``: list, get, ``PATCH`` (``allowed``, ``sourceRanges``,
  ``targetTags``, ``description``), ``DELETE``; each change answers an Operation (``global/operations``);
- VMs outside any managed instance group, with labels (what vm-service starts): in the zonal
  ``/compute/v1/projects/{p}/zones/{z}/instances`` list and get (and ``DELETE``), and in
  ``/compute/v1/projects/{p}/aggregated/instances`` (every zone, ``items`` keyed ``zones/<zone>``, with the
  groups' instances too). A VM created with ``finishes_after`` lab seconds is gone after that (vm-gc).

Seeding: ``create_firewall(project, name, network, allowed, source_ranges, target_tags)`` and
``create_vm(project, zone, name, labels, finishes_after=None)``.

Not modelled: ``filter`` (ignored, as in ``GcpLab``), firewall priorities, denied rules, egress, logging
configs, instance insert over HTTP, instance status changes other than vanishing.
"""
from __future__ import annotations

from .gcp import GcpError, GcpLab


class GcpComputeLab(GcpLab):
    """``GcpLab`` with firewalls and standalone, labelled VMs."""

    def _init_state(self) -> None:
        super()._init_state()
        self._firewalls: dict = {}
        self._vms: dict = {}

    # ---- seeding ---------------------------------------------------------------------------------------------
    def create_firewall(self, project, name, network, allowed, source_ranges=None, target_tags=None) -> dict:
        with self._lock:
            self._firewalls[(project, name)] = {
                "id": self._new_numeric_id(), "name": name, "network": "%s/global/networks/%s" % (self._compute(project), network),
                "direction": "INGRESS", "priority": 1000, "allowed": [dict(rule) for rule in allowed],
                "sourceRanges": list(source_ranges or []), "targetTags": list(target_tags or []), "created": self._now}
            return self._render_firewall(project, self._firewalls[(project, name)])

    def create_vm(self, project, zone, name, labels=None, finishes_after=None) -> None:
        with self._lock:
            self._vms[(project, zone, name)] = {
                "id": self._new_numeric_id(), "name": name, "labels": dict(labels or {}), "created": self._now,
                "gone_at": None if finishes_after is None else self._now + float(finishes_after)}

    def firewalls(self, project) -> list[dict]:
        with self._lock:
            return [self._render_firewall(p, rule) for (p, _n), rule in sorted(self._firewalls.items()) if p == project]

    # ---- rendering -------------------------------------------------------------------------------------------
    def _render_firewall(self, project, rule) -> dict:
        rendered = {key: value for key, value in rule.items() if key != "created"}
        rendered.update(kind="compute#firewall", creationTimestamp=self._timestamp(rule["created"]),
                        selfLink="%s/global/firewalls/%s" % (self._compute(project), rule["name"]))
        return rendered

    def _live_vms(self, project, zone=None) -> list:
        return [((p, z, n), vm) for (p, z, n), vm in sorted(self._vms.items())
                if p == project and zone in (None, z) and (vm["gone_at"] is None or self._now < vm["gone_at"])]

    def _render_vm(self, key, vm) -> dict:
        project, zone, name = key
        return {"kind": "compute#instance", "id": vm["id"], "name": name, "status": "RUNNING", "labels": vm["labels"],
                "zone": self._zone_url(project, zone), "creationTimestamp": self._timestamp(vm["created"]),
                "selfLink": "%s/instances/%s" % (self._zone_url(project, zone), name)}

    # ---- HTTP ------------------------------------------------------------------------------------------------
    def _compute_route(self, request, project, rest):
        if rest[:2] == ["global", "firewalls"]:
            return self._firewalls_route(request, project, rest[2:])
        if rest == ["aggregated", "instances"] and request.method == "GET":
            return self._aggregated_instances(project)
        if len(rest) == 4 and rest[0] == "zones" and rest[2] == "instances" and request.method == "DELETE" \
                and (project, rest[1], rest[3]) in dict(self._live_vms(project, rest[1])):
            vm = self._vms.pop((project, rest[1], rest[3]))
            return self._new_operation(project, rest[1], "delete", "%s/instances/%s" % (self._zone_url(project, rest[1]), rest[3]),
                                       vm["id"])
        if len(rest) >= 3 and rest[0] == "zones" and rest[2] == "instances" and request.method == "GET":
            zone, tail = rest[1], rest[3:]
            if tail and (project, zone, tail[0]) in dict(self._live_vms(project, zone)):
                return self._render_vm((project, zone, tail[0]), self._vms[(project, zone, tail[0])])
            if not tail:
                listed = super()._compute_route(request, project, rest)
                listed["items"] = listed.get("items", []) + [self._render_vm(k, vm) for k, vm in self._live_vms(project, zone)]
                return listed
        return super()._compute_route(request, project, rest)

    def _aggregated_instances(self, project) -> dict:
        items: dict = {}
        for (p, zone, _name), instance in sorted(self._instances.items()):
            if p == project:
                items.setdefault("zones/%s" % zone, {"instances": []})["instances"].append(self._render_instance(instance))
        for key, vm in self._live_vms(project):
            items.setdefault("zones/%s" % key[1], {"instances": []})["instances"].append(self._render_vm(key, vm))
        return {"kind": "compute#instanceAggregatedList", "items": items,
                "selfLink": "%s/aggregated/instances" % self._compute(project)}

    def _firewalls_route(self, request, project, tail):
        base = "%s/global/firewalls" % self._compute(project)
        if not tail:
            if request.method != "GET":
                raise GcpError(405, "Method not allowed", "methodNotAllowed")
            items = [self._render_firewall(p, rule) for (p, _n), rule in sorted(self._firewalls.items()) if p == project]
            return {"kind": "compute#firewallList", "items": items, "selfLink": base}
        rule = self._firewalls.get((project, tail[0]))
        if rule is None or len(tail) != 1:
            raise GcpError(404, "The resource 'projects/%s/global/firewalls/%s' was not found" % (project, tail[0]), "notFound")
        if request.method == "GET":
            return self._render_firewall(project, rule)
        if request.method == "DELETE":
            del self._firewalls[(project, tail[0])]
            return self._new_operation(project, None, "delete", "%s/%s" % (base, tail[0]), rule["id"])
        if request.method == "PATCH":
            body = self._body(request)
            unknown = set(body) - {"allowed", "sourceRanges", "targetTags", "description", "name"}
            if unknown:
                raise GcpError(400, "Invalid value for field(s) %s: the lab patches only allowed, sourceRanges, targetTags, "
                                    "description" % sorted(unknown), "invalid")
            if not body.get("allowed", rule["allowed"]):
                raise GcpError(400, "Invalid value for field 'resource.allowed': a rule must allow something", "invalid")
            for key in ("allowed", "sourceRanges", "targetTags", "description"):
                if key in body:
                    rule[key] = body[key]
            return self._new_operation(project, None, "patch", "%s/%s" % (base, tail[0]), rule["id"])
        raise GcpError(405, "Method not allowed", "methodNotAllowed")
