# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-memory fakes of an instance group and of Nomad, driven by a fake clock, for the roll's unit tests.

The world moves only when the roll sleeps: new instances register as ready Nomad nodes ``boot`` seconds
after launch; jobs end at their end time; a drain with a deadline kills what still runs at the deadline; a
terminated instance's running allocations are lost (and counted as a violation). The world samples the
number of ready, eligible nodes of the group at every tick, and records every mutation.
"""

from __future__ import annotations

import itertools

from ansible_collections.circleci.server.plugins.module_utils.nomad import NANOSECONDS
from ansible_collections.circleci.server.plugins.module_utils.roll.model import IN_SERVICE, GroupInstance, GroupState, ProviderError


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.world = None
        self.sleeps = []

    def now(self):
        return self.t

    def sleep(self, seconds):
        assert seconds > 0, "the roll slept %r seconds: a tight loop" % seconds
        self.sleeps.append(seconds)
        target = self.t + seconds
        # advance in small steps so that events happen in order
        while self.t < target:
            self.t = min(target, self.t + 1.0)
            if self.world:
                self.world.tick()


class World:
    def __init__(self, clock, size=6, boot=90, max_size=None, job_lengths=(), feed_every=0, feed_length=60, slots=4):
        self.clock = clock
        clock.world = self
        self.boot = boot
        self.template = "v1"
        self.desired = 0
        self.max_size = max_size if max_size is not None else size
        self.instances = {}
        self.nodes = {}
        self.allocs = {}
        self.mutations = []
        self.violations = []
        self.killed = []
        self.terminated = []
        self.state = None
        self.lock = None
        self.min_size = 0
        self.suspended = set()
        self.faults = {}
        self.calls = {}
        self.samples = []
        self.feed_every = feed_every
        # a number, or a list of lengths the fed jobs take in turn
        self.feed_length = feed_length
        self._feed_lengths = itertools.cycle(feed_length) if isinstance(feed_length, (list, tuple)) else itertools.repeat(feed_length)
        self.slots = slots
        self.queue = 0
        self.next_feed = feed_every
        self.never_ready = set()
        self._ids = itertools.count(1)
        self._allocs = itertools.count(1)
        self._index = itertools.count(1)
        self.set_desired(size, record=False)
        # initial instances are booted already
        for inst in self.instances.values():
            inst["launched"] = -boot
        self.tick()
        lengths = list(job_lengths)
        for i, node_id in enumerate(sorted(self.nodes)):
            for length in lengths[i::len(self.nodes)] if lengths else ():
                self.place(node_id, length)

    # -- cloud -------------------------------------------------------------------------------------------
    def _call(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.faults.get(name) == self.calls[name]:
            raise ProviderError("injected fault on %s #%d" % (name, self.calls[name]))

    def set_desired(self, desired, record=True):
        if record:
            self.mutations.append(("set_capacity", desired))
        if desired > self.max_size:
            raise ProviderError("desired %d above max %d" % (desired, self.max_size))
        self.desired = desired
        while len(self.instances) < desired:
            iid = "i-%03d" % next(self._ids)
            self.instances[iid] = {"id": iid, "template": self.template, "launched": self.clock.t}

    def terminate(self, ids):
        self.mutations.append(("terminate", tuple(ids)))
        for iid in ids:
            node = self.node_of(iid)
            if node:
                running = self.running(node["ID"])
                if running:
                    self.violations.append("terminated %s with %d running allocations" % (iid, len(running)))
                    for alloc in running:
                        alloc["ClientStatus"] = "lost"
                        self.killed.append(alloc["ID"])
                node["Status"] = "down"
            del self.instances[iid]
            self.terminated.append(iid)
            self.desired -= 1

    # -- nomad -------------------------------------------------------------------------------------------
    def node_of(self, iid):
        for node in self.nodes.values():
            if node["Name"] == iid and node["Status"] != "down":
                return node
        return None

    def running(self, node_id):
        return [a for a in self.allocs.values() if a["NodeID"] == node_id and a["ClientStatus"] in ("pending", "running")]

    def place(self, node_id, length):
        aid = "alloc-%04d" % next(self._allocs)
        self.allocs[aid] = {"ID": aid, "NodeID": node_id, "ClientStatus": "running", "DesiredStatus": "run", "end": self.clock.t + length,
                            "Job": {"Type": "batch"}}
        return aid

    def ready_eligible(self):
        count = 0
        for iid in self.instances:
            node = self.node_of(iid)
            if node and node["Status"] == "ready" and node["SchedulingEligibility"] == "eligible" and node["DrainStrategy"] is None:
                count += 1
        return count

    def tick(self):
        now = self.clock.t
        for iid, inst in self.instances.items():
            if iid in self.never_ready or self.node_of(iid) or now < inst["launched"] + self.boot:
                continue
            node_id = "node-%s" % iid
            self.nodes[node_id] = {"ID": node_id, "Name": iid, "Status": "ready", "SchedulingEligibility": "eligible", "Drain": False,
                                   "DrainStrategy": None, "CreateIndex": next(self._index), "LastDrain": None, "Attributes": {}}
        for alloc in self.allocs.values():
            if alloc["ClientStatus"] == "running" and alloc["end"] <= now:
                alloc["ClientStatus"] = "complete"
        for node in self.nodes.values():
            strategy = node["DrainStrategy"]
            if strategy is None:
                continue
            deadline = strategy["Deadline"] / NANOSECONDS
            if deadline > 0 and now >= strategy["StartedAt"] + deadline:
                for alloc in self.running(node["ID"]):
                    alloc["ClientStatus"] = "complete"
                    alloc["DesiredStatus"] = "stop"
                    self.killed.append(alloc["ID"])
            if not self.running(node["ID"]):
                node["DrainStrategy"] = None
                node["Drain"] = False
                node["LastDrain"]["Status"] = "complete"
        if self.feed_every:
            while now >= self.next_feed:
                self.next_feed += self.feed_every
                self.queue += 1
            self._schedule()
        self.samples.append((now, self.ready_eligible()))

    def _schedule(self):
        while self.queue:
            candidates = [n for n in self.nodes.values() if n["Status"] == "ready" and n["SchedulingEligibility"] == "eligible"
                          and n["DrainStrategy"] is None and len(self.running(n["ID"])) < self.slots]
            if not candidates:
                return
            node = min(candidates, key=lambda n: (len(self.running(n["ID"])), n["ID"]))
            self.place(node["ID"], next(self._feed_lengths))
            self.queue -= 1

    def new_template(self, name="v2"):
        self.template = name

    def min_ready_eligible(self, after=0.0):
        return min(count for t, count in self.samples if t >= after)


class FakeProvider:
    kind = "fake"

    def __init__(self, world, has_state=True):
        self.world = world
        self.has_state = has_state

    def describe(self):
        self.world._call("describe")
        instances = [GroupInstance(id=i["id"], up_to_date=i["template"] == self.world.template, state=IN_SERVICE,
                                   reason="" if i["template"] == self.world.template else "template %s" % i["template"])
                     for i in self.world.instances.values()]
        return GroupState(name="clients", desired=self.world.desired, min_size=self.world.min_size, max_size=self.world.max_size, instances=instances,
                          config="template %s" % self.world.template)

    def set_capacity(self, desired):
        self.world._call("set_capacity")
        if desired > self.world.max_size:
            self.set_max_size(desired)
        self.world.set_desired(desired)

    def set_max_size(self, max_size):
        self.world._call("set_max_size")
        self.world.mutations.append(("set_max_size", max_size))
        self.world.max_size = max_size

    def terminate(self, instance_ids):
        self.world._call("terminate")
        self.world.terminate(instance_ids)

    def suspend_scaling(self):
        todo = [p for p in ("AZRebalance", "ScheduledActions") if p not in self.world.suspended]
        if todo:
            self.world.mutations.append(("suspend", tuple(todo)))
            self.world.suspended.update(todo)
        return todo

    def resume_scaling(self, processes):
        self.world.mutations.append(("resume", tuple(processes)))
        self.world.suspended.difference_update(processes)

    def load_state(self):
        return dict(self.world.state) if self.has_state and self.world.state else None

    def save_state(self, state):
        if self.has_state:
            self.world.mutations.append(("save_state", dict(state)))
            self.world.state = dict(state)

    def clear_state(self):
        if self.has_state and self.world.state is not None:
            self.world.mutations.append(("clear_state",))
            self.world.state = None

    def lock_holder(self):
        return dict(self.world.lock) if self.world.lock else None

    def acquire_lock(self, owner, ttl, state=None):
        holder = self.lock_holder()
        if holder and holder["owner"] != owner:
            raise ProviderError("locked by %s" % holder["owner"])
        self.world.mutations.append(("lock", owner))
        self.world.lock = {"owner": owner, "until": self.world.clock.t + ttl}
        if state is not None:
            self.save_state(state)

    def release_lock(self, owner):
        if self.world.lock and self.world.lock["owner"] == owner:
            self.world.mutations.append(("unlock", owner))
            self.world.lock = None


class FakeNomad:
    def __init__(self, world):
        self.world = world

    def nodes(self):
        return [{k: v for k, v in n.items() if k != "Attributes"} for n in self.world.nodes.values()]

    def node(self, node_id):
        return dict(self.world.nodes[node_id])

    def node_allocations(self, node_id):
        return [dict(a) for a in self.world.allocs.values() if a["NodeID"] == node_id]

    def set_eligibility(self, node_id, eligible):
        self.world.mutations.append(("eligibility", node_id, eligible))
        self.world.nodes[node_id]["SchedulingEligibility"] = "eligible" if eligible else "ineligible"

    def drain(self, node_id, deadline_seconds, ignore_system_jobs=False, meta=None):
        self.world._call("drain")
        self.world.mutations.append(("drain", node_id, deadline_seconds))
        node = self.world.nodes[node_id]
        node["SchedulingEligibility"] = "ineligible"
        node["Drain"] = True
        node["DrainStrategy"] = {"Deadline": int((deadline_seconds or 0) * NANOSECONDS), "StartedAt": self.world.clock.t}
        node["LastDrain"] = {"Status": "draining", "Meta": dict(meta or {})}
