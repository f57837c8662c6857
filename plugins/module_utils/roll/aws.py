# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AWS back-end of a Nomad client roll: an EC2 Auto Scaling group, through boto3.

An instance is outdated when it was launched from another launch configuration, another launch template
or template version than the group's (``$Latest`` and ``$Default`` resolved), or from another AMI than
the group's configuration (or than ``image_id`` when given). Every call is retried with a jittered
exponential backoff on throttling and transient errors, like amazon.aws's ``AWSRetry.jittered_backoff``,
within ``api_timeout`` seconds per call, retries included (botocore's own retries are turned off by
``botocore_config()`` so that they do not multiply ours: a refused endpoint fails in ``api_timeout``).
"""

from __future__ import annotations

import datetime
import json
from concurrent.futures import ThreadPoolExecutor
import random
import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
    HAS_BOTOCORE = True
except ImportError:  # pragma: no cover - depends on the controller's Python
    BotoCoreError = ClientError = None
    HAS_BOTOCORE = False

from .model import IN_SERVICE, OTHER, PENDING, STANDBY, TERMINATING, TERMINATING_WAIT, GroupInstance, GroupState, ProviderError

RETRY_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "ServiceUnavailable", "InternalError", "InternalFailure", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "SlowDown", "EC2ThrottledException",
})
STATE_TAG = "circleci.server/nomad-client-roll"
LOCK_TAG = "circleci.server/nomad-client-roll-lock"
ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"


def botocore_config(api_timeout):
    """Connect and read timeouts within the call budget, and no retries of botocore's own."""
    from botocore.config import Config
    return Config(connect_timeout=min(10.0, api_timeout), read_timeout=api_timeout, retries={"total_max_attempts": 1})


def _utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text):
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return 0.0


DEFAULT_SUSPEND = ("AZRebalance", "AlarmNotification", "ScheduledActions")


def lifecycle_state(value):
    value = value or ""
    if value.startswith("Pending"):
        return PENDING
    if value == "InService":
        return IN_SERVICE
    if value == "Terminating:Wait":
        return TERMINATING_WAIT
    if value.startswith("Terminat") or value.startswith("Detach"):
        return TERMINATING
    if "Standby" in value:
        return STANDBY
    return OTHER


def error_code(exc):
    return ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code", "")


class AwsAsgProvider:
    kind = "aws"

    def __init__(self, group_name, autoscaling, ec2, image_id=None, suspend_processes=DEFAULT_SUSPEND, retries=10,
                 delay=1.0, max_delay=20.0, sleep=None, api_timeout=30.0, now=None, wall=None, complete_lifecycle_actions=True):
        self.group_name = group_name
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.image_id = image_id
        self.suspend_processes = list(suspend_processes or ())
        self.retries = retries
        self.delay = delay
        self.max_delay = max_delay
        self._sleep = sleep or time.sleep
        self._now = now or time.monotonic
        self._wall = wall or time.time
        self.api_timeout = float(api_timeout)
        self._group = None
        # What a poll reuses from the last full describe: the resolved configuration (keyed by the group's
        # configuration reference, so a change of it is seen) and the EC2 view of each instance (image, IP,
        # launch template version: fixed for an instance's life).
        self._config_cache = None
        self._ec2_cache = {}
        # Whether the roll completes (CONTINUE) the termination lifecycle actions of the instances it terminated, once drained.
        self.completes_lifecycle_actions = complete_lifecycle_actions
        self._termination_hooks = None

    # -- calls with retries ------------------------------------------------------------------------------
    def _retry(self, attempt, deadline):
        """Sleep before attempt ``attempt``; False when no attempt is left or it would start past the deadline."""
        if attempt > self.retries:
            return False
        # full jitter, as AWSRetry.jittered_backoff
        pause = random.uniform(0, min(self.max_delay, self.delay * 2 ** (attempt - 1)))
        if self._now() + pause >= deadline:
            return False
        self._sleep(pause)
        return True

    def _call(self, client, operation, what, **kwargs):
        attempt = 0
        deadline = self._now() + self.api_timeout
        while True:
            try:
                return getattr(client, operation)(**kwargs)
            except ClientError as exc:
                code = error_code(exc)
                if code in RETRY_CODES and self._retry(attempt + 1, deadline):
                    attempt += 1
                    continue
                hint = ""
                if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
                    hint = (" The credentials lack the permission: the roll needs autoscaling:Describe*, SetDesiredCapacity, "
                            "TerminateInstanceInAutoScalingGroup, UpdateAutoScalingGroup, Suspend/ResumeProcesses, CreateOrUpdateTags, "
                            "DeleteTags, DescribeLifecycleHooks, CompleteLifecycleAction (with a termination lifecycle hook) and "
                            "ec2:DescribeInstances, DescribeLaunchTemplates, DescribeLaunchTemplateVersions.")
                raise ProviderError("Failed to %s: %s: %s.%s" % (what, code or "error", (exc.response.get("Error") or {}).get("Message", exc), hint))
            except BotoCoreError as exc:
                transient = exc.__class__.__name__ in ("EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError",
                                                       "ConnectTimeoutError")
                if transient and self._retry(attempt + 1, deadline):
                    attempt += 1
                    continue
                raise ProviderError("Failed to %s within api_timeout=%ss (%d attempt(s)): %s. Check the region, the endpoint and the AWS "
                                    "credentials, or raise api_timeout." % (what, _num(self.api_timeout), attempt + 1, exc))

    def _asg(self):
        groups = self._call(self.autoscaling, "describe_auto_scaling_groups", "describe Auto Scaling group %s" % self.group_name,
                            AutoScalingGroupNames=[self.group_name]).get("AutoScalingGroups", [])
        if not groups:
            raise ProviderError(
                "Auto Scaling group %s was not found in this region. Check group_name and region: server-terraform names it "
                "<basename>-circleci-nomad-clients-asg (4.9.0 and later) or <basename>_circleci_nomad_clients_asg (before)." % self.group_name)
        return groups[0]

    # -- the group's current configuration ---------------------------------------------------------------
    def _template_spec(self, asg):
        spec = asg.get("LaunchTemplate")
        if not spec:
            spec = ((asg.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
        return spec

    def _resolve_template(self, spec):
        """(template id, version number as str, image id or None) for a launch template specification."""
        kwargs = {"LaunchTemplateIds": [spec["LaunchTemplateId"]]} if spec.get("LaunchTemplateId") else {"LaunchTemplateNames": [spec["LaunchTemplateName"]]}
        templates = self._call(self.ec2, "describe_launch_templates", "describe the group's launch template", **kwargs).get("LaunchTemplates", [])
        if not templates:
            raise ProviderError("The launch template %s of group %s does not exist." % (spec, self.group_name))
        template = templates[0]
        version = str(spec.get("Version") or "$Default")
        if version == "$Latest":
            version = str(template["LatestVersionNumber"])
        elif version == "$Default":
            version = str(template["DefaultVersionNumber"])
        versions = self._call(self.ec2, "describe_launch_template_versions", "describe launch template %s version %s" % (template["LaunchTemplateId"], version),
                              LaunchTemplateId=template["LaunchTemplateId"], Versions=[version]).get("LaunchTemplateVersions", [])
        image = (versions[0].get("LaunchTemplateData") or {}).get("ImageId") if versions else None
        return template["LaunchTemplateId"], template.get("LaunchTemplateName", ""), version, image

    def _ec2_instances(self, ids):
        found = {}
        ids = list(ids)
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            answer = self._call(self.ec2, "describe_instances", "describe instances of %s" % self.group_name, InstanceIds=chunk)
            for reservation in answer.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    found[inst["InstanceId"]] = inst
        return found

    def describe(self):
        """The group, its configuration resolved afresh, and whether an instance refresh runs (every check)."""
        return self._describe(full=True)

    def poll(self):
        """The group as the roll polls it: one DescribeAutoScalingGroups, the configuration resolved by the last
        ``describe`` (resolved again if the group's configuration reference changed), DescribeInstances only for
        instances not seen before, no instance refresh check (``describe`` does that at each phase of the roll)."""
        return self._describe(full=False)

    def _configuration(self, asg, full):
        lc_name = asg.get("LaunchConfigurationName")
        spec = self._template_spec(asg)
        key = json.dumps([lc_name, spec], sort_keys=True, default=str)
        if not full and self._config_cache is not None and self._config_cache[0] == key:
            return self._config_cache[1]
        image = None
        lcs = []
        expected_image = self.image_id
        lt_id = lt_version = None
        if lc_name:
            config = "launch configuration %s" % lc_name
            lcs = self._call(self.autoscaling, "describe_launch_configurations", "describe launch configuration %s" % lc_name,
                             LaunchConfigurationNames=[lc_name]).get("LaunchConfigurations", [])
            if expected_image is None and lcs:
                expected_image = lcs[0].get("ImageId")
        elif spec:
            lt_id, lt_name, lt_version, image = self._resolve_template(spec)
            config = "launch template %s (%s) version %s" % (lt_name, lt_id, lt_version)
            if expected_image is None:
                expected_image = image
        else:
            raise ProviderError("Group %s has neither a launch configuration nor a launch template: cannot tell outdated instances." % self.group_name)
        blockers = []
        config_image = expected_image if not self.image_id else (image if spec and not lc_name else (lcs[0].get("ImageId") if lcs else None))
        if self.image_id and config_image and str(config_image).startswith("ami-") and config_image != self.image_id:
            blockers.append("image_id %s differs from the image of the group's %s (%s): new instances would launch from %s and stay "
                            "outdated, so the roll would surge and then time out. Put %s in the launch template or configuration first "
                            "(the nomad_clients role does), or drop image_id." % (self.image_id, config, config_image, config_image, self.image_id))
        if expected_image and not str(expected_image).startswith("ami-"):
            expected_image = None  # resolve:ssm:... parameters: compare templates only
        if expected_image:
            config += ", image %s" % expected_image
        resolved = {"lc_name": lc_name, "lt_id": lt_id, "lt_version": lt_version, "image": expected_image, "config": config,
                    "blockers": blockers}
        self._config_cache = (key, resolved)
        return resolved

    def _describe(self, full):
        asg = self._asg()
        self._group = asg
        resolved = self._configuration(asg, full)
        lc_name, lt_id, lt_version = resolved["lc_name"], resolved["lt_id"], resolved["lt_version"]
        expected_image, config = resolved["image"], resolved["config"]
        blockers = list(resolved["blockers"])
        warnings = []
        ids = [i["InstanceId"] for i in asg.get("Instances", [])]
        if full:
            self._ec2_cache = {}
        unseen = [iid for iid in ids if iid not in self._ec2_cache]
        if unseen:
            self._ec2_cache.update(self._ec2_instances(unseen))
        ec2_by_id = self._ec2_cache = {iid: self._ec2_cache[iid] for iid in ids if iid in self._ec2_cache}
        instances = []
        for entry in asg.get("Instances", []):
            iid = entry["InstanceId"]
            ec2 = ec2_by_id.get(iid, {})
            tags = {t["Key"]: t["Value"] for t in ec2.get("Tags", [])}
            reasons = []
            if lc_name:
                inst_lc = entry.get("LaunchConfigurationName")
                if inst_lc != lc_name:
                    reasons.append("launched from %s, the group uses launch configuration %s" % (
                        "launch configuration %s" % inst_lc if inst_lc else "no launch configuration", lc_name))
            elif lt_id:
                inst_lt = entry.get("LaunchTemplate") or {}
                inst_id = tags.get("aws:ec2launchtemplate:id") or inst_lt.get("LaunchTemplateId")
                inst_version = tags.get("aws:ec2launchtemplate:version") or inst_lt.get("Version")
                if inst_id != lt_id:
                    reasons.append("launched from launch template %s, the group uses %s" % (inst_id, lt_id))
                elif str(inst_version).startswith("$"):
                    pass  # "$Latest" as the group said at launch, without the resolved tag: only the image can tell
                elif str(inst_version) != lt_version:
                    reasons.append("launch template version %s, the group uses version %s" % (inst_version, lt_version))
            if expected_image and ec2.get("ImageId") and ec2["ImageId"] != expected_image:
                reasons.append("image %s, expected %s" % (ec2["ImageId"], expected_image))
            keys = tuple(k for k in (ec2.get("PrivateIpAddress"), (ec2.get("PrivateDnsName") or "").split(".", maxsplit=1)[0] or None) if k)
            instances.append(GroupInstance(id=iid, up_to_date=not reasons, state=lifecycle_state(entry.get("LifecycleState")),
                                           reason="; ".join(reasons), keys=keys, launched=str(ec2.get("LaunchTime") or "")))
            if lifecycle_state(entry.get("LifecycleState")) == STANDBY and reasons:
                warnings.append("Instance %s is outdated but in Standby: the roll leaves it alone." % iid)
        if asg.get("SuspendedProcesses"):
            names = sorted(p["ProcessName"] for p in asg["SuspendedProcesses"])
            if any(n in names for n in ("Launch", "Terminate")):
                raise ProviderError("Group %s has the Launch or Terminate process suspended (%s): the roll cannot surge or remove instances. "
                                    "Resume them (aws autoscaling resume-processes) and re-run." % (self.group_name, ", ".join(names)))
        if full:
            blockers.extend(self._refresh_blockers())
            if self._termination_hooks is None:
                blockers.extend(self._read_termination_hooks())
        return GroupState(name=self.group_name, desired=asg["DesiredCapacity"], min_size=asg["MinSize"], max_size=asg["MaxSize"],
                          instances=instances, config=config, warnings=warnings, blockers=blockers)

    def conflicts(self):
        """What would fight the roll right now (an active instance refresh); the roll checks before each drain and termination."""
        return self._refresh_blockers()

    def _read_termination_hooks(self):
        """The group's termination lifecycle hooks, read once (before any change); blockers if they cannot be read."""
        try:
            hooks = self._call(self.autoscaling, "describe_lifecycle_hooks", "list the lifecycle hooks of %s" % self.group_name,
                               AutoScalingGroupName=self.group_name).get("LifecycleHooks", [])
        except ProviderError as exc:
            return ["Cannot tell whether %s has a termination lifecycle hook (%s): the roll needs autoscaling:DescribeLifecycleHooks."
                    % (self.group_name, exc)]
        self._termination_hooks = sorted(h["LifecycleHookName"] for h in hooks if h.get("LifecycleTransition") == TERMINATING_TRANSITION)
        return []

    def termination_hooks(self):
        """The names of the group's autoscaling:EC2_INSTANCE_TERMINATING hooks (read by the plan's ``describe``)."""
        if self._termination_hooks is None:
            self._read_termination_hooks()
        return list(self._termination_hooks or [])

    def complete_lifecycle_actions(self, instance_ids):
        """Lets instances the roll terminated (drained first) through the group's termination hooks: waits, within api_timeout,
        until each is in Terminating:Wait (real Auto Scaling gets there a moment after the call), then completes every hook's
        action with CONTINUE (ABANDON would skip the other hooks and, with an instance lifecycle policy, retain the instance).
        An action completed meanwhile by the hook's own agent is fine. Returns the instances it completed."""
        hooks = self.termination_hooks() if self.completes_lifecycle_actions else []
        pending = set(instance_ids)
        if not hooks or not pending:
            return []
        deadline = self._now() + self.api_timeout
        waiting = []
        while pending:
            states = {}
            ids = sorted(pending)
            for start in range(0, len(ids), 50):
                answer = self._call(self.autoscaling, "describe_auto_scaling_instances", "describe terminating instances of %s" % self.group_name,
                                    InstanceIds=ids[start:start + 50])
                states.update((i["InstanceId"], i.get("LifecycleState")) for i in answer.get("AutoScalingInstances", []))
            for iid in ids:
                if states.get(iid) == "Terminating:Wait":
                    waiting.append(iid)
                if states.get(iid) != "Terminating":
                    pending.discard(iid)  # waiting, past its hooks already, or gone
            if pending:
                if self._now() + 1.0 >= deadline:
                    raise ProviderError("Instance(s) %s of %s did not reach Terminating:Wait within api_timeout=%ss: their lifecycle hook "
                                        "holds them until its heartbeat timeout. Re-run the roll to complete their lifecycle actions."
                                        % (", ".join(sorted(pending)), self.group_name, _num(self.api_timeout)))
                self._sleep(1.0)

        def complete(pair):
            iid, hook = pair
            try:
                self._call(self.autoscaling, "complete_lifecycle_action", "complete lifecycle hook %s of instance %s" % (hook, iid),
                           AutoScalingGroupName=self.group_name, LifecycleHookName=hook, InstanceId=iid, LifecycleActionResult="CONTINUE")
            except ProviderError as exc:
                if "No active Lifecycle Action" not in str(exc):
                    raise
        _side_by_side(complete, [(iid, hook) for iid in sorted(waiting) for hook in hooks])
        return sorted(waiting)

    def _refresh_blockers(self):
        try:
            refreshes = self._call(self.autoscaling, "describe_instance_refreshes", "list the instance refreshes of %s" % self.group_name,
                                   AutoScalingGroupName=self.group_name).get("InstanceRefreshes", [])
        except ProviderError as exc:
            return ["Cannot tell whether an instance refresh runs on %s (%s): the roll needs autoscaling:DescribeInstanceRefreshes." % (
                self.group_name, exc)]
        active = [r for r in refreshes if r.get("Status") in ACTIVE_REFRESH]
        return ["An instance refresh (%s, %s) runs on %s: it replaces instances without draining Nomad and would fight the roll. Wait for "
                "it to end or cancel it (aws autoscaling cancel-instance-refresh --auto-scaling-group-name %s), then run the roll."
                % (r.get("InstanceRefreshId"), r.get("Status"), self.group_name, self.group_name) for r in active]

    # -- changes -----------------------------------------------------------------------------------------
    def set_max_size(self, max_size):
        self._call(self.autoscaling, "update_auto_scaling_group", "set MaxSize of %s to %d" % (self.group_name, max_size),
                   AutoScalingGroupName=self.group_name, MaxSize=int(max_size))
        if self._group is not None:
            self._group["MaxSize"] = int(max_size)

    def set_capacity(self, desired):
        # the group the roll just polled tells its MaxSize (set_max_size keeps it up to date): no read of its own
        asg = self._group if self._group is not None else self._asg()
        if desired > asg["MaxSize"]:
            self.set_max_size(desired)
        self._call(self.autoscaling, "set_desired_capacity", "set the desired capacity of %s to %d" % (self.group_name, desired),
                   AutoScalingGroupName=self.group_name, DesiredCapacity=int(desired), HonorCooldown=False)

    def terminate(self, instance_ids):
        """One call per instance (the API takes one), a few at a time; then the termination lifecycle actions of those terminated
        (``complete_lifecycle_actions``); the first error raised once all ended. Returns the instances whose action it completed."""
        def one(iid):
            self._call(self.autoscaling, "terminate_instance_in_auto_scaling_group", "terminate instance %s in %s" % (iid, self.group_name),
                       InstanceId=iid, ShouldDecrementDesiredCapacity=True)
        ids = list(instance_ids)
        errors = _side_by_side(one, ids, raise_first=False)
        failed = {iid for iid, _error in errors}
        try:
            completed = self.complete_lifecycle_actions([iid for iid in ids if iid not in failed])
        finally:
            if errors:
                raise errors[0][1]
        return completed

    def unsafe_to_resume(self, processes):
        """Processes not to resume now, with why: AZRebalance while the group's zones are out of balance (it would
        launch and terminate instances to even them out, and the terminated ones are busy, undrained Nomad clients)."""
        if "AZRebalance" not in processes:
            return {}
        asg = self._asg()
        zones = {zone: 0 for zone in asg.get("AvailabilityZones") or []}
        for entry in asg.get("Instances", []):
            if lifecycle_state(entry.get("LifecycleState")) in (PENDING, IN_SERVICE) and entry.get("AvailabilityZone"):
                zones[entry["AvailabilityZone"]] = zones.get(entry["AvailabilityZone"], 0) + 1
        if len(zones) < 2 or max(zones.values()) - min(zones.values()) <= 1:
            return {}
        return {"AZRebalance": "AZRebalance stays suspended on %s: its zones are out of balance after the roll (%s), and AZRebalance would "
                               "terminate busy Nomad clients without a drain to even them out. Resume it (aws autoscaling resume-processes "
                               "--scaling-processes AZRebalance) when a drained, quiet moment allows, or leave it suspended."
                               % (self.group_name, ", ".join("%s: %d" % kv for kv in sorted(zones.items())))}

    def scaling_to_pause(self):
        """What the roll suspends on the group for its duration (shown by the plan)."""
        asg = self._group if self._group is not None else self._asg()
        already = {p["ProcessName"] for p in asg.get("SuspendedProcesses", [])}
        return ["process %s: suspended for the roll, then resumed" % p for p in self.suspend_processes if p not in already]

    def pending_suspension(self):
        """The processes ``suspend_scaling`` would suspend now, from the group last read (written into the roll's state first)."""
        asg = self._group if self._group is not None else self._asg()
        already = {p["ProcessName"] for p in asg.get("SuspendedProcesses", [])}
        return [p for p in self.suspend_processes if p not in already]

    def suspend_scaling(self):
        # the group read back after the lock was written: fresh enough, no read of its own
        asg = self._group if self._group is not None else self._asg()
        already = {p["ProcessName"] for p in asg.get("SuspendedProcesses", [])}
        todo = [p for p in self.suspend_processes if p not in already]
        if todo:
            self._call(self.autoscaling, "suspend_processes", "suspend %s on %s" % (", ".join(todo), self.group_name),
                       AutoScalingGroupName=self.group_name, ScalingProcesses=todo)
        return todo

    def resume_scaling(self, processes):
        if processes:
            self._call(self.autoscaling, "resume_processes", "resume %s on %s" % (", ".join(processes), self.group_name),
                       AutoScalingGroupName=self.group_name, ScalingProcesses=list(processes))

    # -- the roll's state, as a tag on the group ---------------------------------------------------------
    def load_state(self):
        asg = self._group if self._group is not None else self._asg()
        for tag in asg.get("Tags", []):
            if tag.get("Key") == STATE_TAG:
                try:
                    return json.loads(tag.get("Value") or "{}")
                except ValueError:
                    return None
        return None

    def save_state(self, state):
        value = json.dumps(state, sort_keys=True, separators=(",", ":"))
        self._call(self.autoscaling, "create_or_update_tags", "tag %s with the roll's state" % self.group_name,
                   Tags=[{"ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": STATE_TAG, "Value": value,
                          "PropagateAtLaunch": False}])
        if self._group is not None:
            self._group["Tags"] = [t for t in self._group.get("Tags", []) if t.get("Key") != STATE_TAG] + [{"Key": STATE_TAG, "Value": value}]

    def clear_state(self):
        if self.load_state() is None:
            return
        self._call(self.autoscaling, "delete_tags", "remove the roll's state tag from %s" % self.group_name,
                   Tags=[{"ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": STATE_TAG}])
        if self._group is not None:
            self._group["Tags"] = [t for t in self._group.get("Tags", []) if t.get("Key") != STATE_TAG]

    # -- a lock against two rolls at once, as a tag on the group: owner and expiry --------------------------
    def lock_holder(self):
        """The live lock (owner, until) or None; an expired lock is no lock."""
        asg = self._group if self._group is not None else self._asg()
        for tag in asg.get("Tags", []):
            if tag.get("Key") == LOCK_TAG:
                try:
                    value = json.loads(tag.get("Value") or "{}")
                except ValueError:
                    return None
                if _epoch(value.get("until")) > self._wall():
                    return value
        return None

    def acquire_lock(self, owner, ttl, state=None):
        """The lock tag, and with ``state`` the state tag in the same CreateOrUpdateTags call. The holder is read from the group the
        plan read just before (``describe``), then read back after the write."""
        if self._group is None:
            self._group = self._asg()
        holder = self.lock_holder()
        if holder and holder.get("owner") != owner:
            raise ProviderError("Another nomad_client_roll holds the roll lock of %s (%s, until %s). Wait for it to finish; if it died, the "
                                "lock expires by itself at that time." % (self.group_name, holder.get("owner"), holder.get("until")))
        value = json.dumps({"owner": owner, "until": _utc(self._wall() + ttl)}, sort_keys=True, separators=(",", ":"))
        tags = [{"ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": LOCK_TAG, "Value": value, "PropagateAtLaunch": False}]
        if state is not None:
            tags.append({"ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": STATE_TAG,
                         "Value": json.dumps(state, sort_keys=True, separators=(",", ":")), "PropagateAtLaunch": False})
        self._call(self.autoscaling, "create_or_update_tags", "tag %s with the roll's lock%s" % (self.group_name, " and state" if state is not None else ""),
                   Tags=tags)
        # Two runs that both found no lock both wrote one: the last write wins, the other run sees it and stops.
        self._group = self._asg()
        holder = self.lock_holder()
        if not holder or holder.get("owner") != owner:
            raise ProviderError("Another nomad_client_roll took the roll lock of %s at the same moment (%s): this run stops before any "
                                "change. Let that roll finish." % (self.group_name, (holder or {}).get("owner")))

    def release_lock(self, owner):
        self._group = self._asg()
        holder = self.lock_holder()
        if holder and holder.get("owner") == owner:
            self._call(self.autoscaling, "delete_tags", "remove the roll's lock from %s" % self.group_name,
                       Tags=[{"ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": LOCK_TAG}])
            self._group["Tags"] = [t for t in self._group.get("Tags", []) if t.get("Key") != LOCK_TAG]


def _side_by_side(func, items, raise_first=True):
    """``func`` over ``items``, 8 at a time; the first error raised once all ended, or with ``raise_first=False`` the (item, error)
    pairs returned."""
    items = list(items)

    def attempt(item):
        try:
            func(item)
        except Exception as exc:  # pylint: disable=broad-except
            return item, exc
        return None
    if len(items) <= 1:
        outcomes = [attempt(item) for item in items]
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            outcomes = list(pool.map(attempt, items))
    errors = [outcome for outcome in outcomes if outcome is not None]
    if errors and raise_first:
        raise errors[0][1]
    return errors


def _num(value):
    return int(value) if float(value).is_integer() else value
