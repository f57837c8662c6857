#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_bucket_versioning
short_description: Read or set the versioning of an existing S3 bucket, and nothing else
version_added: 0.1.0
description:
  - Reads the versioning status of an S3 bucket and, when O(status) is given and differs, sets it.
  - Made for the CircleCI Server 4.3 upgrade - with S3 object storage, Docker layer caching needs versioning
    C(Enabled) on the bucket (UPG-4.3 Notes).
  - Why not M(amazon.aws.s3_bucket) - it manages the whole bucket (creates it when missing, reads and may change
    policy, tags, encryption, ownership...), it has no check mode and returns no C(diff). This module touches
    versioning only, with check mode and diff, and never creates a bucket.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - circleci.server.request_timeout
attributes:
  check_mode:
    support: full
    description: Reads the status and returns the one it would set.
  diff_mode:
    support: full
    description: The versioning status before and after.
options:
  bucket:
    description: The bucket name.
    type: str
    required: true
  status:
    description: The status wanted; omit to only read it. Versioning once enabled can only be suspended.
    type: str
    choices: [Enabled, Suspended]
"""

EXAMPLES = r"""
- name: Enable versioning on the object storage bucket (DLC needs it)
  circleci.server.s3_bucket_versioning:
    bucket: acme-circleci-server-artifacts
    status: Enabled
"""

RETURN = r"""
bucket:
  description: The bucket.
  returned: always
  type: str
  sample: acme-circleci-server-artifacts
versioning:
  description: The status after the change (planned in check mode); C(Disabled) for a bucket that never had versioning.
  returned: always
  type: str
  sample: Enabled
previous:
  description: The status before.
  returned: always
  type: str
  sample: Disabled
"""

import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.circleci.server.plugins.module_utils.network import (
    REQUEST_TIMEOUT_SPEC,
    TimeoutOptionError,
    botocore_config,
    check_timeout,
    fail_aws,
)


def main():
    module = AnsibleAWSModule(argument_spec=dict(bucket=dict(type="str", required=True),
                                                 status=dict(type="str", choices=["Enabled", "Suspended"]),
                                                 **REQUEST_TIMEOUT_SPEC),
                              supports_check_mode=True)
    bucket, wanted = module.params["bucket"], module.params["status"]
    try:
        timeout = check_timeout(module.params["request_timeout"])
    except TimeoutOptionError as e:
        module.fail_json(msg=str(e))
    if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket, re.ASCII) or ".." in bucket:
        module.fail_json(msg="bucket %r is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-'): give "
                             "the name of the object storage bucket (object_storage.bucketName in the values)."
                             % (bucket[:80],))
    client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff(), config=botocore_config(timeout))
    try:
        before = client.get_bucket_versioning(Bucket=bucket, aws_retry=True).get("Status") or "Disabled"
    except is_boto3_error_code("NoSuchBucket"):
        module.fail_json(msg="S3 bucket %s does not exist: check the object storage bucket name (object_storage.bucketName)." % bucket)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        fail_aws(module, client, e, "Failed to read the versioning of S3 bucket %s" % bucket)
    after = wanted or before
    changed = after != before and not (wanted == "Suspended" and before == "Disabled")
    if not changed:
        after = before
    if changed and not module.check_mode:
        try:
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": wanted}, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            fail_aws(module, client, e, "Failed to set the versioning of S3 bucket %s to %s (re-run to retry)" % (bucket, wanted))
    module.exit_json(changed=changed, bucket=bucket, versioning=after, previous=before,
                     diff=dict(before={"bucket": bucket, "versioning": before}, after={"bucket": bucket, "versioning": after}))


if __name__ == "__main__":
    main()
