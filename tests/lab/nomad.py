"""A stand-in for the Nomad HTTP API (a server with clients), with the semantics a client roll depends on.

Served (paths and shapes as in Nomad 1.7's HTTP API; python-nomad 2.1 works against it):
``/v1/status/leader``, ``/v1/status/peers``, ``/v1/agent/self``, ``/v1/agent/health``, ``/v1/regions``,
``/v1/nodes`` (``prefix``, ``resources``, ``os``), ``/v1/node/<id>``, ``/v1/node/<id>/allocations``,
``POST /v1/node/<id>/drain`` (``DrainSpec{Deadline ns, IgnoreSystemJobs}``, ``MarkEligible``, ``Meta``;
a null DrainSpec cancels), ``POST /v1/node/<id>/eligibility``, ``POST /v1/node/<id>/purge``,
``POST /v1/node/<id>/evaluate``, ``/v1/allocations``, ``/v1/allocation/<id>`` (and ``/stop``),
``/v1/jobs`` (GET, POST register), ``/v1/job/<id>`` (GET, DELETE), ``/v1/job/<id>/allocations`` and
``/summary``. ``X-Nomad-Token`` (or ``Authorization: Bearer``) is required when the lab sets a token
(403 otherwise); ``?region=`` other than the lab's region answers 500 "No path to region", as Nomad does.
Blocking queries (``?index=&wait=``) wait for the index to move, capped at a few wall seconds.
With ``tls=make_tls_material(dir)`` it serves HTTPS, and with ``mtls=True`` requires a client certificate
signed by that CA, as Nomad with ``tls { http = true, verify_https_client = true }`` does.

Semantics (all times are lab seconds from the shared ``LabClock``; state advances lazily, event by event
in lab-time order, whenever anyone looks, so results do not depend on when a test polls):
- a node registers (``register_node``, optionally at a future lab time), is ``initializing`` for
  ``init_delay`` then ``ready``; ``mark_down`` (instance gone) loses its running allocations: **killed**;
- the scheduler places pending allocations FIFO, bin-packing, on ``ready``, ``eligible``, non-draining
  nodes with a free slot (each node has ``slots``); system jobs get one allocation per such node and use
  no slot;
- a batch allocation runs for its job's duration then completes; a service allocation runs until stopped;
- a drain makes the node ineligible; batch allocations finish on their own or are stopped at the deadline
  (**killed**); service allocations are migrated at once (stopped and re-queued, counted as ``migrated``);
  system allocations are stopped last unless ``IgnoreSystemJobs``. When the work is done (or the deadline
  hits) the drain strategy clears, ``LastDrain.Status`` is ``complete`` and the node stays ineligible.
  Deadline ``< 0`` forces at once; ``0`` means no deadline (Nomad's ``DrainStrategy.DeadlineTime``);
- stopping an allocation or deregistering a job while it runs counts it as killed too.
Node lists carry ``Attributes`` only with ``?os=true`` and then only ``os.name``/``os.version``, as in
Nomad: read ``/v1/node/<id>`` for ``unique.platform.aws.instance-id`` or ``unique.hostname``.

``reset()`` forgets every node, job and count; ``capacity_timeline()``/``capacity_floor()`` give the
ready / ready-and-eligible / ready-and-not-draining node counts over lab time (for "never below N" checks).

Not modelled: evaluations and deployments (IDs only), constraints, resources beyond slots, preemption,
rescheduling of killed/lost batch allocations (a killed CI job is a failed build), heartbeats (the world
calls ``mark_down``), namespaces other than ``default``, ``filter=`` expressions (answered 400 so a
caller does not silently get an unfiltered list), ACL policies (one management token).
"""
from __future__ import annotations

import random
import re
import threading
import time
import uuid
import zlib
from datetime import datetime, timezone

from .standin_http import HttpStandIn, Request, Response

NS = 1_000_000_000
NOMAD_VERSION = "1.7.7"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class NomadError(Exception):
    """An API error: Nomad answers these with a status and a plain-text body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Job:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    def __init__(self, job_id, job_type, duration, count, submit_time, index, meta=None, priority=50):
        self.id = job_id
        self.type = job_type
        self.duration = duration
        self.count = count
        self.submit_time = submit_time
        self.create_index = self.modify_index = index
        self.meta = dict(meta or {})
        self.priority = priority
        self.stopped = False
        self.allocs: list = []


class _Alloc:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    def __init__(self, alloc_id, eval_id, job, index, created, raft_index):
        self.id = alloc_id
        self.eval_id = eval_id
        self.job = job
        self.index = index
        self.create_time = created
        self.modify_time = created
        self.node_id = None
        self.start_time = None
        self.end_time = None  # planned completion (None: runs until stopped)
        self.finish_time = None
        self.client_status = "pending"
        self.desired_status = "run"
        self.desired_description = ""
        self.client_description = ""
        self.migrate = None
        self.kill_reason = None
        self.create_index = self.modify_index = raft_index


class _Node:  # pylint: disable=too-few-public-methods,too-many-instance-attributes
    def __init__(self, node_id, name, attributes, node_class, datacenter, slots, meta, join_at, ready_at, index):
        self.id = node_id
        self.secret_id = ""
        self.name = name
        self.attributes = attributes
        self.node_class = node_class
        self.datacenter = datacenter
        self.slots = slots
        self.meta = meta
        self.join_at = join_at
        self.ready_at = ready_at
        self.hidden = True
        self.status = "initializing"
        self.status_updated_at = join_at
        self.eligibility = "eligible"
        self.drain = None  # {"Deadline": ns, "IgnoreSystemJobs": bool, "ForceDeadline": lab t or None, "StartedAt": lab t}
        self.last_drain = None
        self.events: list = []
        self.create_index = self.modify_index = index
        self.completed = 0
        self.killed = 0


def parse_duration(value) -> float:
    """Nomad's ``wait`` query values ("5s", "1m", "300ms") in seconds."""
    match = _DURATION.match(str(value).strip())
    if not match:
        raise NomadError(400, "Invalid wait time: %s" % value)
    return float(match.group(1)) * _UNITS[match.group(2)]


class NomadLab(HttpStandIn):  # pylint: disable=too-many-public-methods,too-many-instance-attributes
    """The Nomad stand-in: an HTTP server plus a Python API for the lab (``register_node``, ``submit_job``...)."""

    SERVICE = "nomad"

    def __init__(self, clock, request_log=None, faults=None, token=None, region="global", datacenter="default",
                 init_delay=0.0, seed=0, blocking_wall_cap=2.0, tls=None, mtls=False):
        super().__init__(clock, request_log, faults, tls=tls, mtls=mtls)
        self.token = token
        self.region = region
        self.datacenter = datacenter
        self.init_delay = float(init_delay)
        self.blocking_wall_cap = blocking_wall_cap
        # Timestamps are lab times placed on the wall clock: lab time 0 is the wall time the lab started.
        self.epoch = time.time() - clock.now()
        self._seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forgets every node, job and allocation and every count (the server keeps serving)."""
        with self._lock:
            self._init_state()

    def _init_state(self) -> None:
        self._rng = random.Random(self._seed)
        self._now = self.clock.now()
        self._index = 1
        self._nodes: dict[str, _Node] = {}
        self._jobs: dict[str, _Job] = {}
        self._allocs: dict[str, _Alloc] = {}
        self._pending: list[_Alloc] = []
        self._running: dict[str, _Alloc] = {}
        self._counts = {"completed": 0, "killed": 0, "migrated": 0, "system_stopped": 0}
        self._killed_by_reason: dict[str, int] = {}
        self._capacity: list[tuple] = []
        self._system_jobs: list[_Job] = []
        self._nodes_changed = True

    # ================================================================ Python API for the lab and tests
    def register_node(self, name, attributes=None, node_class="", datacenter=None, slots=4, meta=None, at=None) -> str:
        """A client joins at lab time ``at`` (default now), is ``initializing`` for ``init_delay``, then ``ready``."""
        with self._lock:
            self._advance()
            join_at = max(self._now, float(at)) if at is not None else self._now
            node_id = self._new_id()
            attrs = {
                "unique.hostname": name, "os.name": "ubuntu", "os.version": "22.04", "kernel.name": "linux",
                "cpu.arch": "amd64", "nomad.version": NOMAD_VERSION, "driver.docker": "1",
                "unique.network.ip-address": "10.0.%d.%d" % (self._rng.randint(0, 255), self._rng.randint(2, 254)),
            }
            attrs.update({key: str(value) for key, value in (attributes or {}).items()})
            node = _Node(node_id, name, attrs, node_class, datacenter or self.datacenter, int(slots), dict(meta or {}),
                         join_at, join_at + self.init_delay, self._bump())
            self._nodes[node_id] = node
            self._settle()
            return node_id

    def mark_down(self, node_id, at=None, reason="instance terminated") -> None:
        """The node's instance is gone: the node goes ``down`` and its running allocations are lost (killed).

        A node that had not joined yet (terminated while booting) simply never appears."""
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None:
                return
            self._advance(at)
            if node.hidden:
                del self._nodes[node_id]
                self._nodes_changed = True
                return
            if node.status == "down":
                return
            self._set_status(node, "down", reason)
            for alloc in self._node_allocs(node_id, running_only=True):
                self._stop_alloc(alloc, "lost", "node_down", "alloc was lost because its node is down")
            if node.drain is not None:
                self._finish_drain(node, "complete")
            self._settle()

    def submit_job(self, job_id, duration=None, count=1, type="batch", at=None, meta=None, priority=50) -> str:  # pylint: disable=redefined-builtin
        """Registers a job: ``count`` allocations each running ``duration`` lab seconds (None: until stopped)."""
        if type not in ("batch", "service", "system", "sysbatch"):
            raise ValueError("unknown job type %r" % type)
        with self._lock:
            self._advance(at)
            if type == "batch" and duration is None:
                duration = 60.0
            return self._register(job_id, type, duration, count, meta, priority)

    def stats(self) -> dict:
        """Allocation counts now: running, pending, completed, killed (stopped early or lost), per node."""
        with self._lock:
            self._advance()
            per_node = {}
            running_by_node: dict[str, int] = {}
            for alloc in self._running.values():
                if alloc.job.type not in ("system",):
                    running_by_node[alloc.node_id] = running_by_node.get(alloc.node_id, 0) + 1
            for node in self._nodes.values():
                if node.hidden:
                    continue
                per_node[node.id] = {
                    "name": node.name, "status": node.status, "eligibility": node.eligibility,
                    "drain": node.drain is not None, "slots": node.slots, "running": running_by_node.get(node.id, 0),
                    "completed": node.completed, "killed": node.killed,
                }
            return {
                "now": round(self._now, 3),
                "running": sum(running_by_node.values()),
                "system_running": sum(1 for a in self._running.values() if a.job.type == "system"),
                "pending": len(self._pending),
                "completed": self._counts["completed"],
                "killed": self._counts["killed"],
                "killed_by_reason": dict(self._killed_by_reason),
                "migrated": self._counts["migrated"],
                "jobs": len(self._jobs),
                "per_node": per_node,
            }

    def nodes(self) -> list[dict]:
        """Every registered node: id, name, status, eligibility, drain, attributes, running allocations."""
        with self._lock:
            self._advance()
            return [{"id": n.id, "name": n.name, "status": n.status, "eligibility": n.eligibility,
                     "drain": n.drain is not None, "attributes": dict(n.attributes), "node_class": n.node_class,
                     "running": len(self._node_allocs(n.id, running_only=True)), "joined_at": n.join_at}
                    for n in self._nodes.values() if not n.hidden]

    def node_by_name(self, name) -> dict | None:
        for node in self.nodes():
            if node["name"] == name and node["status"] != "down":
                return node
        return None

    def capacity_timeline(self) -> list[dict]:
        """Every change of capacity: lab time, nodes ``ready``, ``ready`` and eligible, ``ready`` and not draining."""
        with self._lock:
            self._advance()
            return [{"t": t, "ready": r, "ready_eligible": e, "ready_not_draining": d} for t, r, e, d in self._capacity]

    def capacity_floor(self, kind="ready_eligible", since=None, until=None) -> int | None:
        """The lowest ``kind`` count between lab times ``since`` and ``until`` (the value in force at ``since`` counts)."""
        timeline = self.capacity_timeline()
        floor = None
        for position, entry in enumerate(timeline):
            following = timeline[position + 1]["t"] if position + 1 < len(timeline) else float("inf")
            if since is not None and following <= since:
                continue
            if until is not None and entry["t"] > until:
                break
            floor = entry[kind] if floor is None else min(floor, entry[kind])
        return floor

    def now(self) -> float:
        with self._lock:
            self._advance()
            return self._now

    # ================================================================ simulation
    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _bump(self) -> int:
        self._index += 1
        return self._index

    def _advance(self, until=None) -> None:
        """Processes every event due up to ``until`` (default: now), in lab-time order."""
        target = self.clock.now() if until is None else min(float(until), self.clock.now())
        while True:
            due = self._next_event()
            if due is None or due > target:
                break
            self._now = max(self._now, due)
            self._settle()
        self._now = max(self._now, target)

    def _next_event(self):
        times = [alloc.end_time for alloc in self._running.values() if alloc.end_time is not None]
        for node in self._nodes.values():
            if node.hidden:
                times.append(node.join_at)
            elif node.status == "initializing":
                times.append(node.ready_at)
            if node.drain is not None and node.drain["ForceDeadline"] is not None:
                times.append(node.drain["ForceDeadline"])
        return min(times) if times else None

    def _settle(self) -> None:
        """Applies everything due at ``self._now``: completions, joins, deadlines, finished drains, placements."""
        now = self._now
        for alloc in [a for a in self._running.values() if a.end_time is not None and a.end_time <= now]:
            self._complete_alloc(alloc)
        for node in self._nodes.values():
            if node.hidden and node.join_at <= now:
                node.hidden = False
                node.create_index = node.modify_index = self._bump()
                self._event(node, "Cluster", "Node registered")
            if not node.hidden and node.status == "initializing" and node.ready_at <= now:
                self._set_status(node, "ready", "")
        for node in self._nodes.values():
            if node.drain is not None and node.drain["ForceDeadline"] is not None and node.drain["ForceDeadline"] <= now:
                for alloc in self._node_allocs(node.id, running_only=True):
                    if alloc.job.type != "system" or not node.drain["IgnoreSystemJobs"]:
                        self._stop_alloc(alloc, "complete", "drain_deadline", "alloc is being migrated")
                self._finish_drain(node, "complete")
        for node in self._nodes.values():
            if node.drain is not None:
                self._check_drain(node)
        self._schedule()
        self._note_capacity()

    def _check_drain(self, node) -> None:
        running = self._node_allocs(node.id, running_only=True)
        if any(a.job.type != "system" for a in running):
            return
        if not node.drain["IgnoreSystemJobs"]:
            for alloc in running:
                self._stop_alloc(alloc, "complete", None, "alloc is being migrated")
        self._finish_drain(node, "complete")

    def _finish_drain(self, node, status) -> None:
        node.drain = None
        if node.last_drain is not None:
            node.last_drain["Status"] = status
            node.last_drain["UpdatedAt"] = self._now
        node.modify_index = self._bump()
        self._event(node, "Drain", "Node drain complete" if status == "complete" else "Node drain strategy cleared")

    def _schedulable(self, node) -> bool:
        return (not node.hidden and node.status == "ready" and node.eligibility == "eligible" and node.drain is None)

    def _schedule(self) -> None:
        if not self._pending and not self._system_jobs:
            return
        used: dict[str, int] = {}
        for alloc in self._running.values():
            if alloc.job.type != "system":
                used[alloc.node_id] = used.get(alloc.node_id, 0) + 1
        candidates = sorted((n for n in self._nodes.values() if self._schedulable(n)), key=lambda n: n.create_index)
        still_pending = []
        for alloc in self._pending:
            free = [n for n in candidates if used.get(n.id, 0) < n.slots]
            if not free:
                still_pending.append(alloc)
                continue
            # Bin-packing, Nomad's default: the fullest node that still has room.
            node = max(free, key=lambda n: (used.get(n.id, 0), -n.create_index))
            used[node.id] = used.get(node.id, 0) + 1
            self._start_alloc(alloc, node)
        self._pending = still_pending
        for job in self._system_jobs:
            if job.stopped:
                continue
            placed = {a.node_id for a in job.allocs if a.client_status == "running"}
            for node in candidates:
                if node.id not in placed:
                    self._start_alloc(self._new_alloc(job, 0), node)

    def _new_alloc(self, job, index) -> _Alloc:
        alloc = _Alloc(self._new_id(), self._new_id(), job, index, self._now, self._bump())
        self._allocs[alloc.id] = alloc
        job.allocs.append(alloc)
        return alloc

    def _start_alloc(self, alloc, node) -> None:
        alloc.node_id = node.id
        alloc.start_time = self._now
        alloc.end_time = None if alloc.job.duration is None else self._now + float(alloc.job.duration)
        alloc.client_status = "running"
        alloc.modify_time = self._now
        alloc.modify_index = self._bump()
        self._running[alloc.id] = alloc

    def _complete_alloc(self, alloc) -> None:
        self._running.pop(alloc.id, None)
        alloc.client_status = "complete"
        alloc.finish_time = alloc.end_time
        alloc.modify_time = alloc.end_time
        alloc.modify_index = self._bump()
        self._counts["completed"] += 1
        node = self._nodes.get(alloc.node_id)
        if node is not None:
            node.completed += 1

    def _stop_alloc(self, alloc, client_status, kill_reason, description) -> None:
        """Stops a running (or pending) allocation before it finished; ``kill_reason`` None means not a kill."""
        was_running = self._running.pop(alloc.id, None) is not None
        if alloc in self._pending:
            self._pending.remove(alloc)
        alloc.desired_status = "stop"
        alloc.desired_description = description
        alloc.client_status = client_status if was_running else "complete"
        alloc.finish_time = alloc.modify_time = self._now
        alloc.modify_index = self._bump()
        if not was_running:
            return
        if alloc.job.type == "system":
            self._counts["system_stopped"] += 1
            return
        if kill_reason is None:
            return
        alloc.kill_reason = kill_reason
        alloc.client_description = "lab: stopped before completion (%s)" % kill_reason
        self._counts["killed"] += 1
        self._killed_by_reason[kill_reason] = self._killed_by_reason.get(kill_reason, 0) + 1
        node = self._nodes.get(alloc.node_id)
        if node is not None:
            node.killed += 1

    def _node_allocs(self, node_id, running_only=False) -> list:
        if running_only:
            return [a for a in self._running.values() if a.node_id == node_id]
        return [a for a in self._allocs.values() if a.node_id == node_id]

    def _set_status(self, node, status, description) -> None:
        node.status = status
        node.status_updated_at = self._now
        node.modify_index = self._bump()
        self._event(node, "Cluster", "Node %s%s" % (status, (": " + description) if description else ""))

    def _event(self, node, subsystem, message) -> None:
        self._nodes_changed = True
        node.events.append({"Message": message, "Subsystem": subsystem, "Details": None,
                            "Timestamp": self._rfc3339(self._now), "CreateIndex": self._index})
        del node.events[:-10]

    def _note_capacity(self) -> None:
        if not self._nodes_changed:
            return
        self._nodes_changed = False
        visible = [n for n in self._nodes.values() if not n.hidden and n.status == "ready"]
        entry = (len(visible), sum(1 for n in visible if n.eligibility == "eligible"),
                 sum(1 for n in visible if n.drain is None))
        if not self._capacity or self._capacity[-1][1:] != entry:
            self._capacity.append((round(self._now, 3),) + entry)

    def _register(self, job_id, job_type, duration, count, meta, priority) -> str:
        if job_id in self._jobs and not self._jobs[job_id].stopped:
            raise NomadError(400, "lab: job %s is already registered (updates are not modelled)" % job_id)
        job = _Job(job_id, job_type, duration, int(count), self._now, self._bump(), meta, priority)
        self._jobs[job_id] = job
        if job_type == "system":
            self._system_jobs = [j for j in self._system_jobs if j.id != job_id] + [job]
        else:
            self._pending.extend(self._new_alloc(job, position) for position in range(job.count))
        self._settle()
        return self._new_id()

    # ================================================================ rendering
    def _rfc3339(self, lab_time) -> str:
        if lab_time is None:
            return "0001-01-01T00:00:00Z"
        return datetime.fromtimestamp(self.epoch + lab_time, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _nanos(self, lab_time) -> int:
        return 0 if lab_time is None else int((self.epoch + lab_time) * NS)

    def _drain_strategy(self, node):
        if node.drain is None:
            return None
        return {"Deadline": node.drain["Deadline"], "IgnoreSystemJobs": node.drain["IgnoreSystemJobs"],
                "ForceDeadline": self._rfc3339(node.drain["ForceDeadline"]), "StartedAt": self._rfc3339(node.drain["StartedAt"])}

    def _last_drain(self, node):
        if node.last_drain is None:
            return None
        drain = dict(node.last_drain)
        drain["StartedAt"] = self._rfc3339(drain["StartedAt"])
        drain["UpdatedAt"] = self._rfc3339(drain["UpdatedAt"])
        return drain

    @staticmethod
    def _resources(node):
        return ({"Cpu": {"CpuShares": 8000 * node.slots}, "Memory": {"MemoryMB": 8192 * node.slots},
                 "Disk": {"DiskMB": 100000}, "Networks": None},
                {"Cpu": {"CpuShares": 0}, "Memory": {"MemoryMB": 0}, "Disk": {"DiskMB": 0}, "Networks": {"ReservedHostPorts": ""}})

    def _drivers(self, node):
        return {"docker": {"Attributes": {"driver.docker": "true"}, "Detected": True, "Healthy": True,
                           "HealthDescription": "Healthy", "UpdateTime": self._rfc3339(node.join_at)}}

    def _node_stub(self, node, resources=False, os_attrs=False) -> dict:
        stub = {
            "Address": node.attributes.get("unique.network.ip-address", ""), "ID": node.id, "Datacenter": node.datacenter,
            "Name": node.name, "NodeClass": node.node_class, "NodePool": "default", "Version": NOMAD_VERSION,
            "Drain": node.drain is not None, "SchedulingEligibility": node.eligibility, "Status": node.status,
            "StatusDescription": "", "Drivers": self._drivers(node), "HostVolumes": None,
            "LastDrain": self._last_drain(node), "CreateIndex": node.create_index, "ModifyIndex": node.modify_index,
        }
        if os_attrs:
            stub["Attributes"] = {key: node.attributes.get(key, "") for key in ("os.name", "os.version")}
        if resources:
            stub["NodeResources"], stub["ReservedResources"] = self._resources(node)
        return stub

    def _node_full(self, node) -> dict:
        node_resources, reserved = self._resources(node)
        return {
            "ID": node.id, "SecretID": "", "Datacenter": node.datacenter, "Name": node.name,
            "HTTPAddr": "%s:4646" % node.attributes.get("unique.network.ip-address", ""), "TLSEnabled": True,
            "Attributes": dict(node.attributes), "NodeResources": node_resources, "ReservedResources": reserved,
            "Links": {}, "Meta": dict(node.meta), "NodeClass": node.node_class, "NodePool": "default",
            "ComputedClass": "v1:%d" % zlib.crc32(node.node_class.encode()), "Drain": node.drain is not None,
            "DrainStrategy": self._drain_strategy(node), "SchedulingEligibility": node.eligibility,
            "Status": node.status, "StatusDescription": "", "StatusUpdatedAt": int(self.epoch + node.status_updated_at),
            "Events": list(node.events), "Drivers": self._drivers(node), "HostVolumes": None,
            "LastDrain": self._last_drain(node), "CreateIndex": node.create_index, "ModifyIndex": node.modify_index,
        }

    def _job_summary(self, job) -> dict:
        counts = {"Queued": 0, "Complete": 0, "Failed": 0, "Running": 0, "Starting": 0, "Lost": 0, "Unknown": 0}
        for alloc in job.allocs:
            if alloc.client_status == "pending":
                counts["Queued"] += 1
            elif alloc.client_status == "running":
                counts["Running"] += 1
            elif alloc.client_status == "lost":
                counts["Lost"] += 1
            else:
                counts["Complete"] += 1
        return {"JobID": job.id, "Namespace": "default", "Summary": {job.id: counts},
                "Children": {"Pending": 0, "Running": 0, "Dead": 0}, "CreateIndex": job.create_index, "ModifyIndex": self._index}

    def _job_status(self, job) -> str:
        allocs = job.allocs
        if job.stopped or (allocs and all(a.client_status not in ("pending", "running") for a in allocs)):
            return "dead"
        if any(a.client_status == "running" for a in allocs) or job.type == "system":
            return "running"
        return "pending"

    def _job_stub(self, job) -> dict:
        return {"ID": job.id, "ParentID": "", "Name": job.id, "Namespace": "default", "Datacenters": ["*"],
                "NodePool": "default", "Type": job.type, "Priority": job.priority, "Periodic": False,
                "ParameterizedJob": False, "Stop": job.stopped, "Status": self._job_status(job), "StatusDescription": "",
                "JobSummary": self._job_summary(job), "CreateIndex": job.create_index, "ModifyIndex": job.modify_index,
                "JobModifyIndex": job.modify_index, "SubmitTime": self._nanos(job.submit_time), "Meta": dict(job.meta)}

    def _job_full(self, job) -> dict:
        group_meta = {"lab_duration": str(job.duration)} if job.duration is not None else {}
        return {"ID": job.id, "Name": job.id, "Namespace": "default", "Region": self.region, "Type": job.type,
                "Priority": job.priority, "Datacenters": ["*"], "NodePool": "default", "Stop": job.stopped,
                "Status": self._job_status(job), "StatusDescription": "", "Meta": dict(job.meta),
                "TaskGroups": [{"Name": job.id, "Count": job.count, "Meta": group_meta,
                                "Tasks": [{"Name": "build", "Driver": "docker", "Config": {"image": "circleci/picard"}}]}],
                "SubmitTime": self._nanos(job.submit_time), "CreateIndex": job.create_index,
                "ModifyIndex": job.modify_index, "JobModifyIndex": job.modify_index, "Version": 0, "Stable": False}

    def _task_states(self, alloc) -> dict:
        if alloc.start_time is None:
            return None
        events = [{"Type": "Received", "Time": self._nanos(alloc.create_time), "DisplayMessage": "Task received by client"},
                  {"Type": "Started", "Time": self._nanos(alloc.start_time), "DisplayMessage": "Task started by client"}]
        if alloc.kill_reason is not None:
            events.append({"Type": "Killed", "Time": self._nanos(alloc.finish_time), "DisplayMessage": "Task successfully killed"})
        elif alloc.client_status == "complete" and alloc.finish_time is not None:
            events.append({"Type": "Terminated", "Time": self._nanos(alloc.finish_time), "DisplayMessage": "Exit Code: 0"})
        running = alloc.client_status == "running"
        return {"build": {"State": "running" if running else "dead", "Failed": alloc.kill_reason is not None,
                          "Restarts": 0, "StartedAt": self._rfc3339(alloc.start_time),
                          "FinishedAt": self._rfc3339(None if running else alloc.finish_time), "Events": events}}

    def _alloc_stub(self, alloc) -> dict:
        node = self._nodes.get(alloc.node_id)
        return {"ID": alloc.id, "EvalID": alloc.eval_id, "Name": "%s.%s[%d]" % (alloc.job.id, alloc.job.id, alloc.index),
                "Namespace": "default", "NodeID": alloc.node_id or "", "NodeName": node.name if node else "",
                "JobID": alloc.job.id, "JobType": alloc.job.type, "JobVersion": 0, "TaskGroup": alloc.job.id,
                "DesiredStatus": alloc.desired_status, "DesiredDescription": alloc.desired_description,
                "DesiredTransition": {"Migrate": alloc.migrate}, "ClientStatus": alloc.client_status,
                "ClientDescription": alloc.client_description, "TaskStates": self._task_states(alloc),
                "FollowupEvalID": "", "CreateIndex": alloc.create_index, "ModifyIndex": alloc.modify_index,
                "AllocModifyIndex": alloc.modify_index, "CreateTime": self._nanos(alloc.create_time),
                "ModifyTime": self._nanos(alloc.modify_time)}

    def _alloc_full(self, alloc) -> dict:
        full = self._alloc_stub(alloc)
        full["Job"] = self._job_full(alloc.job)
        return full

    # ================================================================ HTTP
    def fault_response(self, fault, request):
        return Response(fault.status, fault.message, self._headers(), text=True)

    def _headers(self) -> dict:
        return {"X-Nomad-Index": self._index, "X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": 0}

    def handle(self, request: Request) -> Response:
        try:
            self._authorize(request)
            region = request.query.get("region")
            if region and region != self.region:
                raise NomadError(500, "No path to region")
            if "filter" in request.query:
                raise NomadError(400, "lab: filter expressions are not supported by the Nomad stand-in")
            self._block(request)
            with self._lock:
                self._advance()
                status, payload = self._route(request)
                return Response(status, payload, self._headers())
        except NomadError as exc:
            return Response(exc.status, exc.message, self._headers(), text=True)

    def _authorize(self, request) -> None:
        if not self.token or request.path.startswith("/v1/status/"):
            return
        presented = request.headers.get("X-Nomad-Token")
        bearer = request.headers.get("Authorization", "")
        if not presented and bearer.lower().startswith("bearer "):
            presented = bearer[7:].strip()
        if not presented:
            raise NomadError(403, "Permission denied")
        if presented != self.token:
            raise NomadError(403, "ACL token not found")

    def _block(self, request) -> None:
        """Blocking query: wait (lab time, capped in wall time) until the index moves past ``?index=``."""
        if request.method != "GET" or "index" not in request.query:
            return
        try:
            wanted = int(request.query["index"])
        except ValueError as exc:
            raise NomadError(400, "Invalid index") from exc
        wait = parse_duration(request.query.get("wait", "300s"))
        deadline_lab = self.clock.now() + wait
        deadline_wall = time.monotonic() + self.blocking_wall_cap
        while self.clock.now() < deadline_lab and time.monotonic() < deadline_wall:
            with self._lock:
                self._advance()
                if self._index > wanted:
                    return
            time.sleep(0.01)

    def _route(self, request):  # pylint: disable=too-many-return-statements,too-many-branches
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if len(parts) < 2 or parts[0] != "v1":
            raise NomadError(404, "Invalid URL path")
        head, rest = parts[1], parts[2:]
        if head == "status" and rest == ["leader"]:
            return 200, "127.0.0.1:4647"
        if head == "status" and rest == ["peers"]:
            return 200, ["127.0.0.1:4647"]
        if head == "regions" and not rest:
            return 200, [self.region]
        if head == "agent" and rest == ["self"]:
            return 200, self._agent_self()
        if head == "agent" and rest == ["health"]:
            return 200, {"server": {"ok": True, "message": "ok"}}
        if head == "nodes" and not rest:
            return self._get_only(method, lambda: [
                self._node_stub(n, request.flag("resources") if "resources" in request.query else False,
                                request.flag("os") if "os" in request.query else False)
                for n in sorted(self._nodes.values(), key=lambda n: n.id)
                if not n.hidden and n.id.startswith(request.query.get("prefix", ""))])
        if head == "node" and rest:
            return self._node_route(method, self._node(rest[0]), rest[1:], request)
        if head == "allocations" and not rest:
            return self._get_only(method, lambda: [
                self._alloc_stub(a) for a in sorted(self._allocs.values(), key=lambda a: a.create_index)
                if a.id.startswith(request.query.get("prefix", ""))])
        if head == "allocation" and rest:
            return self._alloc_route(method, rest, request)
        if head == "jobs" and not rest:
            if method == "POST":
                return 200, self._register_from_http(request)
            return self._get_only(method, lambda: [
                self._job_stub(j) for j in sorted(self._jobs.values(), key=lambda j: j.id)
                if j.id.startswith(request.query.get("prefix", ""))])
        if head == "job" and rest:
            return self._job_route(method, rest, request)
        raise NomadError(404, "Invalid URL path")

    @staticmethod
    def _get_only(method, producer):
        if method != "GET":
            raise NomadError(405, "Invalid method")
        return 200, producer()

    def _node(self, node_id) -> _Node:
        node = self._nodes.get(node_id)
        if node is None or node.hidden:
            raise NomadError(404, "node not found")
        return node

    def _node_route(self, method, node, rest, request):  # pylint: disable=too-many-return-statements
        if not rest:
            return self._get_only(method, lambda: self._node_full(node))
        action = rest[0]
        if action == "allocations":
            return self._get_only(method, lambda: [self._alloc_full(a) for a in sorted(
                self._node_allocs(node.id), key=lambda a: a.create_index)])
        if method not in ("POST", "PUT"):
            raise NomadError(405, "Invalid method")
        if action == "drain":
            return 200, self._drain_from_http(node, request)
        if action == "eligibility":
            return 200, self._eligibility_from_http(node, request)
        if action == "purge":
            for alloc in self._node_allocs(node.id, running_only=True):
                self._stop_alloc(alloc, "lost", "node_purged", "alloc was lost because its node was purged")
            del self._nodes[node.id]
            self._nodes_changed = True
            self._settle()
            return 200, self._update_response(node_index=self._bump(), evals=True)
        if action == "evaluate":
            return 200, self._update_response(node_index=0, evals=True)
        raise NomadError(404, "Invalid URL path")

    def _update_response(self, node_index, evals=False) -> dict:
        return {"EvalCreateIndex": self._index if evals else 0, "EvalIDs": [self._new_id()] if evals else None,
                "Index": self._index, "NodeModifyIndex": node_index, "LastIndex": self._index, "RequestTime": 0}

    @staticmethod
    def _decode(request) -> dict:
        try:
            body = request.json()
        except ValueError as exc:
            raise NomadError(400, "Request decoding failed: %s" % exc) from exc
        if body is None:
            raise NomadError(400, "Request decoding failed: EOF")
        if not isinstance(body, dict):
            raise NomadError(400, "Request decoding failed: expected a JSON object")
        return body

    def _drain_from_http(self, node, request) -> dict:
        body = self._decode(request)
        spec = body.get("DrainSpec")
        meta = body.get("Meta")
        if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
            raise NomadError(400, "Request decoding failed: Meta must be a map of strings")
        if spec is None:
            if node.drain is not None:
                self._finish_drain(node, "canceled")
            if body.get("MarkEligible"):
                node.eligibility = "eligible"
            node.modify_index = self._bump()
            self._settle()
            return self._update_response(node.modify_index)
        if not isinstance(spec, dict):
            raise NomadError(400, "Request decoding failed: DrainSpec must be an object")
        deadline = spec.get("Deadline", 0)
        if isinstance(deadline, bool) or not isinstance(deadline, int):
            raise NomadError(400, "Request decoding failed: json: cannot unmarshal %s into Go struct field "
                                  "DrainSpec.DrainSpec.Deadline of type time.Duration" % type(deadline).__name__)
        ignore_system = bool(spec.get("IgnoreSystemJobs", False))
        started = node.drain["StartedAt"] if node.drain is not None else self._now
        if deadline < 0:
            force_at = self._now
        elif deadline == 0:
            force_at = None
        else:
            force_at = self._now + deadline / NS
        node.drain = {"Deadline": deadline, "IgnoreSystemJobs": ignore_system, "ForceDeadline": force_at, "StartedAt": started}
        node.eligibility = "ineligible"
        accessor = "00000000-0000-0000-0000-000000000000" if self.token else ""
        node.last_drain = {"Status": "draining", "StartedAt": started, "UpdatedAt": self._now, "AccessorID": accessor,
                           "Meta": dict(meta or {})}
        node.modify_index = self._bump()
        self._event(node, "Drain", "Node drain strategy set")
        # Service allocations migrate at once; batch ones run to completion or to the deadline.
        for alloc in self._node_allocs(node.id, running_only=True):
            if alloc.job.type == "service":
                self._stop_alloc(alloc, "complete", None, "alloc is being migrated")
                self._counts["migrated"] += 1
                self._pending.append(self._new_alloc(alloc.job, alloc.index))
        self._settle()
        return self._update_response(node.modify_index)

    def _eligibility_from_http(self, node, request) -> dict:
        body = self._decode(request)
        wanted = body.get("Eligibility")
        if wanted not in ("eligible", "ineligible"):
            raise NomadError(400, "invalid scheduling eligibility %r" % wanted)
        if wanted == "eligible" and node.drain is not None:
            # Nomad's RPC error, which its HTTP layer answers with a 500.
            raise NomadError(500, "can not set node's scheduling eligibility to eligible while it is draining")
        if node.eligibility != wanted:
            node.eligibility = wanted
            node.modify_index = self._bump()
            self._event(node, "Cluster", "Node marked as %s for scheduling" % wanted)
            self._settle()
        return self._update_response(node.modify_index)

    def _alloc_route(self, method, rest, request):  # pylint: disable=unused-argument
        alloc = self._allocs.get(rest[0])
        if alloc is None:
            raise NomadError(404, "alloc not found")
        if len(rest) == 1:
            return self._get_only(method, lambda: self._alloc_full(alloc))
        if rest[1:] == ["stop"] and method in ("POST", "PUT"):
            self._stop_alloc(alloc, "complete", "stopped", "alloc was stopped by the API")
            self._settle()
            return 200, {"EvalID": self._new_id(), "Index": self._index}
        raise NomadError(404, "Invalid URL path")

    def _job_route(self, method, rest, request):  # pylint: disable=unused-argument
        job = self._jobs.get(rest[0])
        if job is None:
            raise NomadError(404, "job not found")
        tail = rest[1:]
        if not tail and method == "DELETE":
            job.stopped = True
            job.modify_index = self._bump()
            for alloc in [a for a in job.allocs if a.client_status in ("pending", "running")]:
                self._stop_alloc(alloc, "complete", "stopped", "alloc not needed due to job update")
            self._settle()
            return 200, {"EvalID": self._new_id(), "EvalCreateIndex": self._index, "JobModifyIndex": job.modify_index,
                         "Index": self._index}
        if not tail:
            return self._get_only(method, lambda: self._job_full(job))
        if tail == ["allocations"]:
            return self._get_only(method, lambda: [self._alloc_stub(a) for a in job.allocs])
        if tail == ["summary"]:
            return self._get_only(method, lambda: self._job_summary(job))
        raise NomadError(404, "Invalid URL path")

    def _register_from_http(self, request) -> dict:
        body = self._decode(request)
        job = body.get("Job")
        if not isinstance(job, dict) or not job.get("ID"):
            raise NomadError(400, "Job ID does not match name" if isinstance(job, dict) else "Job must be specified")
        groups = job.get("TaskGroups") or [{}]
        group = groups[0] or {}
        meta = dict(job.get("Meta") or {})
        raw = meta.get("lab_duration", (group.get("Meta") or {}).get("lab_duration"))
        job_type = job.get("Type") or "service"
        try:
            duration = float(raw) if raw is not None else (60.0 if job_type == "batch" else None)
        except ValueError as exc:
            raise NomadError(400, "lab: Meta.lab_duration must be a number of lab seconds") from exc
        eval_id = self._register(job["ID"], job_type, duration, group.get("Count", 1), meta, job.get("Priority", 50))
        return {"EvalID": eval_id, "EvalCreateIndex": self._index, "JobModifyIndex": self._index, "Warnings": "",
                "Index": self._index, "LastIndex": self._index, "KnownLeader": False, "LastContact": 0}

    def _agent_self(self) -> dict:
        return {
            "config": {"Region": self.region, "Datacenter": self.datacenter, "Version": {"Version": NOMAD_VERSION},
                       "ACL": {"Enabled": bool(self.token)}, "Server": {"Enabled": True}, "Client": {"Enabled": False}},
            "member": {"Name": "nomad-server-0.%s" % self.region, "Addr": "127.0.0.1", "Port": 4648, "Status": "alive",
                       "Tags": {"region": self.region, "dc": self.datacenter, "role": "nomad", "build": NOMAD_VERSION,
                                "leader": "true"}},
            "stats": {"nomad": {"leader": "true", "server": "true", "known_regions": "1"}},
        }
