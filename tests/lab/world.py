"""The lab's world: cloud instances become Nomad clients, and CI jobs keep arriving.

``World`` stands in for what happens on a real Nomad client host: an instance launched by an AWS
autoscaling group (read from moto's in-process backend, so it works with the lab's moto server) or by a
GCP managed instance group (``GcpLab``) boots, and ``boot_delay`` lab seconds after it started running its
Nomad agent registers with the servers (``NomadLab.register_node``); when the instance is terminated,
stopped or deleted, its node goes ``down`` (its running allocations are lost: killed). Node names and
attributes are those the Nomad fingerprinters give on each cloud: AWS ``Name`` is the private DNS name and
``unique.platform.aws.instance-id`` the instance id; GCP ``Name`` and ``unique.hostname`` are the instance
name and ``unique.platform.gce.id`` the instance id. A GCP instance that is recreated gets a new id, so a
new node (with the same name, as on GCP) while the old one goes down.

``JobFeeder`` stands in for CircleCI's users: CI jobs arrive as a Poisson process at ``rate_per_minute``
with durations uniform in ``duration_range`` (lab seconds), deterministic for a seed; arrival times are
exact in lab time whatever the polling granularity.

``World.boot_failure`` (a predicate on the new instance) makes chosen instances never join, the way a
bad AMI or user data would, so a roll's "node never becomes ready" path can be tested.

Not modelled: an agent that joins and then fails, instance health checks, heartbeat delay beyond
``down_delay``, spot interruptions.
"""
from __future__ import annotations

import random
import threading

AWS_ALIVE = ("pending", "running")


class World:  # pylint: disable=too-many-instance-attributes
    """Registers cloud instances as Nomad nodes after a boot delay and marks them down when they go away."""

    def __init__(self, clock, nomad, gcp=None, aws_region="us-east-1", boot_delay=60.0, poll_interval=2.0,
                 aws=True, aws_account_id=None, slots=4, node_class="linux-64bit", down_delay=0.0,
                 register_existing=True, min_wall_poll=0.02, aws_lock=None, aws_groups=None):
        self.clock = clock
        # Only these autoscaling groups (None: every group in the region).
        self.aws_groups = set(aws_groups) if aws_groups is not None else None
        # AwsLab.lock: moto's backends are read while its server thread may change them.
        self.aws_lock = aws_lock
        self.nomad = nomad
        self.gcp = gcp
        self.aws = aws
        self.aws_region = aws_region
        self.aws_account_id = aws_account_id
        self.boot_delay = float(boot_delay)
        self.poll_interval = float(poll_interval)
        self.slots = slots
        self.node_class = node_class
        self.down_delay = float(down_delay)
        self.register_existing = register_existing
        self.min_wall_poll = min_wall_poll
        self._lock = threading.Lock()
        self._known: dict = {}  # (cloud, instance id) -> {"node_id", "name", "down": bool, ...}
        self._first_poll = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        # A test sets this to a callable(info) -> bool: True for an instance whose Nomad agent never starts
        # (info: cloud, instance_id, name, attributes, and image_id on AWS or template on GCP). Its node never appears.
        self.boot_failure = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self.poll_once()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lab-world", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(max(self.min_wall_poll, self.clock.wall_seconds(self.poll_interval))):
            try:
                self.poll_once()
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # The world must keep turning; tests read ``errors`` to see what went wrong.
                self.errors.append("%s: %s" % (type(exc).__name__, exc))

    # ------------------------------------------------------------------ queries
    def node_id(self, instance_id) -> str | None:
        """The Nomad node id of an instance (AWS instance id or GCP instance id), once it was seen."""
        with self._lock:
            for (_cloud, known_id), entry in self._known.items():
                if known_id == instance_id:
                    return entry["node_id"]
        return None

    def instances(self) -> list[dict]:
        """Every instance the world saw: cloud, instance id, name, node id, registered_at, down."""
        with self._lock:
            return [dict(entry, cloud=cloud, instance_id=instance_id) for (cloud, instance_id), entry in self._known.items()]

    # ------------------------------------------------------------------ the poll
    def poll_once(self) -> None:
        now = self.clock.now()
        seen = {}
        if self.aws:
            seen.update(self._aws_instances(now))
        if self.gcp is not None:
            seen.update(self._gcp_instances(now))
        existing_at_start = self._first_poll and self.register_existing
        self._first_poll = False
        with self._lock:
            for key, info in seen.items():
                entry = self._known.get(key)
                if entry is None and info["alive"]:
                    ready_at = now if existing_at_start else info["running_since"] + self.boot_delay
                    broken = self.boot_failure is not None and self.boot_failure(dict(info, cloud=key[0], instance_id=key[1]))
                    node_id = None if broken else self.nomad.register_node(
                        info["name"], info["attributes"], node_class=self.node_class, slots=self.slots, at=ready_at)
                    self._known[key] = {"node_id": node_id, "name": info["name"], "down": False, "broken": broken,
                                        "registered_at": None if broken else max(ready_at, now)}
                elif entry is not None and not entry["down"] and not info["alive"]:
                    self._down(entry, info.get("gone_since", now), now)
            for key, entry in self._known.items():
                if key not in seen and not entry["down"]:
                    entry.setdefault("gone_since", now)
                    self._down(entry, entry["gone_since"], now)

    def _down(self, entry, since, now) -> None:
        """Marks the node down ``down_delay`` after its instance went away (a later poll does it if not yet due)."""
        entry.setdefault("gone_since", since)
        if entry["gone_since"] + self.down_delay > now:
            return
        entry["down"] = True
        if entry["node_id"] is None:
            return  # its agent never started: there is no node
        self.nomad.mark_down(entry["node_id"], at=entry["gone_since"] + self.down_delay)

    def _aws_instances(self, now) -> dict:
        # Imported here: moto is a test dependency and a GCP-only world must not need it.
        from moto.autoscaling.models import autoscaling_backends  # pylint: disable=import-outside-toplevel
        from moto.core import DEFAULT_ACCOUNT_ID  # pylint: disable=import-outside-toplevel
        from moto.ec2.models import ec2_backends  # pylint: disable=import-outside-toplevel

        account = self.aws_account_id or DEFAULT_ACCOUNT_ID
        found = {}
        if self.aws_lock is not None:
            self.aws_lock.acquire()
        try:
            groups = list(autoscaling_backends[account][self.aws_region].autoscaling_groups.values())
            for group in groups:
                if self.aws_groups is not None and group.name not in self.aws_groups:
                    continue
                for state in list(group.instance_states):
                    found[("aws", state.instance.id)] = self._aws_info(group, state.instance, now)
            # Instances detached from their group keep running Nomad: follow them through EC2.
            ec2 = ec2_backends[account][self.aws_region]
            for (cloud, instance_id), entry in list(self._known.items()):
                if cloud == "aws" and ("aws", instance_id) not in found and not entry["down"]:
                    instance = ec2.get_instance_by_id(instance_id)
                    if instance is not None:
                        found[("aws", instance_id)] = self._aws_info(None, instance, now)
        except RuntimeError:
            # moto's server thread changed a dict while we read it (no lock given): keep what we knew.
            return {key: {"alive": not entry["down"], "name": entry["name"]} for key, entry in self._known.items()
                    if key[0] == "aws"}
        finally:
            if self.aws_lock is not None:
                self.aws_lock.release()
        return found

    @staticmethod
    def _aws_info(group, instance, now) -> dict:
        state = getattr(getattr(instance, "_state", None), "name", "running")
        name = instance.private_dns_name
        attributes = {
            "unique.platform.aws.instance-id": instance.id,
            "unique.platform.aws.hostname": name,
            "unique.platform.aws.local-ipv4": instance.private_ip or "",
            "platform.aws.instance-type": getattr(instance, "instance_type", ""),
            "platform.aws.ami-id": getattr(instance, "image_id", ""),
            "platform.aws.placement.availability-zone": getattr(getattr(instance, "placement", None), "zone", "") or "",
            "unique.hostname": name.split(".", 1)[0],
            "unique.network.ip-address": instance.private_ip or "",
        }
        if group is not None:
            attributes["meta.lab_asg"] = group.name
        return {"alive": state in AWS_ALIVE, "name": name, "attributes": attributes, "running_since": now,
                "image_id": getattr(instance, "image_id", "")}

    def _gcp_instances(self, now) -> dict:
        found = {}
        for instance in self.gcp.all_instances():
            alive = instance["status"] == "RUNNING"
            if instance["status"] in ("PROVISIONING", "STAGING"):
                continue  # not booted yet: the world registers it once it runs
            found[("gcp", instance["id"])] = {
                "alive": alive, "name": instance["name"], "template": instance["template"],
                "running_since": instance["running_since"] if instance["running_since"] is not None else now,
                "gone_since": instance["stopping_since"] if instance["stopping_since"] is not None else now,
                "attributes": {
                    "unique.hostname": instance["name"],
                    "unique.platform.gce.id": instance["id"],
                    "unique.platform.gce.hostname": "%s.c.%s.internal" % (instance["name"], instance["project"]),
                    "platform.gce.zone": instance["zone"],
                    "platform.gce.machine-type": "n2-standard-8",
                    "unique.network.ip-address": instance["ip"] or "",
                    "meta.lab_mig": instance["mig"] or "",
                },
            }
        # An instance whose STOPPING already ended (deleted) is simply absent: mark it down at that time.
        for removed in self.gcp.removed:
            key = ("gcp", removed["id"])
            if key not in found and key in self._known:
                found[key] = {"alive": False, "name": removed["name"], "gone_since": removed["stopping_since"] or now}
        return found


class JobFeeder:  # pylint: disable=too-many-instance-attributes
    """Keeps CI jobs arriving in the Nomad stand-in: Poisson arrivals, uniform durations, seeded."""

    def __init__(self, clock, nomad, rate_per_minute=6.0, duration_range=(60.0, 600.0), seed=0, prefix="ci-job",
                 poll_interval=1.0, min_wall_poll=0.02):
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.clock = clock
        self.nomad = nomad
        self.rate_per_minute = float(rate_per_minute)
        self.duration_range = (float(duration_range[0]), float(duration_range[1]))
        self.prefix = prefix
        self.poll_interval = poll_interval
        self.min_wall_poll = min_wall_poll
        self._rng = random.Random(seed)
        self._next_at = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.submitted: list[tuple] = []  # (job id, lab arrival time, duration)

    def _draw(self, after) -> float:
        return after + self._rng.expovariate(self.rate_per_minute / 60.0)

    def feed_until(self, until=None) -> int:
        """Submits every job that arrived up to lab time ``until`` (default now); returns how many."""
        until = self.clock.now() if until is None else until
        count = 0
        with self._lock:
            if self._next_at is None:
                self._next_at = self._draw(self.clock.now())
            while self._next_at <= until:
                job_id = "%s-%05d" % (self.prefix, len(self.submitted) + 1)
                duration = round(self._rng.uniform(*self.duration_range), 3)
                self.nomad.submit_job(job_id, duration=duration, at=self._next_at)
                self.submitted.append((job_id, self._next_at, duration))
                self._next_at = self._draw(self._next_at)
                count += 1
        return count

    def start(self) -> None:
        if self._thread is not None:
            return
        self.feed_until()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lab-job-feeder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(self.min_wall_poll, self.clock.wall_seconds(self.poll_interval))):
            self.feed_until()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
