# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Used with circleci.server.gcp_auth (how the requests authenticate).
    DOCUMENTATION = r"""
options:
  project:
    description: The GCP project.
    type: str
    required: true
  gcp_base_url:
    description: The Compute Engine API's base URL; a stand-in or a private endpoint may serve it.
    type: str
    default: https://compute.googleapis.com
"""
