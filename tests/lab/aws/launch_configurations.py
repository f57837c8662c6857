"""Launch configurations in the lab's AWS, as accounts created on or after 2024-10-01 see them: refused.

moto 5.2.5 creates launch configurations for every account. Since 2024-10-01 new AWS accounts cannot create
them by any method: ``CreateLaunchConfiguration`` answers HTTP 400 ``UnsupportedOperation`` "The Launch
Configuration creation operation is not available in your account. Use launch templates to create
configuration templates for your Auto Scaling groups." ``refuse(True)`` makes the lab's moto answer that
(every account and region of the process: moto's state is process-global too); existing launch
configurations still work, as in AWS. ``install()`` applies the patch once per process.

It also fixes what an instance launched from a launch configuration reports once its group moved to a launch
template: moto (and the lab's moto_patches fallback) answered the group's launch template, so the instance looked
current; real Auto Scaling reports its launch configuration.

Not modelled: the 2023 limits in between (no new instance types in launch configurations; console-only refusal
for accounts from 2023-06-01).
"""
from __future__ import annotations

import threading

from moto.autoscaling import models as as_models
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.responses import AutoScalingResponse

REFUSAL = ("The Launch Configuration creation operation is not available in your account. "
           "Use launch templates to create configuration templates for your Auto Scaling groups.")

_STATE = {"refuse": False, "installed": False, "original": None}
_LOCK = threading.Lock()


class UnsupportedOperation(AutoscalingClientError):
    code = "UnsupportedOperation"


def _create_launch_configuration(self):
    if _STATE["refuse"]:
        raise UnsupportedOperation(REFUSAL)
    return _STATE["original"](self)


def _instance_launch_template(self):
    if getattr(self, "lab_launch_configuration_name", None) and getattr(self, "lab_launch_template", None) is None:
        return None
    return _STATE["launch_template"].fget(self)


def install() -> None:
    """Call after ``moto_patches.install()`` (``AwsLab.start()`` does): it wraps what that one set."""
    with _LOCK:
        if _STATE["installed"]:
            return
        _STATE["original"] = AutoScalingResponse.create_launch_configuration
        AutoScalingResponse.create_launch_configuration = _create_launch_configuration
        _STATE["launch_template"] = as_models.InstanceState.launch_template
        as_models.InstanceState.launch_template = property(_instance_launch_template)
        _STATE["installed"] = True


def refuse(value: bool) -> None:
    """Whether CreateLaunchConfiguration is refused from now on."""
    _STATE["refuse"] = bool(value)
