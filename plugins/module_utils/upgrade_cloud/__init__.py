# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud-side steps of the CircleCI Server 4.2 -> 4.3 upgrade: pure functions (no Ansible, no cloud SDK)
for IAM trust policies, the machine-provisioner permissions policy, security group rules and GCP
service-account IAM policies, and a small REST client for the latter."""
