# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The request_timeout option of the modules that call AWS, GCP or helm (REQUEST_TIMEOUT_SPEC in
plugins/module_utils/network.py). The Kubernetes modules document theirs in the k8s_auth fragment."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  request_timeout:
    description:
      - Seconds one network call (an API request, or one helm command) may take, its retries included.
      - An endpoint that accepts connections and never answers fails the task after about this long, with a
        message naming the endpoint. Raise it for a slow endpoint; more than 0, at most 3600.
      - AWS throttling answers (the service did answer) are retried with backoff beyond it.
    type: float
    default: 20
"""
