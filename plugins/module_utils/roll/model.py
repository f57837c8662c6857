# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the planner, the executor and the providers share: the group as seen now, errors, clocks.

A provider (``aws.AwsAsgProvider``, ``gcp.GcpMigProvider``, or a test fake) implements::

    kind: str                                   "aws" or "gcp"
    describe() -> GroupState                    read only
    set_capacity(desired)                       raise (never lower) the desired size; raises MaxSize if needed
    terminate(instance_ids)                     remove instances, decrementing the desired size
    set_max_size(max_size)                      AWS only (GroupState.max_size is None elsewhere)
    suspend_scaling() -> list[str]              pause what would change capacity behind the roll's back
    resume_scaling(list[str])                   undo exactly what suspend_scaling returned
    load_state() -> dict | None                 the roll's saved state (target size ...), None if none
    save_state(dict) / clear_state()            where supported (AWS: a tag on the group); else no-ops
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Normalised instance states.
PENDING = "pending"
IN_SERVICE = "in_service"
TERMINATING = "terminating"
# Held by a termination lifecycle hook (AWS Terminating:Wait): still running, no longer capacity.
TERMINATING_WAIT = "terminating_wait"
STANDBY = "standby"
OTHER = "other"
LIVE_STATES = (PENDING, IN_SERVICE)


class RollError(Exception):
    """The roll cannot go on. ``safe`` tells whether the group was left in a safe state on purpose."""

    def __init__(self, message, safe=True):
        super().__init__(message)
        self.safe = safe


class ProviderError(RollError):
    """A cloud API call failed (after retries)."""


@dataclass
class GroupInstance:
    id: str
    up_to_date: bool
    state: str = IN_SERVICE
    reason: str = ""
    # Strings a Nomad node of this instance may be known by (instance id, name, private IP, hostname).
    keys: tuple = ()
    launched: str = ""

    @property
    def live(self):
        return self.state in LIVE_STATES


@dataclass
class GroupState:
    name: str
    desired: int
    min_size: int = 0
    max_size: int | None = None
    instances: list = field(default_factory=list)
    config: str = ""
    warnings: list = field(default_factory=list)
    # Reasons the roll must not start (reported by check mode as warnings).
    blockers: list = field(default_factory=list)

    def live(self):
        return [i for i in self.instances if i.live]

    def outdated(self):
        return [i for i in self.instances if i.live and not i.up_to_date]

    def current(self):
        return [i for i in self.instances if i.live and i.up_to_date]

    def by_id(self):
        return {i.id: i for i in self.instances}


class WallClock:
    """Real time: monotonic seconds, real sleeps."""

    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(max(0.0, seconds))


class ScaledClock:
    """For labs whose services run ``factor`` times faster than the wall clock: durations and sleeps are
    expressed in the services' (lab) seconds."""

    def __init__(self, factor=1.0):
        if factor <= 0:
            raise ValueError("clock factor must be positive, got %r" % factor)
        self.factor = float(factor)
        self._origin = time.monotonic()

    def now(self):
        return (time.monotonic() - self._origin) * self.factor

    def sleep(self, seconds):
        time.sleep(max(0.0, seconds) / self.factor)
