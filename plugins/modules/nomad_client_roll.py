#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nomad_client_roll
short_description: Replace outdated Nomad clients in an AWS Auto Scaling group or a GCP managed instance group without killing a job
version_added: 0.1.0
description:
  - Replaces the Nomad clients of a CircleCI Server installation that run on an outdated configuration (an old
    launch configuration, launch template version or AMI on AWS; an old instance template on GCP), for example
    after a server-terraform Nomad module change, a new AMI, or the 2.19 launch configuration update.
  - "Batch by batch: raises the group's desired size by the batch (surge), waits until the new instances are
    Nomad nodes that are C(ready) and C(eligible), marks every node of the batch ineligible, drains them, waits
    until their jobs have finished, then terminates them through the group, lowering its desired size."
  - No old node is terminated before its replacement is ready, and none while an allocation runs on it. A drain
    that outlasts O(drain_deadline) stops the roll (unless O(force_after_deadline)) and leaves the group at a safe,
    reported size; a new node that never becomes ready stops it before anything is drained.
  - Re-running after an interruption resumes from the remaining outdated instances; re-running after a complete
    roll changes nothing.
  - On AWS the roll records the size to return to in a tag on the group (C(circleci.server/nomad-client-roll)),
    suspends the C(AZRebalance), C(AlarmNotification) and C(ScheduledActions) processes and raises C(MaxSize) when
    the surge needs it; it puts all of them back at the end. On GCP it records the size, what it turned off, and its lock
    in one project metadata item, C(circleci-server-nomad-client-roll--<zone or region>--<group>), written with the
    metadata's fingerprint (lock and state in one write; of two rolls at once, one gets the lock) and removed at the end;
    it sets the group's autoscaler (server-terraform attaches one) to mode C(OFF) for the roll and puts back the mode
    it had (C(ON) or C(ONLY_SCALE_OUT)) at the end. Zonal (O(zone)) and regional (O(region)) groups.
  - On a stop with the group still surged, C(AZRebalance) stays suspended and the GCP autoscaler stays C(OFF) (both
    would remove instances, undrained ones among them); the re-run that finishes the roll puts them back.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.nomad
  - circleci.server.k8s_auth
  - circleci.server.gcp_auth
attributes:
  check_mode:
    support: full
    description: Reads the group and the Nomad nodes and returns the plan; changes nothing.
  diff_mode:
    support: none
    description: The plan is returned in RV(plan) instead.
requirements:
  - boto3 (provider V(aws))
options:
  provider:
    description: Where the Nomad clients run.
    type: str
    choices: [aws, gcp]
    required: true
  group_name:
    description:
      - The Auto Scaling group (AWS) or managed instance group (GCP) of the Nomad clients.
      - server-terraform names them C(<basename>-circleci-nomad-clients-asg) and C(<name>-nomad-client-group) (4.9.0 and later).
    type: str
    required: true
    aliases: [name]
  region:
    description:
      - AWS region of the group. On GCP, the region of a regional managed instance group (use O(zone) for a zonal one).
      - On AWS, can also be set with E(AWS_REGION) or E(AWS_DEFAULT_REGION).
    type: str
  endpoint_url:
    description: A different AWS endpoint (for example a lab's). Also E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  aws_profile:
    description: The AWS credentials profile. Without credentials options boto3's default chain is used.
    type: str
  aws_access_key:
    description: AWS access key id.
    type: str
  aws_secret_key:
    description: AWS secret access key. Never returned or logged.
    type: str
  aws_session_token:
    description: AWS session token. Never returned or logged.
    type: str
  image_id:
    description:
      - AWS only. Instances not launched from this AMI count as outdated too, whatever their launch template says.
      - By default the AMI of the group's launch configuration or launch template version is expected.
    type: str
  suspend_processes:
    description: AWS only. The Auto Scaling processes to suspend during the roll (only those not already suspended are touched and resumed).
    type: list
    elements: str
    default: [AZRebalance, AlarmNotification, ScheduledActions]
  complete_lifecycle_actions:
    description:
      - AWS only, for a group with a termination lifecycle hook (C(autoscaling:EC2_INSTANCE_TERMINATING)), for example one that
        drains the Nomad client before it dies. Terminating an instance puts it in C(Terminating:Wait), still running but no longer
        counted toward the desired capacity, until the hook's action is completed or its heartbeat timeout passes (an hour by
        default, extendable up to 48 hours).
      - V(true) (the default) completes the action with C(CONTINUE) for each instance the roll terminated, right after the
        termination. The roll terminates an instance only once its own drain is over and nothing runs on it, which is the work a
        Nomad client's termination hook is there for, so waiting for the heartbeat timeout would only keep drained clients
        running for an hour. C(CONTINUE), not C(ABANDON), so that the group's other termination hooks still run and an instance
        lifecycle policy does not retain the instance. A run that stops between a termination and the completion leaves the
        instance waiting; the re-run completes it (its Nomad node carries the roll's drain metadata and runs nothing).
      - V(false) leaves the waiting instances to the hook's own agent (for example one that copies logs off the instance) or to
        its heartbeat timeout; they never count as capacity either way.
      - The credentials then need C(autoscaling:DescribeLifecycleHooks), C(DescribeAutoScalingInstances) and
        C(CompleteLifecycleAction).
    type: bool
    default: true
  raise_max_size:
    description:
      - AWS only. Raise the group's C(MaxSize) when the surge needs it, and put it back at the end.
      - When false and the group lacks head-room, the module fails before changing anything.
    type: bool
    default: true
  project:
    description: GCP project of the managed instance group. Also E(GCP_PROJECT).
    type: str
  zone:
    description: GCP zone of a zonal managed instance group.
    type: str
  gcp_base_url:
    description:
      - The Compute Engine v1 API base URL, for a private endpoint or a lab's stand-in.
    type: str
    default: https://compute.googleapis.com/compute/v1
  instance_template:
    description:
      - GCP only. The instance template (name or URL) the clients must run. When the group uses another one, the
        module first sets it on the group together with an C(OPPORTUNISTIC) update policy, so that GCP does not
        replace the instances itself, and then rolls.
      - Without it, the group's own template is the current one; a group with a C(PROACTIVE) update policy and
        outdated instances is refused, since GCP is then already replacing them without draining Nomad.
    type: str
  strategy:
    description:
      - The roll's pace. The plan (check mode) returns the strategy used and why in RV(plan.strategy) and RV(plan.strategy_reason).
      - V(batch) replaces O(batch_size) instances at a time, one batch after the other (surge, drain, terminate).
      - V(surge) launches every replacement first and drains each old node as soon as a replacement is ready; each old node is
        terminated when its own drain ends, so the roll lasts about one boot plus the longest job. It raises C(MaxSize) for it
        when O(raise_max_size) allows; otherwise it takes the largest surge the maximum size allows, in batches of that size.
      - V(window) is a sliding window of O(batch_size) with the same surge and peak size as V(batch), but each old node leaves as
        soon as its own jobs end and the next one is drained once its replacement is ready, so one long job holds one slot,
        not a whole batch.
      - V(auto) takes V(surge) when the group's maximum size already has room for it (full surge, or the largest surge the
        head-room allows), else V(batch). On GCP (no maximum size) V(auto) is V(batch).
      - In every strategy no old node is drained before its replacements are ready, eligible Nomad nodes, and none is
        terminated while a job runs on it.
    type: str
    choices: [auto, batch, surge, window]
    default: auto
  batch_size:
    description:
      - How many instances a batch replaces, as a number (V(2)) or a percentage of the outdated instances (V(25%)).
    type: str
    default: "25%"
  max_unavailable:
    description:
      - How many ready, eligible Nomad nodes below the group's desired size the roll may go while a batch drains.
      - V(0) (the default) surges the whole batch first; a larger value surges less (for a group without head-room).
    type: int
    default: 0
  desired_capacity:
    description:
      - The group size to keep and return to. Defaults to the size recorded by an interrupted roll, else the current desired size.
      - Set it when resuming a roll whose recorded state was removed by hand after a stop with the group surged, so the group
        comes back to its real size.
    type: int
  drain_deadline:
    description:
      - Seconds a batch's drain may take. Without O(force_after_deadline), Nomad gets no deadline and the roll stops
        when this one passes, leaving the jobs running.
    type: int
    default: 3600
  force_after_deadline:
    description:
      - Give Nomad the deadline, so it stops the allocations still running when it passes (killing those CI jobs),
        and go on with the roll.
    type: bool
    default: false
  ignore_system_jobs:
    description: Leave system jobs' allocations running on the drained nodes (Nomad's C(IgnoreSystemJobs)).
    type: bool
    default: false
  timeout:
    description: Seconds the whole roll may take; when it passes the roll stops safely, as for O(drain_deadline).
    type: int
    default: 7200
  boot_timeout:
    description: Seconds a new instance has to become a ready, eligible Nomad node.
    type: int
    default: 900
  poll_interval:
    description: Seconds between two looks at the group and the nodes while waiting.
    type: int
    default: 10
  autoscaler_deployment:
    description:
      - The Kubernetes deployment of the Nomad Autoscaler (C(nomad.auto_scaler) in the server values), for example
        V(nomad-autoscaler). The roll records its replicas in its state, scales it to 0 before the first change to the
        group, and scales it back to exactly that count at the end, also when the roll stops or fails (a re-run after a
        crash puts back the recorded count, not the 0 it finds).
      - Unset (the default), the autoscaler is left alone; the Kubernetes connection options are then not used.
    type: str
  autoscaler_namespace:
    description: The namespace of O(autoscaler_deployment).
    type: str
    default: circleci-server
  api_timeout:
    description:
      - Seconds one AWS or GCP API call may take, retries of throttling and connection errors included. An endpoint that
        refuses connections or never answers fails after this long.
    type: float
    default: 30
  clock_factor:
    description:
      - For test labs whose services run faster than real time, how many service seconds pass per wall second.
        Durations, deadlines and timeouts are then in service seconds. Leave at V(1) for real use.
    type: float
    default: 1.0
notes:
  - The Nomad Autoscaler (C(nomad.auto_scaler) in the server values) must not scale the group during the roll. Give
    O(autoscaler_deployment) and the module pauses it, or pause it by hand. On GCP the group's own autoscaler is
    set to C(OFF) by the module (the credentials need C(compute.autoscalers.get) and C(compute.autoscalers.update)).
    A roll that finds the group's desired size changed by someone else stops with a message, before draining or
    terminating anything more.
  - An active instance refresh on the AWS group, O(max_unavailable) not below the desired size, a C(MinSize) above the
    desired size minus O(max_unavailable), an O(image_id) other than the launch template's or configuration's, and
    another roll holding the group's lock (tag C(circleci.server/nomad-client-roll-lock), with its owner and expiry)
    are refused before any change.
  - A C(terraform apply) of the Nomad module resets the AWS group's desired capacity; do not run one during a roll.
  - The Nomad token needs C(node:write), and read access to the allocations of every namespace.
  - "Why project metadata on GCP and not the group's C(description), where earlier versions kept the state: the Terraform google
    provider changes a zonal group's description in place through C(instanceGroupManagers.patch)
    (hashicorp/terraform-provider-google, resource_compute_instance_group_manager.go, the fix of issue 10323), but still marks
    it ForceNew, that is recreate the group, on a regional one (resource_compute_region_instance_group_manager.go); that
    Compute accepts the change on every group could not be confirmed. C(projects.setCommonInstanceMetadata) is writable by
    design, with a fingerprint that makes the write conditional. The credentials need C(compute.projects.get) and
    C(compute.projects.setCommonInstanceMetadata) on the project."
seealso:
  - name: Nomad node drain
    description: How Nomad drains a node, and why every node to drain is made ineligible first.
    link: https://developer.hashicorp.com/nomad/commands/node/drain
"""

EXAMPLES = r"""
- name: Show which Nomad clients a roll would replace, in which batches
  circleci.server.nomad_client_roll:
    provider: aws
    group_name: prod-circleci-nomad-clients-asg
    region: us-east-1
    nomad_address: https://nomad.example.com:4646
    nomad_ca_cert: /etc/circleci/nomad-ca.pem
    batch_size: 2
  check_mode: true
  register: roll_plan

- name: Roll the Nomad clients onto the new launch template, two at a time, never killing a job
  circleci.server.nomad_client_roll:
    provider: aws
    group_name: prod-circleci-nomad-clients-asg
    region: us-east-1
    nomad_address: https://nomad.example.com:4646
    nomad_token: "{{ nomad_management_token }}"
    nomad_ca_cert: /etc/circleci/nomad-ca.pem
    nomad_client_cert: /etc/circleci/nomad-cli.pem
    nomad_client_key: /etc/circleci/nomad-cli-key.pem
    batch_size: 2
    drain_deadline: 5400
    timeout: 21600

- name: Roll the clients of a zonal managed instance group onto its new instance template
  circleci.server.nomad_client_roll:
    provider: gcp
    project: my-project
    zone: us-central1-a
    group_name: circleci-nomad-client-group
    nomad_address: https://nomad.example.com:4646
    batch_size: 25%
"""

RETURN = r"""
plan:
  description: What the roll replaces, computed from the live group before any change.
  returned: always
  type: dict
  contains:
    group:
      description: The group's name.
      type: str
    config:
      description: The group's current configuration (launch configuration, launch template version, AMI, instance template).
      type: str
    target_desired:
      description: The desired size the group keeps, and returns to at the end.
      type: int
    batch_size:
      description: Instances per batch.
      type: int
    strategy:
      description: The strategy the roll takes (V(batch), V(surge) or V(window)), from O(strategy) and the group's maximum size.
      type: str
    strategy_reason:
      description: Why that strategy, and batch size.
      type: str
    autoscaler:
      description: With O(autoscaler_deployment), the deployment, its replicas and what the roll does with it.
      type: dict
    group_scaling:
      description: What the roll turns off on the group itself for its duration (AWS scaling processes, the GCP autoscaler).
      type: list
      elements: str
    capacity_floor:
      description: The fewest ready, eligible Nomad nodes the group may have during the roll.
      type: int
    peak_desired:
      description: The largest desired size the roll sets.
      type: int
    batches:
      description: The instance ids of each batch, in order.
      type: list
      elements: list
    outdated:
      description: The outdated instances, with why they are outdated and their Nomad node id.
      type: list
      elements: dict
    up_to_date:
      description: The instances already on the current configuration.
      type: list
      elements: str
    resuming:
      description: Whether an earlier, interrupted roll's state was found.
      type: bool
    termination_hooks:
      description: AWS, the group's termination lifecycle hooks (see O(complete_lifecycle_actions)).
      type: list
      elements: str
    lifecycle_actions:
      description:
        - AWS, instances an earlier run drained and terminated that still wait in C(Terminating:Wait) for a termination hook;
          the run completes their action first.
      type: list
      elements: str
    warnings:
      description: Things the operator should know (standby instances, reasons the roll cannot start).
      type: list
      elements: str
  sample:
    group: prod-circleci-nomad-clients-asg
    target_desired: 6
    batch_size: 2
    capacity_floor: 6
    peak_desired: 8
    batches: [["i-0a", "i-0b"], ["i-0c", "i-0d"], ["i-0e", "i-0f"]]
batches:
  description:
    - One event per batch run. Times are seconds since the roll started (service seconds with O(clock_factor)).
    - Keys C(batch), C(instances), C(nodes), C(surge), C(started), C(ready), C(drain_started), C(drained),
      C(terminated), C(finished), C(duration), C(allocations_drained), C(killed).
  returned: always
  type: list
  elements: dict
  sample:
    - batch: 1
      instances: ["i-0a", "i-0b"]
      nodes: ["5f1c...", "9a2e..."]
      surge: 2
      started: 0.0
      ready: 95.0
      drain_started: 95.0
      drained: 410.0
      terminated: 411.0
      finished: 411.0
      duration: 411.0
      allocations_drained: 7
      killed: 0
autoscaler:
  description: With O(autoscaler_deployment), the deployment, whether it is paused now, and the replicas it is put back to.
  returned: when O(autoscaler_deployment) is set and the roll ran
  type: dict
lifecycle_actions_completed:
  description: AWS, the terminated instances whose termination lifecycle action this run completed (C(CONTINUE)).
  returned: when the group has a termination lifecycle hook and O(complete_lifecycle_actions) is true
  type: list
  elements: str
replaced:
  description: The instances terminated by this run.
  returned: always
  type: list
  elements: str
capacity_floor:
  description: The planned floor of ready, eligible Nomad nodes (desired size minus O(max_unavailable)).
  returned: always
  type: int
min_ready_eligible:
  description: The fewest ready, eligible Nomad nodes the group had at any look during this run.
  returned: when the roll ran
  type: int
killed:
  description: Allocations that were running on a drained node and were stopped instead of finishing (0 unless O(force_after_deadline)).
  returned: always
  type: int
allocations_drained:
  description: Allocations that were running on the batches' nodes when their drain started.
  returned: always
  type: int
duration:
  description: Seconds the run took (service seconds with O(clock_factor)).
  returned: always
  type: float
msg:
  description: What happened, or why the roll stopped and what to do.
  returned: always
  type: str
"""

import copy
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.basic import env_fallback

from ansible_collections.circleci.server.plugins.module_utils.nomad import (
    HAS_REQUESTS,
    NomadError,
    client_from_params,
    nomad_argspec,
)
from ansible_collections.circleci.server.plugins.module_utils.gcp_auth import authorised_session, gcp_auth_spec
from ansible_collections.circleci.server.plugins.module_utils.k8s import K8S_AUTH_ARGSPEC
from ansible_collections.circleci.server.plugins.module_utils.roll.executor import RollOptions, Roller, RollStopped
from ansible_collections.circleci.server.plugins.module_utils.roll.model import RollError, ScaledClock, WallClock

try:
    import boto3
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False


def argument_spec():
    spec = nomad_argspec()
    spec.update(copy.deepcopy(K8S_AUTH_ARGSPEC))
    spec.update(gcp_auth_spec())
    spec.update(
        provider=dict(type="str", required=True, choices=["aws", "gcp"]),
        group_name=dict(type="str", required=True, aliases=["name"]),
        region=dict(type="str"),
        endpoint_url=dict(type="str", aliases=["aws_endpoint_url"], fallback=(env_fallback, ["AWS_ENDPOINT_URL"])),
        aws_profile=dict(type="str"),
        aws_access_key=dict(type="str", no_log=False),
        aws_secret_key=dict(type="str", no_log=True),
        aws_session_token=dict(type="str", no_log=True),
        image_id=dict(type="str"),
        suspend_processes=dict(type="list", elements="str", default=["AZRebalance", "AlarmNotification", "ScheduledActions"]),
        raise_max_size=dict(type="bool", default=True),
        complete_lifecycle_actions=dict(type="bool", default=True),
        project=dict(type="str", fallback=(env_fallback, ["GCP_PROJECT"])),
        zone=dict(type="str"),
        gcp_base_url=dict(type="str", default="https://compute.googleapis.com/compute/v1"),
        instance_template=dict(type="str"),
        batch_size=dict(type="str", default="25%"),
        max_unavailable=dict(type="int", default=0),
        desired_capacity=dict(type="int"),
        drain_deadline=dict(type="int", default=3600),
        force_after_deadline=dict(type="bool", default=False),
        ignore_system_jobs=dict(type="bool", default=False),
        timeout=dict(type="int", default=7200),
        boot_timeout=dict(type="int", default=900),
        poll_interval=dict(type="int", default=10),
        strategy=dict(type="str", default="auto", choices=["auto", "batch", "surge", "window"]),
        autoscaler_deployment=dict(type="str"),
        autoscaler_namespace=dict(type="str", default="circleci-server"),
        api_timeout=dict(type="float", default=30.0),
        clock_factor=dict(type="float", default=1.0),
    )
    return spec


def build_provider(module, clock):
    params = module.params
    if params["provider"] == "aws":
        from ansible_collections.circleci.server.plugins.module_utils.roll.aws import AwsAsgProvider
        if not HAS_BOTO3:
            module.fail_json(msg=missing_required_lib("boto3"))
        session = boto3.session.Session(profile_name=params["aws_profile"], aws_access_key_id=params["aws_access_key"],
                                        aws_secret_access_key=params["aws_secret_key"], aws_session_token=params["aws_session_token"],
                                        region_name=params["region"])
        if not session.region_name:
            module.fail_json(msg="No AWS region: set region (or AWS_REGION) to the region of group %s." % params["group_name"])
        from ansible_collections.circleci.server.plugins.module_utils.roll.aws import botocore_config
        config = botocore_config(params["api_timeout"])
        autoscaling = session.client("autoscaling", endpoint_url=params["endpoint_url"], config=config)
        ec2 = session.client("ec2", endpoint_url=params["endpoint_url"], config=config)
        return AwsAsgProvider(params["group_name"], autoscaling, ec2, image_id=params["image_id"],
                              suspend_processes=params["suspend_processes"], api_timeout=params["api_timeout"],
                              complete_lifecycle_actions=params["complete_lifecycle_actions"])
    from ansible_collections.circleci.server.plugins.module_utils.roll.gcp import GcpMigProvider
    session = authorised_session(module, ["https://www.googleapis.com/auth/compute"])
    return GcpMigProvider(params["project"], params["group_name"], session, zone=params["zone"],
                          region=params["region"] if not params["zone"] else None, base_url=params["gcp_base_url"],
                          clock=clock, poll_interval=max(0.5, min(2.0, params["poll_interval"])), instance_template=params["instance_template"],
                          api_timeout=params["api_timeout"])


def build_pauser(module, clock):
    params = module.params
    if not params["autoscaler_deployment"]:
        return None
    from ansible_collections.circleci.server.plugins.module_utils import k8s
    from ansible_collections.circleci.server.plugins.module_utils.roll.autoscaler import DeploymentPause
    if not k8s.HAS_K8S:
        module.fail_json(msg=k8s.missing_library_message())
    try:
        api_client = k8s.api_client_from_params(params)
    except k8s.K8sError as exc:
        module.fail_json(msg="autoscaler_deployment is set, but the Kubernetes connection failed: %s" % exc)
    import kubernetes
    return DeploymentPause(kubernetes.client.AppsV1Api(api_client), params["autoscaler_namespace"], params["autoscaler_deployment"],
                           clock=clock, request_timeout=params["api_timeout"])


def build_nomad(module):
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    return client_from_params(module.params)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("provider", "gcp", ("project",))],
        supports_check_mode=True,
    )
    params = module.params
    if params["clock_factor"] <= 0:
        module.fail_json(msg="clock_factor must be positive, got %s." % params["clock_factor"])
    for name in ("api_timeout", "nomad_timeout"):
        if params[name] <= 0:
            module.fail_json(msg="%s must be a positive number of seconds, got %s." % (name, params[name]))
    clock = ScaledClock(params["clock_factor"]) if params["clock_factor"] != 1.0 else WallClock()
    options = RollOptions(batch_size=params["batch_size"], max_unavailable=params["max_unavailable"],
                          drain_deadline=params["drain_deadline"], force_after_deadline=params["force_after_deadline"],
                          ignore_system_jobs=params["ignore_system_jobs"], timeout=params["timeout"],
                          boot_timeout=params["boot_timeout"], poll_interval=params["poll_interval"],
                          desired_capacity=params["desired_capacity"], raise_max_size=params["raise_max_size"],
                          strategy=params["strategy"])
    try:
        nomad = build_nomad(module)
        provider = build_provider(module, clock)
        roller = Roller(provider, nomad, options, clock, pauser=build_pauser(module, clock))
        if module.check_mode:
            plan = roller.plan()
            count = sum(len(b) for b in plan["batches"])
            msg = ("Would replace %d instance(s) in %d batch(es) (strategy %s: %s), keeping at least %d ready, eligible Nomad nodes."
                   % (count, len(plan["batches"]), plan["strategy"], plan["strategy_reason"], plan["capacity_floor"]) if count else
                   "Every instance of %s is on the current configuration: nothing to replace." % plan["group"])
            for warning in plan["warnings"]:
                module.warn(warning)
            if plan["lifecycle_actions"]:
                msg += (" Would complete the termination lifecycle action of %d drained instance(s) an earlier run terminated (%s)."
                        % (len(plan["lifecycle_actions"]), ", ".join(plan["lifecycle_actions"])))
            module.exit_json(changed=bool(count or plan["lifecycle_actions"]), plan=plan, batches=[], replaced=[], capacity_floor=plan["capacity_floor"],
                             killed=0, allocations_drained=0, duration=0.0, msg=msg)
        result = roller.run()
    except RollStopped as exc:
        partial = dict(exc.result)
        partial.pop("msg", None)
        for warning in partial.pop("warnings", []):
            module.warn(warning)
        module.fail_json(msg=str(exc), **partial)
    except (RollError, NomadError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="Unexpected error during the Nomad client roll: %s. The roll can be re-run: it resumes from the live state."
                         % exc, exception=traceback.format_exc())
    for warning in result["plan"].get("warnings", []) + result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
