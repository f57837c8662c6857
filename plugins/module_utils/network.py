# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One bound on every network call of a module: the ``request_timeout`` option, its retries counted in it.

* ``REQUEST_TIMEOUT_SPEC``: merge into a module's argument_spec (documented by the
  ``circleci.server.request_timeout`` doc fragment). The Kubernetes modules get the same option from
  ``k8s.K8S_AUTH_ARGSPEC``.
* ``check_timeout(value, name)``: the option checked (seconds, more than 0, at most an hour).
* ``botocore_config(timeout)``: a botocore ``Config`` whose connect and read timeouts times its attempts fit
  in ``timeout`` (botocore retries a read timeout; the collection's ``AWSRetry`` retries only throttling).
* ``Deadline``: what is left of a budget, for code that retries by itself (GCP IAM).

Plain Python with no Ansible import.
"""

from __future__ import annotations

import time

DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 3600.0
AWS_ATTEMPTS = 2

REQUEST_TIMEOUT_SPEC = {"request_timeout": {"type": "float", "default": DEFAULT_TIMEOUT}}


class TimeoutOptionError(ValueError):
    """A timeout option out of range."""


def check_timeout(value, name="request_timeout") -> float:
    """``value`` as seconds, or ``TimeoutOptionError`` naming ``name`` and the accepted range."""
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
        raise TimeoutOptionError("%s is %r: set it to the seconds a network call may take, retries included, more "
                                 "than 0 and at most %d (default %d)." % (name, value, MAX_TIMEOUT, DEFAULT_TIMEOUT))
    return float(value)


def botocore_config(timeout):
    """A ``botocore.config.Config`` bounding each call (all its attempts) to about ``timeout`` seconds."""
    import botocore.config  # pylint: disable=import-outside-toplevel
    per_attempt = timeout / AWS_ATTEMPTS
    return botocore.config.Config(connect_timeout=max(0.5, per_attempt / 2), read_timeout=max(0.5, per_attempt / 2),
                                  retries={"total_max_attempts": AWS_ATTEMPTS, "mode": "standard"})


def is_timeout(exc) -> bool:
    """Whether an exception (botocore, requests, urllib3) is a connect or read timeout."""
    text = "%s %s" % (type(exc).__name__, exc)
    return "timeout" in text.lower() or "timed out" in text.lower()


def timeout_message(endpoint, timeout, what) -> str:
    """The sentence for an endpoint that did not answer in time: where, how long, and the option to raise."""
    return ("%s did not answer within request_timeout (%g s) while %s: check that the endpoint is right and "
            "reachable from this host; raise request_timeout if it is only slow." % (endpoint, timeout, what))


class Deadline:
    """The seconds left of a budget that started when it was made."""

    def __init__(self, seconds, clock=time.monotonic):
        self._clock = clock
        self.seconds = seconds
        self._end = clock() + seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining <= 0


def fail_aws(module, client, exc, msg, timeout=None):
    """``module.fail_json_aws`` for an AWS error, but a timeout fails with where and which option to raise."""
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "The AWS endpoint"
    if is_timeout(exc):
        module.fail_json(msg="%s: %s" % (msg, timeout_message(endpoint, timeout or module.params.get(
            "request_timeout") or DEFAULT_TIMEOUT, "calling it")))
    if "connect" in type(exc).__name__.lower():
        module.fail_json(msg="%s: could not connect to %s (%s): check the region and endpoint_url, and that this "
                             "host can reach it." % (msg, endpoint, exc))
    module.fail_json_aws(exc, msg=msg)
