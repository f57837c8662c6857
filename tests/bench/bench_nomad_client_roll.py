"""Bench: replacing 50 Nomad clients in the lab, every way, side by side, in one run.

    python -m tests.bench.bench_nomad_client_roll [--clients 50] [--batch 10] [--factor 20]

(from the checkout, with the venv's python; it finds the collection under .cache/collections by itself.)

Each strategy gets a fresh lab (AWS Auto Scaling group on a launch template, Nomad, the world with a boot
delay of 90 lab s, jobs of 1-20 min arriving all the time) that first runs for 20 lab minutes so every
client has work, then gets a new launch template version and is replaced:

- ``roll batch``, ``roll window``, ``roll surge (full)``, ``roll surge (MaxSize N+batch)``: the collection's roll
  (planner + executor, in process, on the lab clock) with strategy batch, window (a sliding window of the batch
  size: the same peak), surge with MaxSize raised for every replacement, and surge limited to the head-room of a
  MaxSize of N + batch (raise_max_size false);
- ``terminate all``: what the 2.19 docs say ("terminate them all and let the group recreate them");
- ``instance refresh``: AWS instance refresh (MinHealthyPercentage 90, warm-up = boot delay), which keeps
  the instance count but does not drain Nomad.

For each: jobs killed, the floor of ready+eligible Nomad nodes during the replacement, the time in lab
seconds and its ratio to boot + longest job (the least any roll that drains can take), and each roll's batches.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import ansible_collections.circleci.server  # noqa: F401  pylint: disable=unused-import
except ImportError:
    # Run from the checkout without ANSIBLE_COLLECTIONS_PATH: the collection is linked under .cache/collections.
    sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))

from ansible_collections.circleci.server.plugins.module_utils.nomad import NomadClient
from ansible_collections.circleci.server.plugins.module_utils.roll.aws import AwsAsgProvider
from ansible_collections.circleci.server.plugins.module_utils.roll.executor import RollOptions, Roller
from tests.lab.aws import AwsLab
from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.nomad import NomadLab
from tests.lab.world import JobFeeder, World

GROUP = "bench-circleci-nomad-clients-asg"
BOOT = 90.0
JOBS = (60.0, 1200.0)
WARMUP = 1200.0


def utilisation_rate(clients, slots=4, target=0.5):
    """Jobs per minute that keep about ``target`` of the slots busy."""
    return clients * slots * target / (sum(JOBS) / 2.0) * 60.0


class Lab:
    def __init__(self, clock, aws, clients, seed, warmup_factor=None):
        self.clock = clock
        self.aws = aws
        aws.reset()
        self.nomad = NomadLab(clock, aws.request_log, aws.faults)
        self.nomad.start()
        ec2, autoscaling = aws.client("ec2"), aws.client("autoscaling")
        ec2.create_launch_template(LaunchTemplateName="bench-nomad-clients-", LaunchTemplateData={"ImageId": aws.image_id(), "InstanceType": "t3a.2xlarge"})
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=0, MaxSize=clients, DesiredCapacity=clients,
                                              LaunchTemplate={"LaunchTemplateName": "bench-nomad-clients-", "Version": "$Latest"},
                                              AvailabilityZones=[aws.region + "a"], HealthCheckGracePeriod=int(BOOT))
        self.world = World(clock, self.nomad, aws_region=aws.region, aws_lock=aws.lock, boot_delay=BOOT, poll_interval=2.0)
        self.world.start()
        self.feeder = JobFeeder(clock, self.nomad, rate_per_minute=utilisation_rate(clients), duration_range=JOBS, seed=seed)
        self.feeder.start()
        roll_factor = clock.factor
        if warmup_factor:
            set_factor(clock, warmup_factor)  # nothing is measured during the warm-up: it may run faster
        try:
            clock.sleep(WARMUP)
        finally:
            set_factor(clock, roll_factor)
        ec2.create_launch_template_version(LaunchTemplateName="bench-nomad-clients-", SourceVersion="1",
                                           LaunchTemplateData={"UserData": "IyEvYmluL3NoCmVjaG8gbmV3Cg=="})

    def ready_eligible(self):
        return sum(1 for n in self.nomad.nodes() if n["status"] == "ready" and n["eligibility"] == "eligible")

    def stop(self):
        self.feeder.stop()
        self.world.stop()
        self.nomad.stop()


def set_factor(clock, factor):
    """Change the lab clock's speed from now on, without a jump in lab time (the stand-ins read ``now()``)."""
    now = clock.now()
    clock._start, clock._wall_start, clock.factor = now, time.monotonic(), float(factor)  # pylint: disable=protected-access


def wait_until(clock, predicate, lab_timeout):
    deadline = clock.now() + lab_timeout
    while not predicate():
        if clock.now() > deadline:
            raise RuntimeError("bench: timed out")
        time.sleep(0.02)


def measure(lab, started, killed_before, extra=None):
    ended = lab.clock.now()
    row = {"killed": lab.nomad.stats()["killed"] - killed_before, "floor": lab.nomad.capacity_floor("ready_eligible", since=started, until=ended),
           "duration": round(ended - started, 1)}
    row.update(extra or {})
    return row


def run_roll(lab, clients, batch, strategy="batch", max_size=None):
    nomad = NomadClient(lab.nomad.base_url)
    autoscaling = lab.aws.client("autoscaling")
    if max_size is not None:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=max_size)
    provider = AwsAsgProvider(GROUP, autoscaling, lab.aws.client("ec2"))
    options = RollOptions(batch_size=str(batch), drain_deadline=3600, boot_timeout=900, poll_interval=10, timeout=40000,
                          strategy=strategy, raise_max_size=max_size is None)
    started, killed = lab.clock.now(), lab.nomad.stats()["killed"]
    result = Roller(provider, nomad, options, clock=lab.clock).run()
    return measure(lab, started, killed, {"replaced": len(result["replaced"]), "batches": result["batches"],
                                          "reported_duration": result["duration"], "reported_killed": result["killed"],
                                          "strategy": "%s: %s" % (result["plan"]["strategy"], result["plan"]["strategy_reason"])})


def run_terminate_all(lab, clients, batch):  # pylint: disable=unused-argument
    autoscaling = lab.aws.client("autoscaling")
    started, killed = lab.clock.now(), lab.nomad.stats()["killed"]
    for instance in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]["Instances"]:
        autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance["InstanceId"], ShouldDecrementDesiredCapacity=False)
    lab.clock.sleep(5)
    wait_until(lab.clock, lambda: lab.ready_eligible() >= clients, 3600)
    return measure(lab, started, killed, {"replaced": clients})


def run_instance_refresh(lab, clients, batch):  # pylint: disable=unused-argument
    autoscaling = lab.aws.client("autoscaling")
    started, killed = lab.clock.now(), lab.nomad.stats()["killed"]
    refresh = autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP, Strategy="Rolling",
                                                 Preferences={"MinHealthyPercentage": 90, "InstanceWarmup": int(BOOT)})["InstanceRefreshId"]

    def done():
        found = autoscaling.describe_instance_refreshes(AutoScalingGroupName=GROUP, InstanceRefreshIds=[refresh])["InstanceRefreshes"]
        return found[0]["Status"] in ("Successful", "Failed", "Cancelled")
    wait_until(lab.clock, done, 36000)
    wait_until(lab.clock, lambda: lab.ready_eligible() >= clients, 3600)
    return measure(lab, started, killed, {"replaced": clients})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10)
    # Every wall second an API call of the lab takes counts ``factor`` lab seconds: at x50 on a loaded 2-core machine a moto
    # call of 0.3-1 s weighs 15-50 lab s, and at x20 6-20 lab s, far more than a real AWS call (0.05-0.3 s): the roll's own
    # calls were charged 20-50 times their cost, more the more loaded the machine. x10 charges a loaded moto call 3-10 lab s,
    # still above a real call. The warm-up measures nothing and runs at --warmup-factor.
    parser.add_argument("--factor", type=float, default=10.0, help="lab seconds per wall second while the clients are replaced")
    parser.add_argument("--warmup-factor", type=float, default=50.0, help="lab seconds per wall second during the 20-minute warm-up")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", nargs="*", help="run only the strategies whose name contains one of these words")
    args = parser.parse_args(argv)
    clock = LabClock(args.factor)
    workdir = tempfile.mkdtemp(prefix="bench-roll-")
    aws = AwsLab(clock, RequestLog(os.path.join(workdir, "requests.jsonl"), clock), FaultInjector())
    aws.start()
    began = time.monotonic()
    rows = {}
    runs = (
        ("roll batch", lambda lab: run_roll(lab, args.clients, args.batch, "batch")),
        ("roll window", lambda lab: run_roll(lab, args.clients, args.batch, "window")),
        ("roll surge (full)", lambda lab: run_roll(lab, args.clients, args.batch, "surge")),
        ("roll surge (MaxSize N+batch)", lambda lab: run_roll(lab, args.clients, args.batch, "auto", max_size=args.clients + args.batch)),
        ("terminate all (naive)", lambda lab: run_terminate_all(lab, args.clients, args.batch)),
        ("instance refresh", lambda lab: run_instance_refresh(lab, args.clients, args.batch)),
    )
    try:
        for name, runner in runs:
            if args.only and not any(word in name for word in args.only):
                continue
            lab = Lab(clock, aws, args.clients, args.seed, warmup_factor=args.warmup_factor)
            try:
                rows[name] = runner(lab)
            finally:
                lab.stop()
    finally:
        aws.stop()
    yardstick = BOOT + JOBS[1]
    print("%d clients, batch %d, boot %ds, jobs %d-%d s (about half the slots busy), clock x%g (warm-up x%g), bench wall time %.0f s, "
          "load average %s" % (args.clients, args.batch, BOOT, JOBS[0], JOBS[1], args.factor, args.warmup_factor, time.monotonic() - began,
                               " ".join("%.1f" % v for v in os.getloadavg())))
    print()
    print("| strategy | jobs killed | floor of ready+eligible nodes (desired %d) | lab seconds | ratio to boot + longest job (%.0f s) |"
          % (args.clients, yardstick))
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print("| %s | %d | %s | %.0f | %.2f |" % (name, row["killed"], row["floor"], row["duration"], row["duration"] / yardstick))
    for name, row in rows.items():
        if "batches" not in row:
            continue
        print()
        print("%s (%s), batches in lab seconds from the roll's start; reported killed %d, duration %.0f:"
              % (name, row["strategy"], row["reported_killed"], row["reported_duration"]))
        print("| batch | instances | surge | ready | drain started | drained | terminated | duration | allocations drained | killed |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for event in row["batches"]:
            print("| %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %d |" % (
                event["batch"], len(event["instances"]), event["surge"], event["ready"], event["drain_started"], event["drained"],
                event["terminated"], event["duration"], event["allocations_drained"], event["killed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
