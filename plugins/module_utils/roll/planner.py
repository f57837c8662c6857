# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The roll plan: which outdated instances go in which batch, how much surge, which capacity floor.

Pure functions: no I/O. The executor recomputes the surge of each batch from the live group, so a plan
made after an interruption continues where the previous run stopped.
"""

from __future__ import annotations

import math
import re

from .model import RollError


def parse_batch_size(value, outdated_count):
    """``3`` or ``"3"`` -> 3; ``"25%"`` -> a quarter of the outdated instances, rounded up, at least 1."""
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise RollError("batch_size %r is not a percentage between 0 and 100 (exclusive of 0)." % value)
        return max(1, int(math.ceil(outdated_count * percent / 100.0)))
    if not re.fullmatch(r"\d+", text) or int(text) < 1:
        raise RollError("batch_size %r is neither a positive number of instances nor a percentage like 25%%." % value)
    return int(text)


def order_outdated(outdated, in_progress_ids, serving_ids=None):
    """Instances already taken out of service by an earlier run (ineligible or draining) come first, so an
    interrupted batch is finished before a new one starts; then the instances that give no capacity (no
    ready Nomad node: a failed boot, for example surged from a bad image by an earlier run), which cost
    nothing to remove; the rest keep a stable order by id."""
    serving = set(serving_ids) if serving_ids is not None else {inst.id for inst in outdated}
    return sorted(outdated, key=lambda inst: (inst.id not in in_progress_ids, inst.id in serving, inst.id))


def batch_surge(batch_len, max_unavailable):
    """Instances added before a batch is drained: the batch, less what may be unavailable."""
    return max(0, batch_len - max_unavailable)


STRATEGIES = ("auto", "batch", "surge", "window")


def choose_strategy(strategy, batch_size, outdated_count, target, max_size, raise_max_size):
    """(batch size, strategy used, why) for the operator's ``strategy`` and the group's limits.

    - ``batch``: ``batch_size`` instances at a time, each batch surged, drained and removed before the next;
    - ``window``: a sliding window of ``batch_size``: the same surge and peak as ``batch``, but an old node leaves as soon
      as its own drain ends and a replacement takes its place in the window, instead of the batch waiting for its slowest;
    - ``surge``: every replacement first, then one drain of every old node (the roll then lasts about one boot
      plus the longest job) when the maximum size allows ``target + outdated`` (or may be raised); else the
      largest surge the maximum size allows, in batches of that size;
    - ``auto``: ``surge`` when the group's maximum size already has room for it (nothing to raise), the
      largest surge the head-room allows when there is some, else ``batch``."""
    if strategy not in STRATEGIES:
        raise RollError("strategy %r is not one of %s." % (strategy, ", ".join(STRATEGIES)))
    if not outdated_count:
        return 0, strategy, "nothing to replace"
    room = None if max_size is None else max(0, max_size - target)
    if strategy == "batch":
        return parse_batch_size(batch_size, outdated_count), "batch", "strategy=batch: batches of batch_size in series"
    if strategy == "window":
        size = parse_batch_size(batch_size, outdated_count)
        return size, "window", ("strategy=window: at most %d old node(s) drain at a time; each leaves as soon as its jobs end and the "
                                "next enters once its replacement is ready (the peak of batches of %d, without waiting for a "
                                "batch's slowest drain)" % (size, size))
    if strategy == "surge":
        if room is None or room >= outdated_count:
            return outdated_count, "surge", "strategy=surge: the maximum size has room for every replacement at once"
        if raise_max_size:
            return outdated_count, "surge", ("strategy=surge: every replacement at once, MaxSize raised from %d to %d for the roll"
                                             % (max_size, target + outdated_count))
        if room:
            return room, "surge", ("strategy=surge: MaxSize %d leaves room for %d replacement(s) at a time (raise_max_size=false)"
                                   % (max_size, room))
        raise RollError("strategy=surge needs head-room: MaxSize %d equals the desired size %d and raise_max_size is false. Set "
                        "raise_max_size=true, raise MaxSize, or use strategy=batch with max_unavailable." % (max_size, target))
    # auto
    if room is None:
        return parse_batch_size(batch_size, outdated_count), "batch", (
            "strategy=auto: the group has no maximum size to tell the head-room by (GCP), so batches of batch_size; "
            "set strategy=surge for every replacement at once")
    if room >= outdated_count:
        return outdated_count, "surge", "strategy=auto: the maximum size has room for every replacement at once (full surge)"
    if room:
        return room, "surge", ("strategy=auto: MaxSize %d leaves room for %d of %d replacement(s) at a time (the largest surge "
                               "that needs no MaxSize change)" % (max_size, room, outdated_count))
    return parse_batch_size(batch_size, outdated_count), "batch", (
        "strategy=auto: no head-room (MaxSize %d = desired %d), so batches of batch_size in series, raising MaxSize by a batch "
        "for each surge" % (max_size, target))


def make_plan(group, batch_size, max_unavailable=0, target=None, in_progress_ids=(), node_ids=None, serving_ids=None,
              strategy="batch", raise_max_size=True):
    """The plan for ``group`` (a GroupState) as a dict, the shape the module returns.

    ``target``: the desired size to keep (default the group's current desired size).
    ``node_ids``: instance id -> Nomad node id, to show in the plan.
    ``serving_ids``: the instances whose Nomad node is ready (default: all)."""
    if max_unavailable < 0:
        raise RollError("max_unavailable must be 0 or more, got %r." % max_unavailable)
    node_ids = node_ids or {}
    target = group.desired if target is None else target
    outdated = order_outdated(group.outdated(), set(in_progress_ids), serving_ids)
    size, used, why = choose_strategy(strategy, batch_size, len(outdated), target, group.max_size, raise_max_size)
    if used == "window":
        # one sliding window over every outdated instance, ``size`` wide
        batches = [[inst.id for inst in outdated]] if outdated else []
    else:
        batches = [[inst.id for inst in outdated[i:i + size]] for i in range(0, len(outdated), size)] if size else []
    floor = max(0, target - max_unavailable)
    surges = [batch_surge(min(len(b), size), max_unavailable) for b in batches]
    # The group's size while a batch is in flight: every outdated instance not yet removed, plus enough
    # current ones that the batch's replacements are there before it is drained.
    peak = target
    remaining = len(outdated)
    live_current = len(group.current())
    for batch in batches:
        if used == "window":
            peak = max(peak, target + batch_surge(min(size, len(batch)), max_unavailable), len(group.live()))
            break
        after = remaining - len(batch)
        needed_before = max(0, target - after - max_unavailable)
        peak = max(peak, remaining + max(live_current, needed_before))
        live_current = max(live_current, needed_before)
        remaining = after
    return {
        "group": group.name,
        "config": group.config,
        "target_desired": target,
        "current_desired": group.desired,
        "max_size": group.max_size,
        "batch_size": size,
        "strategy": used,
        "strategy_reason": why,
        "max_unavailable": max_unavailable,
        "capacity_floor": floor,
        "peak_desired": peak if batches else group.desired,
        "batches": batches,
        "surge": surges,
        "outdated": [{"instance_id": i.id, "reason": i.reason, "state": i.state, "node_id": node_ids.get(i.id)} for i in outdated],
        "up_to_date": sorted(i.id for i in group.current()),
    }
