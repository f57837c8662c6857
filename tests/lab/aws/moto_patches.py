"""What the lab adds to, and fixes in, moto 5.2.5 before its server starts.

Added Auto Scaling operations (moto 5.2.5 answers them with NotImplementedError):

- ``StartInstanceRefresh`` / ``DescribeInstanceRefreshes`` / ``CancelInstanceRefresh``: a refresh
  is Pending, then InProgress while it replaces the group's instances in batches, then Successful
  (or Cancelled). The batch size follows ``MinHealthyPercentage`` (default 90: one instance at a
  time below 20 instances), and each batch waits ``InstanceWarmup`` lab seconds (default: the
  group's health check grace period). A batch terminates its old instances and launches their
  replacements in the same step, so capacity never dips. ``DesiredConfiguration.LaunchTemplate``
  is used for the new instances and stays on the group when the refresh succeeds (it is undone on
  cancel); ``SkipMatching`` skips instances already on the desired launch template version or
  launch configuration. ``install(clock)`` sets the clock; ``advance_instance_refreshes()`` moves
  refreshes on (the lab calls it from a ticker thread and before each Describe).
  Not modelled: checkpoints, bake time, auto rollback, alarms, warm pools, MaxHealthyPercentage,
  standby and scale-in protected instance handling, lifecycle hooks during a refresh.
- ``CompleteLifecycleAction``: validated against the group, the hook and the instance's wait, then
  recorded in ``completed_lifecycle_actions(account, region)``; the last pending termination hook of an
  instance in ``Terminating:Wait`` lets it go (both results terminate it: instance lifecycle policies'
  retention is not modelled). With only a ``LifecycleActionToken`` (the lab issues none) it is recorded.
- Termination lifecycle hooks (moto stored them and terminated at once): with an
  ``autoscaling:EC2_INSTANCE_TERMINATING`` hook on the group, ``TerminateInstanceInAutoScalingGroup``
  puts the instance in ``Terminating:Wait`` (still running, so its Nomad client stays up; no longer
  counted toward the desired capacity, which is decremented at once when asked) until every such hook
  is completed or its ``HeartbeatTimeout`` (lab seconds, moto's default 3600) passes, then terminates
  it (``advance_lifecycle_actions()``, from the lab's ticker). A scale-in never picks an instance
  already waiting. Not modelled: Pending:Wait (launch hooks), RecordLifecycleActionHeartbeat, the
  GlobalTimeout, notifications, and what real AWS answers to a second termination of a waiting
  instance (the lab leaves it waiting).
- ``DisableMetricsCollection``; ``EnableMetricsCollection`` now adds metrics (all of them when
  none are named) instead of replacing the list, as real Auto Scaling does.

Fixed moto bugs:

- ``CreateLaunchTemplateVersion`` stored UserData unparsed (an ASG launching that version crashed)
  and ignored ``SourceVersion`` (real EC2 copies the source version's data, then overrides it).
- ASG launches used the template's *default* version for instance tags and reported the default
  version for every instance; each instance now records the launch template version (and launch
  configuration) it was launched with, as real Auto Scaling reports it, and carries the resolved
  version in its ``aws:ec2launchtemplate:version`` tag.
- ``CreateImage`` with ``TagSpecifications`` for ``snapshot`` raised NotImplementedError; the
  snapshot of the image is tagged now.
- ``CreateImage`` and ``RegisterImage`` with the name of an image the account already owns are
  refused with ``InvalidAMIName.Duplicate``, like real EC2 (a deregistered image frees its name).
- Group limits, as real Auto Scaling enforces them (moto accepted anything): ``SetDesiredCapacity``
  above MaxSize or below MinSize is a ``ValidationError``; ``TerminateInstanceInAutoScalingGroup`` of
  an instance no longer in a group is a 400 ``ValidationError`` (moto raised StopIteration, a 500), and
  with ``ShouldDecrementDesiredCapacity`` at MinSize it is refused.
"""
from __future__ import annotations

import copy
import datetime
import threading

from moto.autoscaling import models as as_models
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data
from moto.moto_api._internal import mock_random as random

# Every group metric real Auto Scaling knows, for EnableMetricsCollection without a list.
ALL_GROUP_METRICS = (
    "GroupMinSize", "GroupMaxSize", "GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances",
    "GroupStandbyInstances", "GroupTerminatingInstances", "GroupTotalInstances", "GroupInServiceCapacity",
    "GroupPendingCapacity", "GroupStandbyCapacity", "GroupTerminatingCapacity", "GroupTotalCapacity",
    "WarmPoolDesiredCapacity", "WarmPoolWarmedCapacity", "WarmPoolPendingCapacity", "WarmPoolTerminatingCapacity",
    "WarmPoolTotalCapacity", "GroupAndWarmPoolDesiredCapacity", "GroupAndWarmPoolTotalCapacity",
)

_STATE = {"clock": None, "installed": False, "lifecycle_actions": {}}
_INSTALL_LOCK = threading.Lock()
_ORIGINAL = {}


def _lab_now() -> float:
    clock = _STATE["clock"]
    return clock.now() if clock is not None else 0.0


def completed_lifecycle_actions(account_id: str, region: str) -> list[dict]:
    """The CompleteLifecycleAction calls received for one account and region, oldest first."""
    return _STATE["lifecycle_actions"].setdefault((account_id, region), [])


# --- instance refresh -------------------------------------------------------------------------

class InstanceRefresh:
    """One instance refresh of one group, advanced by lab time."""

    ACTIVE = ("Pending", "InProgress", "Cancelling")

    def __init__(self, group, strategy: str, preferences: dict, desired: dict, now: float):
        self.group = group
        self.id = str(random.uuid4())
        self.strategy = strategy or "Rolling"
        self.preferences = dict(preferences or {})
        self.preferences.setdefault("MinHealthyPercentage", 90)
        self.preferences.setdefault("SkipMatching", False)
        self.desired = copy.deepcopy(desired or {})
        self.status = "Pending"
        self.status_reason = ""
        self.started_at = now
        self.start_time = datetime.datetime.now(datetime.timezone.utc)
        self.end_time = None
        self.next_step_at = now
        self.previous = None
        if self.desired.get("LaunchTemplate"):
            self.previous = (getattr(group, "launch_configuration_name", None), _template_spec_of(group))
            group._set_launch_configuration(None, self.desired["LaunchTemplate"], None)  # pylint: disable=protected-access
        self.remaining = [state.instance.id for state in group.instance_states
                          if state.lifecycle_state == "InService"
                          and not (self.preferences["SkipMatching"] and _matches_group(state, group))]
        self.total = len(self.remaining)
        self.replaced = 0
        warmup = self.preferences.get("InstanceWarmup")
        self.warmup = float(warmup if warmup is not None else (group.health_check_grace_period or 300))
        desired_capacity = group.desired_capacity or 0
        healthy = int(self.preferences["MinHealthyPercentage"])
        self.batch = max(1, (desired_capacity * (100 - healthy)) // 100)

    @property
    def percentage(self) -> int:
        return 100 if self.total == 0 else int(100 * self.replaced / self.total)

    def advance(self, now: float) -> None:
        while self.status in ("Pending", "InProgress") and now >= self.next_step_at:
            self.status = "InProgress"
            if not self.remaining:
                self._finish("Successful", self.next_step_at)
                return
            batch, self.remaining = self.remaining[:self.batch], self.remaining[self.batch:]
            self._replace(batch)
            self.replaced += len(batch)
            self.next_step_at += self.warmup

    def cancel(self, now: float) -> None:
        if self.previous is not None:
            self.group._set_launch_configuration(self.previous[0], self.previous[1], None)  # pylint: disable=protected-access
        self._finish("Cancelled", now)

    def _finish(self, status: str, lab_time: float) -> None:
        self.status = status
        self.end_time = self.start_time + datetime.timedelta(seconds=max(0.0, lab_time - self.started_at))

    def _replace(self, instance_ids: list) -> None:
        group = self.group
        leaving = [state for state in group.instance_states if state.instance.id in instance_ids]
        if not leaving:
            return
        group.instance_states = [state for state in group.instance_states if state not in leaving]
        group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id for state in leaving])
        group.replace_autoscaling_group_instances(len(leaving), group.get_propagated_tags())

    def describe(self) -> dict:
        result = {
            "InstanceRefreshId": self.id, "AutoScalingGroupName": self.group.name, "Status": self.status,
            "StatusReason": self.status_reason, "StartTime": self.start_time, "PercentageComplete": self.percentage,
            "InstancesToUpdate": self.total - self.replaced, "Preferences": self.preferences, "Strategy": self.strategy,
            "ProgressDetails": {"LivePoolProgress": {"PercentageComplete": self.percentage,
                                                     "InstancesToUpdate": self.total - self.replaced}},
        }
        if self.end_time is not None:
            result["EndTime"] = self.end_time
        if self.desired:
            result["DesiredConfiguration"] = self.desired
        return result


def _template_spec_of(group):
    if group.ec2_launch_template is None:
        return None
    spec = {"LaunchTemplateId": group.ec2_launch_template.id}
    if group.provided_launch_template_version:
        spec["Version"] = group.provided_launch_template_version
    return spec


def _resolved_version(group):
    if group.ec2_launch_template is None:
        return None
    return group.ec2_launch_template.get_version(group.launch_template_version).number


def _matches_group(state, group) -> bool:
    if group.ec2_launch_template is not None:
        launched = getattr(state, "lab_launch_template", None) or {}
        return (launched.get("LaunchTemplateId") == group.ec2_launch_template.id
                and getattr(state, "lab_resolved_version", None) == _resolved_version(group))
    return getattr(state, "lab_launch_configuration_name", None) == getattr(group, "launch_configuration_name", None)


def _refreshes(group) -> list:
    if not hasattr(group, "lab_instance_refreshes"):
        group.lab_instance_refreshes = []
    return group.lab_instance_refreshes


def _every_group():
    """Every Auto Scaling group of every account and region."""
    for account in list(as_models.autoscaling_backends.keys()):
        for region in list(as_models.autoscaling_backends[account].keys()):
            yield from list(as_models.autoscaling_backends[account][region].autoscaling_groups.values())


def advance_instance_refreshes() -> None:
    """Moves every active instance refresh of every account and region on to the lab's present."""
    now = _lab_now()
    for group in _every_group():
        for refresh in getattr(group, "lab_instance_refreshes", []):
            refresh.advance(now)


def _group(response, name):
    group = response.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError("AutoScalingGroup name not found - AutoScalingGroup %s not found" % name)
    return group


def start_instance_refresh(self):
    params = self._get_params()
    group = _group(self, params.get("AutoScalingGroupName"))
    for refresh in _refreshes(group):
        refresh.advance(_lab_now())
        if refresh.status in InstanceRefresh.ACTIVE:
            raise AutoscalingClientError(
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.")
    refresh = InstanceRefresh(group, params.get("Strategy"), params.get("Preferences"),
                              params.get("DesiredConfiguration"), _lab_now())
    _refreshes(group).insert(0, refresh)
    refresh.advance(_lab_now())
    return ActionResult({"InstanceRefreshId": refresh.id})


def describe_instance_refreshes(self):
    params = self._get_params()
    group = _group(self, params.get("AutoScalingGroupName"))
    wanted = params.get("InstanceRefreshIds") or []
    found = []
    for refresh in _refreshes(group):
        refresh.advance(_lab_now())
        if not wanted or refresh.id in wanted:
            found.append(refresh.describe())
    limit = int(params.get("MaxRecords") or 50)
    start = int(params.get("NextToken") or 0)
    page = found[start:start + limit]
    result = {"InstanceRefreshes": page}
    if start + limit < len(found):
        result["NextToken"] = str(start + limit)
    return ActionResult(result)


def cancel_instance_refresh(self):
    group = _group(self, self._get_param("AutoScalingGroupName"))
    for refresh in _refreshes(group):
        refresh.advance(_lab_now())
        if refresh.status in InstanceRefresh.ACTIVE:
            refresh.cancel(_lab_now())
            return ActionResult({"InstanceRefreshId": refresh.id})
    raise AutoscalingClientError("ActiveInstanceRefreshNotFound",
                                 "No in progress or pending Instance Refresh found for Auto Scaling group %s" % group.name)


# --- lifecycle actions and metrics ------------------------------------------------------------

def complete_lifecycle_action(self):
    params = self._get_params()
    group = _group(self, params.get("AutoScalingGroupName"))
    hook_name = params.get("LifecycleHookName")
    if not self.autoscaling_backend.describe_lifecycle_hooks(group.name, [hook_name]):
        raise ValidationError("No Lifecycle Hook named %s found for group %s" % (hook_name, group.name))
    instance_id = params.get("InstanceId")
    token = params.get("LifecycleActionToken")
    if not token and not instance_id:
        raise ValidationError("Either LifecycleActionToken or InstanceId is required")
    waiting = None
    if instance_id:
        waiting = next((state for state in group.instance_states if state.instance.id == instance_id
                        and hook_name in getattr(state, "lab_hook_deadlines", {})), None)
        if waiting is None:
            raise ValidationError("No active Lifecycle Action found with instance ID %s" % instance_id)
    completed_lifecycle_actions(self.current_account, self.region).append({
        "AutoScalingGroupName": group.name, "LifecycleHookName": hook_name, "InstanceId": instance_id,
        "LifecycleActionToken": token, "LifecycleActionResult": params.get("LifecycleActionResult"),
        "lab_time": _lab_now()})
    if waiting is not None:
        del waiting.lab_hook_deadlines[hook_name]
        if not waiting.lab_hook_deadlines:
            _end_wait(group, waiting)
    return ActionResult({})


# --- Terminating:Wait -------------------------------------------------------------------------

TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"


def _waiting(state) -> bool:
    return state.lifecycle_state == "Terminating:Wait"


def _end_wait(group, state) -> None:
    """Every termination hook of a waiting instance is done: it leaves the group and EC2 terminates it."""
    group.instance_states = [other for other in group.instance_states if other is not state]
    group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])


def advance_lifecycle_actions() -> None:
    """Ends the waits whose hooks' heartbeat timeouts passed (the hook's default result: the instance terminates)."""
    now = _lab_now()
    for group in _every_group():
        for state in [state for state in group.instance_states if _waiting(state)]:
            state.lab_hook_deadlines = {name: at for name, at in state.lab_hook_deadlines.items() if at > now}
            if not state.lab_hook_deadlines:
                _end_wait(group, state)


def set_group_desired_capacity(self, new_capacity):
    """moto's, with the instances in Terminating:Wait out of its reach: they no longer count toward the capacity, and a scale-in
    picks among the others."""
    waiting = [state for state in self.instance_states if _waiting(state)]
    if waiting:
        self.instance_states = [state for state in self.instance_states if not _waiting(state)]
    try:
        _ORIGINAL["FakeAutoScalingGroup.set_desired_capacity"](self, new_capacity)
    finally:
        if waiting:
            self.instance_states = self.instance_states + waiting


def enable_metrics_collection(self):
    group = _group(self, self._get_param("AutoScalingGroupName"))
    metrics = self._get_param("Metrics") or list(ALL_GROUP_METRICS)
    group.metrics = list(group.metrics) + [metric for metric in metrics if metric not in group.metrics]
    return EmptyResult()


def disable_metrics_collection(self):
    group = _group(self, self._get_param("AutoScalingGroupName"))
    metrics = self._get_param("Metrics") or []
    group.metrics = [metric for metric in group.metrics if metrics and metric not in metrics]
    return EmptyResult()


# --- launches that remember their launch template version ------------------------------------

def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
    """moto's launch, with the group's launch template *version* passed to RunInstances."""
    propagated_tags[as_models.ASG_NAME_TAG] = self.name
    propagated_tags.update(self.instance_tags)
    subnet_id = self.vpc_zone_identifier.split(",")[0] if self.vpc_zone_identifier else None
    associate_public_ip = self.launch_config.associate_public_ip_address if self.launch_config else None
    launch_template = None
    resolved = None
    if self.ec2_launch_template:
        resolved = _resolved_version(self)
        launch_template = {"LaunchTemplateId": self.ec2_launch_template.id, "Version": str(resolved)}
    reservation = self.autoscaling_backend.ec2_backend.run_instances(
        self.image_id, count_needed, self.user_data, self.security_groups,
        instance_type=self.instance_type, tags={"instance": propagated_tags},
        placement=random.choice(self.availability_zones), launch_config=self.launch_config,
        launch_template=launch_template, is_instance_type_default=False,
        associate_public_ip=associate_public_ip, subnet_id=subnet_id)
    for instance in reservation.instances:
        instance.autoscaling_group = self
        state = as_models.InstanceState(instance, protected_from_scale_in=self.new_instances_protected_from_scale_in)
        if self.ec2_launch_template:
            state.lab_launch_template = {"LaunchTemplateId": self.ec2_launch_template.id,
                                         "LaunchTemplateName": self.ec2_launch_template.name,
                                         "Version": self.launch_template_version}
            state.lab_resolved_version = resolved
        else:
            state.lab_launch_configuration_name = getattr(self, "launch_configuration_name", None)
        self.instance_states.append(state)


def _instance_launch_template(self):
    recorded = getattr(self, "lab_launch_template", None)
    if recorded is not None:
        return dict(recorded)
    return _ORIGINAL["InstanceState.launch_template"].fget(self)


def _instance_launch_configuration_name(self):
    if hasattr(self, "lab_launch_template"):
        return None
    recorded = getattr(self, "lab_launch_configuration_name", None)
    if recorded is not None:
        return recorded
    return _ORIGINAL["InstanceState.launch_configuration_name"].fget(self)


def set_launch_configuration(self, launch_config_name, launch_template, mixed_instances_policy):
    """moto's setter, plus: a launch template replaces a launch configuration and vice versa."""
    _ORIGINAL["FakeAutoScalingGroup._set_launch_configuration"](self, launch_config_name, launch_template, mixed_instances_policy)
    if launch_template or mixed_instances_policy:
        if not launch_config_name:
            self.launch_config = None
            self.launch_configuration_name = None
    elif launch_config_name:
        self.ec2_launch_template = None


# --- EC2 ----------------------------------------------------------------------------------------

def create_launch_template_version(self):
    name = self._get_param("LaunchTemplateName")
    template_id = self._get_param("LaunchTemplateId")
    template = (self.ec2_backend.get_launch_template(template_id) if template_id
                else self.ec2_backend.get_launch_template_by_name(name))
    data = self._get_param("LaunchTemplateData", {}) or {}
    source = self._get_param("SourceVersion")
    self.error_on_dryrun()
    merged = copy.deepcopy(template.get_version(source).data) if source else {}
    merged.update(data)
    if "UserData" in data:
        merged["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
    version = template.create_version(merged, self._get_param("VersionDescription"))
    return ActionResult({"LaunchTemplateVersion": {
        "CreateTime": version.create_time,
        "CreatedBy": "arn:%s:iam::%s:root" % (self.partition, self.current_account),
        "DefaultVersion": template.is_default(version), "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
        "VersionDescription": version.description, "VersionNumber": version.number}})


def _refuse_duplicate_name(backend, name) -> None:
    for ami in backend.amis.values():
        if name and ami.name == name and ami.owner_id == backend.account_id and not getattr(ami, "owner_alias", None):
            raise EC2ClientError("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s" % (name, ami.id))


def create_image(self, instance_id, name, description, tag_specifications):
    _refuse_duplicate_name(self, name)
    image_specs = [spec for spec in tag_specifications or [] if spec.get("ResourceType") != "snapshot"]
    snapshot_tags = {tag["Key"]: tag.get("Value", "") for spec in tag_specifications or []
                     if spec.get("ResourceType") == "snapshot" for tag in spec.get("Tags", [])}
    ami = _ORIGINAL["AmiBackend.create_image"](self, instance_id, name, description, image_specs)
    if snapshot_tags:
        self.create_tags([ami.ebs_snapshot.id], snapshot_tags)
    return ami


def register_image(self, name=None, description=None):
    _refuse_duplicate_name(self, name)
    return _ORIGINAL["AmiBackend.register_image"](self, name=name, description=description)


# --- group limits ----------------------------------------------------------------------------

def set_desired_capacity_within_limits(self, group_name, desired_capacity):
    group = self.autoscaling_groups.get(group_name)
    if group is not None and desired_capacity is not None:
        if desired_capacity > group.max_size:
            raise ValidationError("New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup."
                                  % (desired_capacity, group.max_size))
        if desired_capacity < group.min_size:
            raise ValidationError("New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup."
                                  % (desired_capacity, group.min_size))
    return _ORIGINAL["AutoScalingBackend.set_desired_capacity"](self, group_name, desired_capacity)


def terminate_instance_in_group(self, instance_id, should_decrement):
    for group in self.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                if should_decrement and group.desired_capacity is not None and group.desired_capacity - 1 < group.min_size:
                    raise ValidationError(
                        "Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min "
                        "size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size." % group.min_size)
                hooks = [hook for hook in self.describe_lifecycle_hooks(group.name) if hook.lifecycle_transition == TERMINATING_TRANSITION]
                if not hooks:
                    return _ORIGINAL["AutoScalingBackend.terminate_instance"](self, instance_id, should_decrement)
                original_size = group.desired_capacity
                if not _waiting(state):
                    state.lifecycle_state = "Terminating:Wait"
                    state.lab_hook_deadlines = {hook.name: _lab_now() + float(hook.heartbeat_timeout) for hook in hooks}
                    if should_decrement:
                        group.desired_capacity -= 1
                    group.set_desired_capacity(group.desired_capacity)
                return as_models.TerminateInstanceActivity(state.instance, original_size)
    raise ValidationError("Instance Id not found - No managed instance found for instance ID: %s" % instance_id)


def install(clock=None) -> None:
    """Applies the additions and fixes once per process; ``clock`` (a LabClock) drives refreshes."""
    with _INSTALL_LOCK:
        if clock is not None:
            _STATE["clock"] = clock
        if _STATE["installed"]:
            return
        for name, function in (("start_instance_refresh", start_instance_refresh),
                               ("describe_instance_refreshes", describe_instance_refreshes),
                               ("cancel_instance_refresh", cancel_instance_refresh),
                               ("complete_lifecycle_action", complete_lifecycle_action),
                               ("enable_metrics_collection", enable_metrics_collection),
                               ("disable_metrics_collection", disable_metrics_collection)):
            setattr(AutoScalingResponse, name, function)
        as_models.FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
        _ORIGINAL["FakeAutoScalingGroup._set_launch_configuration"] = as_models.FakeAutoScalingGroup._set_launch_configuration
        as_models.FakeAutoScalingGroup._set_launch_configuration = set_launch_configuration
        _ORIGINAL["InstanceState.launch_template"] = as_models.InstanceState.launch_template
        _ORIGINAL["InstanceState.launch_configuration_name"] = as_models.InstanceState.launch_configuration_name
        as_models.InstanceState.launch_template = property(_instance_launch_template)
        as_models.InstanceState.launch_configuration_name = property(_instance_launch_configuration_name)
        LaunchTemplates.create_launch_template_version = create_launch_template_version
        _ORIGINAL["AmiBackend.create_image"] = AmiBackend.create_image
        AmiBackend.create_image = create_image
        _ORIGINAL["AmiBackend.register_image"] = AmiBackend.register_image
        AmiBackend.register_image = register_image
        _ORIGINAL["AutoScalingBackend.set_desired_capacity"] = as_models.AutoScalingBackend.set_desired_capacity
        as_models.AutoScalingBackend.set_desired_capacity = set_desired_capacity_within_limits
        _ORIGINAL["AutoScalingBackend.terminate_instance"] = as_models.AutoScalingBackend.terminate_instance
        _ORIGINAL["FakeAutoScalingGroup.set_desired_capacity"] = as_models.FakeAutoScalingGroup.set_desired_capacity
        as_models.FakeAutoScalingGroup.set_desired_capacity = set_group_desired_capacity
        as_models.AutoScalingBackend.terminate_instance = terminate_instance_in_group
        _STATE["installed"] = True


def reset() -> None:
    """Forgets the lab's own records (lifecycle actions); moto's backends are reset by the caller."""
    _STATE["lifecycle_actions"].clear()
