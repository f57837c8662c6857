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


def order_outdated(outdated, in_progress_ids):
    """Instances already taken out of service by an earlier run (ineligible or draining) come first, so an
    interrupted batch is finished before a new one starts; the rest keep a stable order by id."""
    return sorted(outdated, key=lambda inst: (inst.id not in in_progress_ids, inst.id))


def batch_surge(batch_len, max_unavailable):
    """Instances added before a batch is drained: the batch, less what may be unavailable."""
    return max(0, batch_len - max_unavailable)


def make_plan(group, batch_size, max_unavailable=0, target=None, in_progress_ids=(), node_ids=None):
    """The plan for ``group`` (a GroupState) as a dict, the shape the module returns.

    ``target``: the desired size to keep (default the group's current desired size).
    ``node_ids``: instance id -> Nomad node id, to show in the plan."""
    if max_unavailable < 0:
        raise RollError("max_unavailable must be 0 or more, got %r." % max_unavailable)
    node_ids = node_ids or {}
    target = group.desired if target is None else target
    outdated = order_outdated(group.outdated(), set(in_progress_ids))
    size = parse_batch_size(batch_size, len(outdated)) if outdated else 0
    batches = [[inst.id for inst in outdated[i:i + size]] for i in range(0, len(outdated), size)] if size else []
    floor = max(0, target - max_unavailable)
    surges = [batch_surge(len(b), max_unavailable) for b in batches]
    # The group's size while a batch is in flight: every outdated instance not yet removed, plus enough
    # current ones that the batch's replacements are there before it is drained.
    peak = target
    remaining = len(outdated)
    live_current = len(group.current())
    for batch in batches:
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
        "max_unavailable": max_unavailable,
        "capacity_floor": floor,
        "peak_desired": peak if batches else group.desired,
        "batches": batches,
        "surge": surges,
        "outdated": [{"instance_id": i.id, "reason": i.reason, "state": i.state, "node_id": node_ids.get(i.id)} for i in outdated],
        "up_to_date": sorted(i.id for i in group.current()),
    }
