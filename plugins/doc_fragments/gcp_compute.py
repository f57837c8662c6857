# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
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
  gcp_auth_kind:
    description:
      - V(application) for Application Default Credentials, V(serviceaccount) for O(gcp_credentials_file), V(none) for an
        endpoint that takes anonymous requests (a stand-in).
    type: str
    choices: [application, serviceaccount, none]
    default: application
  gcp_credentials_file:
    description: A service account key file, for O(gcp_auth_kind=serviceaccount).
    type: path
requirements:
  - requests
  - google-auth (unless O(gcp_auth_kind=none))
"""
