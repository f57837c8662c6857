# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection's GCP modules authenticate: one argument spec and one session builder.

The modules talk REST to a base URL of their own (a stand-in or a private endpoint may serve it), so they take a
``requests`` session: anonymous for ``gcp_auth_kind=none`` (a lab's stand-in only), otherwise a google-auth
``AuthorizedSession`` from application default credentials or a service account key file (read with a size cap,
its content never echoed). Every failure names what to set instead.
"""
from __future__ import annotations

import json

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.circleci.server.plugins.module_utils.files import InputError, read_text

try:
    import requests
    HAS_REQUESTS = True
except ImportError:
    HAS_REQUESTS = False

try:
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession
    HAS_GOOGLE_AUTH = True
except ImportError:
    HAS_GOOGLE_AUTH = False

AUTH_KINDS = ["application", "serviceaccount", "none"]
KEY_FILE_MAX_BYTES = 64 * 1024


def gcp_auth_spec():
    """The options of the ``circleci.server.gcp_auth`` doc fragment."""
    return dict(
        gcp_auth_kind=dict(type="str", choices=AUTH_KINDS, default="application"),
        gcp_credentials_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE", "GOOGLE_APPLICATION_CREDENTIALS"])),
    )


def credentials_from_key_file(path, scopes):
    """Service account credentials from a key file; ValueError (naming the file, never its content) otherwise."""
    try:
        info = json.loads(read_text(path, "gcp_credentials_file", max_bytes=KEY_FILE_MAX_BYTES))
        from google.oauth2 import service_account  # pylint: disable=import-outside-toplevel
        return service_account.Credentials.from_service_account_info(info, scopes=scopes)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("gcp_credentials_file %s is not a service account key (a JSON document with type, client_email "
                         "and private_key): download a key of the service account, or use gcp_auth_kind=application."
                         % path) from None


def authorised_session(module, scopes, refresh_timeout=None):
    """The session the module's requests go through, or ``fail_json`` saying what is missing."""
    params = module.params
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    if params["gcp_auth_kind"] == "none":
        return requests.Session()
    if not HAS_GOOGLE_AUTH:
        module.fail_json(msg=missing_required_lib("google-auth"))
    if params["gcp_auth_kind"] == "serviceaccount":
        if not params["gcp_credentials_file"]:
            module.fail_json(msg="gcp_auth_kind=serviceaccount needs gcp_credentials_file, the path of a service account key file.")
        try:
            credentials = credentials_from_key_file(params["gcp_credentials_file"], scopes)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    else:
        try:
            credentials, dummy = google.auth.default(scopes=scopes)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            module.fail_json(msg="No GCP credentials: %s Set GOOGLE_APPLICATION_CREDENTIALS, or use "
                                 "gcp_auth_kind=serviceaccount with gcp_credentials_file." % str(exc).split("\n", 1)[0])
    if refresh_timeout is None:
        return AuthorizedSession(credentials)
    return AuthorizedSession(credentials, refresh_timeout=refresh_timeout)
