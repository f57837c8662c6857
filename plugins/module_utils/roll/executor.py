# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs a roll plan against a provider and a Nomad client, one batch at a time:

1. surge: raise the group's desired size so the batch's replacements launch (within, or after raising,
   the maximum size);
2. wait until every current instance is a Nomad node that is ``ready`` and ``eligible``;
3. mark every node of the batch ineligible, then drain them; a drain without ``force_after_deadline`` has
   no Nomad deadline: when ``drain_deadline`` passes with work still running, the roll stops and reports;
4. terminate the batch through the group, decrementing the desired size;
5. next batch. At the end, put back the maximum size and the scaling processes the roll changed.

Every step reads the live state first, so a run started after an interruption continues the roll
without replacing an instance twice. No old instance is terminated while a job runs on it.
"""

from __future__ import annotations

import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..nomad import NomadError, active_allocations, node_is_draining, node_ready_eligible, was_killed
from .model import TERMINATING_WAIT, ProviderError, RollError, WallClock
from .planner import STRATEGIES, batch_surge, make_plan

NODE_ID_ATTRIBUTES = (
    "unique.platform.aws.instance-id",
    "unique.platform.gce.id",
    "unique.platform.gce.hostname",
    "unique.hostname",
    "unique.network.ip-address",
)
TARGET_META = "circleci.server.roll_target"
STATUS_RANK = {"ready": 0, "initializing": 1, "disconnected": 2, "down": 3}


class RollStopped(RollError):
    """The roll stopped before the end, leaving the group in the reported safe state. ``result`` is the
    module result so far (events, replaced, ...)."""

    def __init__(self, message, result, safe=True):
        super().__init__(message, safe)
        self.result = result


@dataclass
class RollOptions:
    batch_size: object = "25%"
    max_unavailable: int = 0
    drain_deadline: float = 3600
    force_after_deadline: bool = False
    ignore_system_jobs: bool = False
    timeout: float = 7200
    boot_timeout: float = 900
    poll_interval: float = 10
    desired_capacity: int | None = None
    raise_max_size: bool = True
    strategy: str = "batch"

    def validate(self):
        if self.max_unavailable < 0:
            raise RollError("max_unavailable must be 0 or more, got %s." % self.max_unavailable)
        for name in ("drain_deadline", "timeout", "boot_timeout", "poll_interval"):
            if getattr(self, name) <= 0:
                raise RollError("%s must be a positive number of seconds, got %s." % (name, getattr(self, name)))
        if self.desired_capacity is not None and self.desired_capacity < 0:
            raise RollError("desired_capacity must be 0 or more, got %s." % self.desired_capacity)
        if self.strategy not in STRATEGIES:
            raise RollError("strategy %r is not one of %s." % (self.strategy, ", ".join(STRATEGIES)))


def node_keys(node):
    """The strings a Nomad node can be matched to an instance by."""
    keys = set()
    for value in (node.get("Name"), node.get("Address")):
        if value:
            keys.add(str(value))
            keys.add(str(value).split(".", maxsplit=1)[0])
    for attr in NODE_ID_ATTRIBUTES:
        value = (node.get("Attributes") or {}).get(attr)
        if value:
            keys.add(str(value))
            keys.add(str(value).split(".", maxsplit=1)[0])
    return keys


class NodeIndex:
    """Matches Nomad nodes to group instances. Attributes are read once per node (they do not change)."""

    def __init__(self, nomad):
        self.nomad = nomad
        self._keys = {}

    def match(self, instances, stubs=None):
        """instance id -> best node stub (ready before down, newest registration first)."""
        wanted = {}
        for inst in instances:
            for key in (inst.id,) + tuple(inst.keys):
                if key:
                    wanted[str(key)] = inst.id
        found = {}
        for stub in self.nomad.nodes() if stubs is None else stubs:
            keys = node_keys(stub)
            if not keys & wanted.keys():
                if stub.get("Status") == "down":
                    continue  # a node whose instance is gone: not worth a read
                if stub["ID"] not in self._keys:
                    self._keys[stub["ID"]] = node_keys(self.nomad.node(stub["ID"]) or {})
                keys = keys | self._keys[stub["ID"]]
            hits = keys & wanted.keys()
            if not hits:
                continue
            instance_id = wanted[sorted(hits)[0]]
            best = found.get(instance_id)
            rank = (STATUS_RANK.get(stub.get("Status"), 2), -int(stub.get("CreateIndex") or 0))
            if best is None or rank < best[0]:
                found[instance_id] = (rank, stub)
        return {iid: pair[1] for iid, pair in found.items()}


class Roller:
    def __init__(self, provider, nomad, options=None, clock=None, parallel=8, pauser=None):
        self.provider = provider
        self.nomad = nomad
        self.options = options or RollOptions()
        self.options.validate()
        self.clock = clock or WallClock()
        self.index = NodeIndex(nomad)
        self.parallel = parallel
        # What pauses the Nomad Autoscaler for the roll (autoscaler.DeploymentPause), or None.
        self.pauser = pauser
        self.changed = False
        self._start = None
        self._instances = []
        self._target_desired = None
        self._blockers = []
        self.min_ready_eligible = None
        # The desired size the roll last set (or found): another value means someone else scaled the group.
        self._expected_desired = None
        self.owner = "%s:%d:%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])

    # -- observation -------------------------------------------------------------------------------------
    def observe(self, full=True):
        """The group and its Nomad nodes. ``full=False`` is a poll: the provider's cheap read (``poll``: one group
        read, cached configuration), one Nomad node list."""
        group = self.provider.describe() if full else getattr(self.provider, "poll", self.provider.describe)()
        if self._expected_desired is not None and group.desired != self._expected_desired:
            raise RollError(
                "The desired size of %s changed behind the roll's back: %d, the roll expected %d. Something else scales the group (the "
                "Nomad Autoscaler, a scaling policy, an instance refresh, a terraform apply, a person): the roll stopped without draining "
                "or terminating anything more. Pause that scaler, then re-run the roll: it resumes from the live state."
                % (group.name, group.desired, self._expected_desired))
        if self._expected_desired is not None and group.blockers:
            raise RollError("The roll stopped: %s" % " ".join(group.blockers))
        nodes = self.index.match(group.live())
        self._instances = group.live()
        self._track(group, nodes)
        return group, nodes

    def _track(self, group, nodes):
        count = sum(1 for inst in group.live() if inst.id in nodes and node_ready_eligible(nodes[inst.id]))
        if self._start is not None and (self.min_ready_eligible is None or count < self.min_ready_eligible):
            self.min_ready_eligible = count
        return count

    def _rel(self, when=None):
        return round((self.clock.now() if when is None else when) - self._start, 1)

    def _target(self, group, saved, nodes=None):
        if self.options.desired_capacity is not None:
            return self.options.desired_capacity
        if saved and saved.get("desired") is not None:
            return int(saved["desired"])
        # No saved state (removed by hand, or a provider without a store): an earlier run left its target in the drain
        # metadata of the nodes it drained.
        for node_id in sorted(n["ID"] for iid, n in (nodes or {}).items() if iid in self._in_progress(group, nodes)):
            full = self.nomad.node(node_id) or {}
            meta = (full.get("LastDrain") or {}).get("Meta") or {}
            if str(meta.get(TARGET_META, "")).isdigit():
                return int(meta[TARGET_META])
        return group.desired

    @staticmethod
    def _in_progress(group, nodes):
        return [inst.id for inst in group.outdated() if inst.id in nodes
                and (nodes[inst.id].get("SchedulingEligibility") == "ineligible" or node_is_draining(nodes[inst.id]))]

    def plan(self):
        """The plan, from reads only (what check mode returns)."""
        group, nodes = self.observe()
        saved = self.provider.load_state()
        self._target_desired = self._target(group, saved, nodes)
        serving = [iid for iid, node in nodes.items() if node.get("Status") == "ready"]
        plan = make_plan(group, self.options.batch_size, self.options.max_unavailable, self._target_desired,
                         self._in_progress(group, nodes), {iid: n["ID"] for iid, n in nodes.items()}, serving_ids=serving,
                         strategy=self.options.strategy, raise_max_size=self.options.raise_max_size)
        plan["resuming"] = bool(saved)
        plan["termination_hooks"] = getattr(self.provider, "termination_hooks", lambda: [])()
        plan["lifecycle_actions"] = self._left_waiting(group) if plan["termination_hooks"] else []
        blockers = list(group.blockers)
        target, unavailable = self._target_desired, self.options.max_unavailable
        if plan["batches"] and unavailable and unavailable >= target:
            blockers.append("max_unavailable=%d is not below the desired size %d: the roll could take every Nomad client out of service "
                            "at once. Set max_unavailable below %d (0 keeps every client; the default)." % (unavailable, target, target))
        if plan["batches"] and group.min_size > target - unavailable:
            blockers.append("MinSize %d of %s is above desired %d - max_unavailable %d: Auto Scaling refuses to terminate an instance "
                            "below MinSize. Lower max_unavailable to %d or MinSize to %d." % (
                                group.min_size, group.name, target, unavailable, max(0, target - group.min_size), target - unavailable))
        holder = getattr(self.provider, "lock_holder", lambda: None)()
        if plan["batches"] and holder and holder.get("owner") != self.owner:
            blockers.append("Another nomad_client_roll holds the roll lock of %s (%s, until %s): two rolls at once could drain the same "
                            "capacity twice. Wait for it to finish; if it died, the lock expires by itself at that time."
                            % (group.name, holder.get("owner"), holder.get("until")))
        plan["warnings"] = list(group.warnings) + blockers
        plan["group_scaling"] = getattr(self.provider, "scaling_to_pause", lambda: [])() if plan["batches"] else []
        self._blockers = blockers
        if self.pauser is not None:
            recorded = (saved or {}).get("autoscaler_replicas")
            replicas = int(recorded) if recorded is not None else self.pauser.replicas()
            plan["autoscaler"] = {"target": self.pauser.label, "replicas": replicas,
                                  "action": "scaled to 0 for the roll, then back to %d" % replicas if plan["batches"] else "left alone"}
        return plan

    def _left_waiting(self, group):
        """Instances an earlier run terminated after draining them, whose termination lifecycle action it did not complete (it
        stopped in between): held in Terminating:Wait, their Nomad node drained by a roll (its drain metadata) with nothing running."""
        if not getattr(self.provider, "completes_lifecycle_actions", False):
            return []
        waiting = [inst for inst in group.instances if inst.state == TERMINATING_WAIT]
        if not waiting:
            return []
        left = []
        for iid, stub in sorted(self.index.match(waiting).items()):
            full = self.nomad.node(stub["ID"]) or {}
            drained_by_a_roll = TARGET_META in ((full.get("LastDrain") or {}).get("Meta") or {})
            if drained_by_a_roll and not node_is_draining(full) and not active_allocations(self.nomad.node_allocations(stub["ID"]),
                                                                                           self.options.ignore_system_jobs):
                left.append(iid)
        return left

    @staticmethod
    def _note_lifecycle_actions(completed, result):
        if completed:
            result.setdefault("lifecycle_actions_completed", []).extend(completed)

    # -- the roll ----------------------------------------------------------------------------------------
    def run(self):
        self._start = self.clock.now()
        result = {"changed": False, "batches": [], "replaced": [], "killed": 0, "allocations_drained": 0}
        try:
            plan = self.plan()
        except (NomadError, ProviderError) as exc:
            raise RollError(str(exc))
        result["plan"] = plan
        result["capacity_floor"] = plan["capacity_floor"]
        if self._blockers and plan["batches"]:
            raise RollError(" ".join(self._blockers))
        if plan["lifecycle_actions"]:
            # drained by an earlier run, which stopped before letting them through their termination hooks
            self.changed = True
            self._note_lifecycle_actions(self.provider.complete_lifecycle_actions(plan["lifecycle_actions"]), result)
        apply_configuration = getattr(self.provider, "apply_configuration", None)
        if apply_configuration is not None:
            try:
                if apply_configuration():
                    self.changed = True
            except RollError as exc:
                raise RollStopped(str(exc), self._close(result))
        saved = self.provider.load_state()
        if not plan["batches"]:
            if saved:
                group = self.provider.describe()
                self._finish(saved, group)
                result["msg"] = "Every instance was already current; restored what an earlier, interrupted roll had changed."
            else:
                result["msg"] = "Every instance of %s is on the current configuration: nothing to replace." % plan["group"]
            if result.get("lifecycle_actions_completed"):
                result["msg"] += (" Completed the termination lifecycle action of %d instance(s) an earlier run drained and terminated."
                                  % len(result["lifecycle_actions_completed"]))
            return self._close(result)
        self._check_head_room(plan)
        state = {"desired": plan["target_desired"], "max_size": (saved or {}).get("max_size", plan["max_size"]),
                 "suspended": list((saved or {}).get("suspended", []))}
        if self.pauser is not None:
            recorded = (saved or {}).get("autoscaler_replicas")
            # recorded before the scale to 0, so that a re-run after a crash puts back the original count
            state["autoscaler_replicas"] = int(recorded) if recorded is not None else plan["autoscaler"]["replicas"]
        # what the roll is about to suspend goes into the state written with the lock, before it is suspended: a run that dies
        # right after the suspension leaves a state that says what to put back (a GCP autoscaler's mode, AWS processes)
        pending = getattr(self.provider, "pending_suspension", None)
        if pending is not None:
            state["suspended"] = sorted(set(state["suspended"]) | set(pending()))
        self._acquire_lock(state)
        finished = False
        try:
            self._expected_desired = plan["current_desired"]
            self._begin(plan, state)
            if self.pauser is not None:
                self.pauser.pause()
                result["autoscaler"] = {"target": self.pauser.label, "paused": True, "replicas": state["autoscaler_replicas"]}
            if plan["strategy"] == "window" or (plan["strategy"] == "surge" and len(plan["batches"]) == 1):
                # A full surge is a window as wide as the roll: every replacement at once, and each old node leaves as soon as
                # its own drain ends (its replacement is up), instead of every node waiting for the slowest drain.
                self._run_window(plan["batches"][0], plan["batch_size"], plan["target_desired"], result)
            else:
                for number, batch in enumerate(plan["batches"], 1):
                    self._run_batch(number, batch, plan["target_desired"], result)
            self._verify(result)
            self._expected_desired = None
            self._finish(state, getattr(self.provider, "poll", self.provider.describe)(), result)
            finished = True
        except (RollError, NomadError) as exc:
            self._after_stop(state, result)
            self._close(result)
            raise RollStopped(str(exc), result, getattr(exc, "safe", True))
        finally:
            if not finished:
                # also on an unexpected exception: the scaling processes, MaxSize and the lock are put back
                self._after_stop(state, result)
            self._release_lock()
        result["msg"] = "Replaced %d instance(s) in %d batch(es) (strategy %s)." % (
            len(result["replaced"]), len(result["batches"]), plan["strategy"])
        return self._close(result)

    def _acquire_lock(self, state):
        """The lock, and the roll's state with it in the same write where the provider can (one call fewer at the start); the
        state is written on its own otherwise."""
        acquire = getattr(self.provider, "acquire_lock", None)
        self.changed = True
        if acquire is None:
            self.provider.save_state(state)
            return
        # the lock outlives the roll's own timeout a little, in wall seconds, so a dead run frees it by itself
        ttl = self.options.timeout / float(getattr(self.clock, "factor", 1.0)) + 300
        acquire(self.owner, ttl, state=state)

    def _release_lock(self):
        release = getattr(self.provider, "release_lock", None)
        if release is None:
            return
        try:
            release(self.owner)
        except RollError:
            pass

    def _close(self, result):
        result["changed"] = self.changed
        result["duration"] = self._rel()
        result["min_ready_eligible"] = self.min_ready_eligible
        result["killed"] = sum(ev.get("killed", 0) for ev in result["batches"])
        result["allocations_drained"] = sum(ev.get("allocations_drained", 0) for ev in result["batches"])
        return result

    def _check_head_room(self, plan):
        max_size = plan["max_size"]
        if max_size is not None and plan["peak_desired"] > max_size and not self.options.raise_max_size:
            raise RollError(
                "The roll needs %d instances at its peak but %s has MaxSize %d and raise_max_size is false. "
                "Set raise_max_size=true (the roll puts MaxSize back at the end), or set max_unavailable to at least %d "
                "to roll without surge (capacity drops while a batch drains)."
                % (plan["peak_desired"], plan["group"], max_size, plan["batch_size"]))

    def _begin(self, plan, state):
        """Pause the group's own scaling (the state written with the lock says what), make room for the surge."""
        max_size = plan["max_size"]
        newly = self.provider.suspend_scaling() or []
        if set(newly) - set(state["suspended"]):
            state["suspended"] = sorted(set(state["suspended"]) | set(newly))
            self.provider.save_state(state)
        if max_size is not None and plan["peak_desired"] > max_size:
            self.provider.set_max_size(plan["peak_desired"])

    def _restore_max_size(self, state, group):
        original = state.get("max_size")
        if original is not None and group.max_size is not None:
            wanted = max(int(original), group.desired)
            if wanted != group.max_size:
                self.provider.set_max_size(wanted)

    def _finish(self, state, group, result=None):
        """Put back the maximum size (never below the desired size) and the suspended processes. A process
        the provider finds unsafe to resume now (AZRebalance with the zones out of balance: it would
        terminate busy, undrained nodes) stays suspended, with a warning."""
        self._restore_max_size(state, group)
        self._resume_autoscaler(state, result)
        suspended = list(state.get("suspended") or [])
        if suspended:
            unsafe = getattr(self.provider, "unsafe_to_resume", lambda names: {})(suspended)
            resume = [name for name in suspended if name not in unsafe]
            if resume:
                self.provider.resume_scaling(resume)
            if unsafe and result is not None:
                result.setdefault("warnings", []).extend(unsafe.values())
        self.provider.clear_state()
        self.changed = True

    def _resume_autoscaler(self, state, result=None):
        """Put the Nomad Autoscaler back to the replicas it had; forget them only once that worked."""
        replicas = state.get("autoscaler_replicas")
        if replicas is None or self.pauser is None:
            return
        self.pauser.resume(int(replicas))
        state.pop("autoscaler_replicas", None)
        if result is not None:
            result["autoscaler"] = {"target": self.pauser.label, "paused": False, "replicas": int(replicas)}

    def _after_stop(self, state, result=None):
        """On a stop: keep the target size saved so a re-run resumes; put MaxSize back as far as the group's
        size allows; resume the suspended processes except AZRebalance, which would terminate undrained nodes
        to balance the zones of a surged group (the re-run that finishes the roll resumes it)."""
        if state.get("stopped"):
            return
        state["stopped"] = True
        try:
            self._resume_autoscaler(state, result)
        except RollError as exc:
            if result is not None:
                result.setdefault("warnings", []).append("The Nomad Autoscaler could not be put back: %s A re-run puts it back." % exc)
        try:
            group = self.provider.describe()
            self._restore_max_size(state, group)
            # AZRebalance, and a GCP autoscaler while the group is larger than its target, would remove instances to even
            # out zones or to scale in: undrained, busy Nomad clients among them. They stay off until the roll finishes.
            surged = group.desired > int(state.get("desired") or 0)
            keep = [name for name in state.get("suspended") or []
                    if name == "AZRebalance" or (surged and name.startswith("autoscaler-mode="))]
            resume = [name for name in state.get("suspended") or [] if name not in keep]
            if resume:
                self.provider.resume_scaling(resume)
            saved = {k: v for k, v in state.items() if k != "stopped"}
            saved["suspended"] = keep
            self.provider.save_state(saved)
            for name in keep:
                if result is None:
                    break
                what = "AZRebalance stays suspended" if name == "AZRebalance" else "The group's autoscaler stays OFF (%s)" % name
                result.setdefault("warnings", []).append(
                    "%s on %s: turning it back on now could remove Nomad clients that were not drained. The re-run that finishes "
                    "the roll puts it back." % (what, group.name))
        except (RollError, NomadError):
            pass

    def _wait(self, check, until):
        """Poll ``check`` every poll_interval (never longer than the time left) until it returns something
        truthy or ``until`` passes; returns the last value."""
        while True:
            value = check()
            if value:
                return value
            now = self.clock.now()
            if now >= until:
                return value
            self.clock.sleep(min(self.options.poll_interval, max(until - now, 0.001)))

    def _hard_limit(self):
        return self._start + self.options.timeout

    def _run_batch(self, number, batch_ids, target, result):
        opts = self.options
        event = {"batch": number, "instances": list(batch_ids), "nodes": [], "started": self._rel(), "surge": 0,
                 "allocations_drained": 0, "killed": 0}
        result["batches"].append(event)
        # the first batch starts right after the plan's full read: a poll is enough; later ones check everything again
        group, nodes = self.observe(full=number > 1)
        live = {inst.id for inst in group.live()}
        batch = [iid for iid in batch_ids if iid in live]
        event["instances"] = batch
        if not batch:
            event["skipped"] = "every instance of the batch is already gone"
            event["finished"] = self._rel()
            return
        outdated, current = group.outdated(), group.current()
        # Capacity comes from ready, eligible Nomad nodes only: an outdated instance outside the batch without
        # one (a failed boot) counts toward the group's size but not toward the floor, so it calls for surge.
        serving_outside = sum(1 for inst in outdated if inst.id not in batch and inst.id in nodes and node_ready_eligible(nodes[inst.id]))
        needed_before = max(0, target - opts.max_unavailable - serving_outside)
        desired_during = len(outdated) + max(len(current), needed_before)
        if desired_during > group.desired:
            self.provider.set_capacity(desired_during)
            self._expected_desired = desired_during
            self.changed = True
            event["surge"] = desired_during - group.desired
        expect_current = max(desired_during, group.desired) - len(outdated)
        event["desired_during"] = max(desired_during, group.desired)

        # 2. the replacements must be ready, eligible Nomad nodes
        def replacements_ready():
            grp, nds = self.observe(full=False)
            cur = grp.current()
            ready = [i.id for i in cur if i.id in nds and node_ready_eligible(nds[i.id])]
            return (grp, nds) if len(ready) >= expect_current else None
        observed = self._wait(replacements_ready, min(self.clock.now() + opts.boot_timeout, self._hard_limit()))
        if not observed:
            grp, nds = self.observe()
            waiting = ["%s (%s)" % (i.id, nds[i.id].get("Status") + "/" + str(nds[i.id].get("SchedulingEligibility")) if i.id in nds
                                    else "no Nomad node") for i in grp.current() if not (i.id in nds and node_ready_eligible(nds[i.id]))]
            raise RollError(
                "Batch %d: the new instances did not all become ready, eligible Nomad nodes within boot_timeout=%ss (waiting for %s; "
                "%d of %d expected). Nothing of this batch was drained or terminated: the old clients keep running and the group stays at "
                "desired %d. Look at the new instances' boot (cloud-init or startup-script log, the Nomad client's TLS and server address), "
                "then re-run: the roll resumes from here."
                % (number, opts.boot_timeout, ", ".join(waiting) or "instances to launch", len(grp.current()) - len(waiting), expect_current,
                   event["desired_during"]))
        group, nodes = observed
        event["ready"] = self._rel()

        floor = max(0, target - opts.max_unavailable)
        others = sum(1 for inst in group.live() if inst.id not in batch and inst.id in nodes and node_ready_eligible(nodes[inst.id]))
        broken = sorted(inst.id for inst in group.outdated() if inst.id not in batch
                        and not (inst.id in nodes and nodes[inst.id].get("Status") == "ready"))
        if broken:
            event["broken_elsewhere"] = broken
        if others < floor:
            self.observe()  # a scaler that changed the group behind the roll's back is the better explanation: it raises
            raise RollError("Batch %d: only %d ready, eligible Nomad nodes would remain outside the batch, below the capacity floor %d "
                            "(desired %d - max_unavailable %d). Nothing was drained. Check the nodes' health in Nomad (a node made "
                            "ineligible by hand counts as unavailable) and re-run." % (number, others, floor, target, opts.max_unavailable))

        self._check_conflicts()

        # 3. every node of the batch ineligible first, then the drains
        batch_nodes = {iid: nodes[iid] for iid in batch if iid in nodes and nodes[iid].get("Status") != "down"}
        event["nodes"] = sorted(n["ID"] for n in batch_nodes.values())
        event["without_node"] = sorted(iid for iid in batch if iid not in batch_nodes)
        to_mark = [node["ID"] for node in batch_nodes.values() if node.get("SchedulingEligibility") != "ineligible"]
        if to_mark:
            self.changed = True
        self._each(lambda node_id: self.nomad.set_eligibility(node_id, False), to_mark)
        tracked = {}
        node_list = list(batch_nodes.values())
        for node, allocs in zip(node_list, self._each(lambda n: self.nomad.node_allocations(n["ID"]), node_list)):
            for alloc in active_allocations(allocs, opts.ignore_system_jobs):
                tracked[alloc["ID"]] = node["ID"]
        drain_start = self.clock.now()
        event["drain_started"] = self._rel(drain_start)
        deadline = opts.drain_deadline if opts.force_after_deadline else 0
        busy_nodes = set(tracked.values())

        def drain_one(node):
            # A node an earlier run drained already (its drain metadata says so) is not drained again. The
            # drain's metadata also records the target size, for providers that cannot keep state.
            full = node if "LastDrain" in node and "DrainStrategy" in node else (self.nomad.node(node["ID"]) or {})
            marked = TARGET_META in ((full.get("LastDrain") or {}).get("Meta") or {})
            # A drain an earlier run started without a deadline gets the deadline now that force_after_deadline is set.
            unforced = node_is_draining(full) and deadline and int((full.get("DrainStrategy") or {}).get("Deadline") or 0) <= 0
            if unforced or (not node_is_draining(full) and (node["ID"] in busy_nodes or not marked)):
                self.changed = True
                self.nomad.drain(node["ID"], deadline, opts.ignore_system_jobs,
                                 meta={"message": "circleci.server.nomad_client_roll batch %d" % number, TARGET_META: str(target)})
        self._each(drain_one, node_list)
        event["allocations_drained"] = len(tracked)

        pending = set(event["nodes"])

        def drained():
            """One node list per poll; a node's allocations are read only once Nomad says its drain is over
            (Nomad can report a drain complete before the jobs stop), and a node found clean is not read again."""
            stubs = self.nomad.nodes()
            self._track_nodes(stubs)
            by_id = {stub["ID"]: stub for stub in stubs}
            still = {}
            for node_id in sorted(pending):
                stub = by_id.get(node_id) or {}
                if stub.get("Status") == "down":
                    pending.discard(node_id)
                elif node_is_draining(stub):
                    still[node_id] = stub
                elif active_allocations(self.nomad.node_allocations(node_id), opts.ignore_system_jobs):
                    still[node_id] = stub
                else:
                    pending.discard(node_id)
            return None if still else True, still
        grace = max(60.0, 3 * opts.poll_interval)
        limit = drain_start + opts.drain_deadline + (grace if opts.force_after_deadline else 0)
        still = {}
        while True:
            done, still = drained()
            now = self.clock.now()
            if done:
                break
            if now >= self._hard_limit():
                raise RollError(self._drain_stop_message(number, still, group, "the roll's timeout=%ss" % opts.timeout))
            if now >= limit:
                if opts.force_after_deadline:
                    raise RollError(self._drain_stop_message(number, still, group, "drain_deadline=%ss plus a %ds grace for Nomad to stop the "
                                                             "allocations" % (opts.drain_deadline, grace)))
                raise RollError(self._drain_stop_message(number, still, group, "drain_deadline=%ss" % opts.drain_deadline))
            self.clock.sleep(min(opts.poll_interval, max(min(limit, self._hard_limit()) - now, 0.001)))
        event["drained"] = self._rel()
        # one read of each drained node's allocations, side by side: what Nomad killed, and nothing placed again
        statuses = {stub["ID"]: stub.get("Status") for stub in self.nomad.nodes()}
        node_ids = list(event["nodes"])
        allocations = dict(zip(node_ids, self._each(self.nomad.node_allocations, node_ids)))
        event["killed"] = sum(1 for allocs in allocations.values() for alloc in allocs if alloc.get("ID") in tracked and was_killed(alloc))

        # 4. terminate through the group, decrementing its desired size
        for node_id in node_ids:
            if statuses.get(node_id) != "down" and active_allocations(allocations[node_id], opts.ignore_system_jobs):
                raise RollError("Batch %d: node %s has running allocations again after its drain; nothing was terminated. Find out what "
                                "placed work on an ineligible node, then re-run." % (number, node_id))
        self._check_conflicts()
        try:
            self._note_lifecycle_actions(self.provider.terminate(batch), result)
        except Exception:
            # Part of the batch may be gone already: report what was replaced, from the group itself.
            self.changed = True
            try:
                live_now = {inst.id for inst in self.provider.describe().live()}
                gone = [iid for iid in batch if iid not in live_now]
                result["replaced"].extend(gone)
                event["terminated_before_error"] = gone
            except (RollError, NomadError):
                pass
            raise
        self.changed = True
        self._expected_desired -= len(batch)
        result["replaced"].extend(batch)
        event["terminated"] = self._rel()

        # 5. with max_unavailable, the part of the batch that was not surged comes back now
        group, nodes = self.observe(full=False)
        if group.desired < target:
            self.provider.set_capacity(target)
            self._expected_desired = target
        event["finished"] = self._rel()
        event["duration"] = round(event["finished"] - event["started"], 1)

    def _run_window(self, ids, width, target, result):
        """The sliding window: at most ``width`` old nodes out of service at a time. Each poll: keep the group at
        ``target`` + the window's surge (or less once few old instances remain); terminate the old instances whose drain
        ended (nothing left running); let the next old nodes in (ineligible, then drained) while the ready, eligible nodes
        outside the window stay at or above the floor. An old node leaves as soon as its own jobs end, so a long job holds
        one slot, not a whole batch. Same peak as ``batch`` with this batch size."""
        opts = self.options
        surge = batch_surge(width, opts.max_unavailable)
        floor = max(0, target - opts.max_unavailable)
        event = {"batch": 1, "window": width, "instances": list(ids), "nodes": [], "started": self._rel(), "surge": 0,
                 "allocations_drained": 0, "killed": 0, "without_node": []}
        result["batches"].append(event)
        deadline = opts.drain_deadline if opts.force_after_deadline else 0
        grace = max(60.0, 3 * opts.poll_interval) if opts.force_after_deadline else 0
        window = {}  # instance id -> (node id or None, when its drain started)
        tracked = {}  # allocation id -> node id
        waiting_since = None
        while True:
            # a poll from the start: the plan's full read came just before, and conflicts are checked before each drain and termination
            group, nodes = self.observe(full=False)
            live = {inst.id for inst in group.live()}
            old_left = [iid for iid in ids if iid in live]
            if not old_left:
                break
            now = self.clock.now()
            # an interrupted run's nodes (ineligible or draining) are in the window from the start, and drained if they are not
            resumed = [iid for iid in self._in_progress(group, nodes) if iid in old_left and iid not in window]
            if resumed:
                self._admit(resumed, nodes, window, tracked, deadline, target, event)
            # 1. the old instances whose drain ended go, decrementing the group
            done, killed = self._window_done(window, nodes, tracked)
            if done:
                event["killed"] += killed  # what Nomad killed is reported even when the termination then fails
                self._check_conflicts()
                self._terminate_window(done, result)
                for iid in done:
                    window.pop(iid, None)
                continue
            # 2. the group at target + surge while enough old instances remain to need it
            wanted = target + min(surge, len(old_left))
            if group.desired < wanted:
                self.provider.set_capacity(wanted)
                event["surge"] += wanted - group.desired
                self._expected_desired = wanted
                self.changed = True
            # 3. the next old nodes in, while the ready, eligible nodes outside the window stay at the floor
            capacity = sum(1 for inst in group.live() if inst.id not in window and inst.id in nodes and node_ready_eligible(nodes[inst.id]))
            admit = []
            for iid in old_left:
                if len(window) + len(admit) >= width:
                    break
                if iid in window:
                    continue
                serving = iid in nodes and node_ready_eligible(nodes[iid])
                if serving and capacity - 1 < floor:
                    break
                admit.append(iid)
                capacity -= serving
            if admit:
                self._check_conflicts()
                self._admit(admit, nodes, window, tracked, deadline, target, event)
                waiting_since = None
            elif len(window) < width and not window:
                waiting_since = now if waiting_since is None else waiting_since
                if now - waiting_since > opts.boot_timeout:
                    raise RollError("Window: no old node could leave service for boot_timeout=%ss: the replacements did not become ready, "
                                    "eligible Nomad nodes (the group stays at desired %d, nothing more was drained). Look at the new "
                                    "instances' boot, then re-run: the roll resumes from here." % (opts.boot_timeout, group.desired))
            # 4. deadlines
            for iid, (node_id, since) in sorted(window.items()):
                if node_id and now >= since + opts.drain_deadline + grace:
                    raise RollError(self._drain_stop_message(0, [node_id], group, "drain_deadline=%ss" % opts.drain_deadline))
            if now >= self._hard_limit():
                raise RollError(self._drain_stop_message(0, sorted(n for n, _s in window.values() if n), group,
                                                         "the roll's timeout=%ss" % opts.timeout))
            self.clock.sleep(min(opts.poll_interval, max(self._hard_limit() - now, 0.001)))
        event["allocations_drained"] = len(tracked)
        event["drained"] = event["terminated"] = event["finished"] = self._rel()
        event["duration"] = round(event["finished"] - event["started"], 1)
        # the group back at its target once every old instance is gone
        group = self.observe(full=False)[0]
        if group.desired < target:
            self.provider.set_capacity(target)
            self._expected_desired = target

    def _admit(self, admit, nodes, window, tracked, deadline, target, event):
        """Old nodes into the window: every one ineligible, its allocations noted, then drained (side by side)."""
        opts = self.options
        now = self.clock.now()
        with_node = [iid for iid in admit if iid in nodes and nodes[iid].get("Status") != "down"]
        for iid in admit:
            window[iid] = (nodes[iid]["ID"] if iid in with_node else None, now)
            if iid not in with_node:
                event["without_node"].append(iid)
        node_ids = [nodes[iid]["ID"] for iid in with_node]
        event["nodes"].extend(node_ids)
        event.setdefault("ready", self._rel())
        event.setdefault("drain_started", self._rel())
        self.changed = self.changed or bool(node_ids)
        self._each(lambda node_id: self.nomad.set_eligibility(node_id, False),
                   [nodes[iid]["ID"] for iid in with_node if nodes[iid].get("SchedulingEligibility") != "ineligible"])
        for node_id, allocs in zip(node_ids, self._each(self.nomad.node_allocations, node_ids)):
            for alloc in active_allocations(allocs, opts.ignore_system_jobs):
                tracked[alloc["ID"]] = node_id

        def drain(node_id):
            full = self.nomad.node(node_id) or {}
            unforced = node_is_draining(full) and deadline and int((full.get("DrainStrategy") or {}).get("Deadline") or 0) <= 0
            if unforced or not node_is_draining(full):
                self.nomad.drain(node_id, deadline, opts.ignore_system_jobs,
                                 meta={"message": "circleci.server.nomad_client_roll window", TARGET_META: str(target)})
        self._each(drain, node_ids)

    def _window_done(self, window, nodes, tracked):
        """The window's instances whose node is gone, never was, or finished draining with nothing running; and how many
        of the allocations the roll saw running on them were killed."""
        by_node = {stub["ID"]: stub for stub in nodes.values()}
        candidates = []
        done = []
        for iid, (node_id, _since) in sorted(window.items()):
            stub = by_node.get(node_id) if node_id else None
            if node_id is None or stub is None or stub.get("Status") == "down":
                done.append(iid)
            elif not node_is_draining(stub):
                candidates.append((iid, node_id))
        killed = 0
        reads = self._each(lambda pair: self.nomad.node_allocations(pair[1]), candidates)
        for (iid, node_id), allocs in zip(candidates, reads):
            if not active_allocations(allocs, self.options.ignore_system_jobs):
                done.append(iid)
                killed += sum(1 for alloc in allocs if alloc.get("ID") in tracked and was_killed(alloc))
        return done, killed

    def _terminate_window(self, done, result):
        try:
            self._note_lifecycle_actions(self.provider.terminate(done), result)
        except Exception:
            self.changed = True
            try:
                live_now = {inst.id for inst in self.provider.describe().live()}
                result["replaced"].extend(iid for iid in done if iid not in live_now)
            except (RollError, NomadError):
                pass
            raise
        self.changed = True
        self._expected_desired -= len(done)
        result["replaced"].extend(done)

    def _check_conflicts(self):
        """Before draining and before terminating: what else could replace or remove instances now (an AWS instance
        refresh started during the roll). Polls leave this out; these are the moments it matters."""
        conflicts = getattr(self.provider, "conflicts", lambda: [])()
        if conflicts:
            raise RollError("The roll stopped: %s" % " ".join(conflicts))

    def _each(self, func, items):
        """``func`` over ``items``, a few at a time (a full surge drains every old node at once: one call after the
        other would take minutes on a large group); the results in order; the first error raised once all ended."""
        items = list(items)
        if len(items) <= 1 or self.parallel <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(items))) as pool:
            futures = [pool.submit(func, item) for item in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    def _track_nodes(self, stubs=None):
        """Cheap capacity sample while draining: the node list only, against the last known instances."""
        if not self._instances:
            return
        nodes = self.index.match(self._instances, stubs)
        count = sum(1 for inst in self._instances if inst.id in nodes and node_ready_eligible(nodes[inst.id]))
        if self.min_ready_eligible is None or count < self.min_ready_eligible:
            self.min_ready_eligible = count

    def _drain_stop_message(self, number, still, group, what):
        running = 0
        for node_id in still:
            try:
                running += len(active_allocations(self.nomad.node_allocations(node_id), self.options.ignore_system_jobs))
            except NomadError:
                pass
        killed = "" if self.options.force_after_deadline else " and no job was killed by the roll"
        where, spared = ("Batch %d" % number, "Nothing was terminated") if number else ("The window", "They were not terminated")
        return ("%s: the drain of node(s) %s did not finish within %s: %d allocation(s) still run. %s%s: "
                "those nodes stay ineligible and draining so their jobs can finish, and the group stays at desired "
                "%d with their replacements ready. Re-run the roll once the jobs are done (it resumes with these nodes), or raise "
                "drain_deadline, or set force_after_deadline=true to have Nomad stop the remaining jobs at the deadline."
                % (where, ", ".join(sorted(still)), what, running, spared, killed, group.desired))

    def _verify(self, result):
        def settled():
            grp, nds = self.observe(full=False)
            ok = len(grp.live()) >= grp.desired and all(i.id in nds and node_ready_eligible(nds[i.id]) for i in grp.current())
            return (grp, nds) if ok else None
        observed = self._wait(settled, min(self.clock.now() + self.options.boot_timeout, self._hard_limit()))
        group, nodes = observed or self.observe()
        left = [inst.id for inst in group.outdated()]
        if left:
            raise RollError("After the last batch, %d instance(s) are still not on the current configuration (%s): the configuration "
                            "changed during the roll, or instances launched from an old one. Re-run the roll." % (len(left), ", ".join(left)))
        not_ready = [inst.id for inst in group.current() if not (inst.id in nodes and node_ready_eligible(nodes[inst.id]))]
        result["not_ready_after"] = not_ready
