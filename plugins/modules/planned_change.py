#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: planned_change
short_description: In check mode, report a change that nothing can dry-run, under the name of the task that makes it
version_added: 0.1.0
description:
  - A check-mode stand-in for a task that cannot run in check mode (a module without check mode, a write into a
    namespace the run has not created yet, a command on a remote box) - it reports C(changed) with what the real
    task would do, writes nothing and reads nothing.
  - Give it the same name as the task it stands for, so that C(--check) names every task a real run changes.
  - Skipped outside check mode - the real task runs then.
  - Prefer a server-side dry run where one exists (M(kubernetes.core.k8s) and C(helm --dry-run) report the change
    themselves).
author:
  - circleci.server maintainers (@circleci-server-ansible)
options:
  msg:
    description: What the real task would change, for the operator reading the plan.
    type: str
    required: true
attributes:
  action:
    support: full
    description: Runs on the controller, as an action plugin.
  check_mode:
    support: full
    description: Reports C(changed) in check mode only.
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    platforms: all
    description: Any target; the action runs on the controller.
notes:
  - The task's C(when) says whether the real task would change anything (e.g. the bucket does not exist yet).
"""

EXAMPLES = r"""
- name: Create the S3 bucket, versioned (DLC needs versioning), private
  circleci.server.planned_change:
    msg: Would create the S3 bucket acme-circleci-data (private, versioned).
  when: not bucket_exists

- name: Create the S3 bucket, versioned (DLC needs versioning), private
  amazon.aws.s3_bucket:
    name: acme-circleci-data
    versioning: true
  when: not ansible_check_mode
"""

RETURN = r"""
msg:
  description: What the real task would change.
  returned: in check mode
  type: str
  sample: Would create the S3 bucket acme-circleci-data (private, versioned).
"""
