# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  gcp_auth_kind:
    description:
      - How to authenticate. V(application) uses application default credentials, V(serviceaccount) the key in
        O(gcp_credentials_file), V(none) sends no credentials (only for a lab's stand-in of the API).
    type: str
    choices: [application, serviceaccount, none]
    default: application
  gcp_credentials_file:
    description:
      - Path to a service account key file (with O(gcp_auth_kind=serviceaccount)).
      - Also E(GCP_SERVICE_ACCOUNT_FILE) or E(GOOGLE_APPLICATION_CREDENTIALS).
    type: path
requirements:
  - requests
  - google-auth (unless O(gcp_auth_kind=none))
"""
