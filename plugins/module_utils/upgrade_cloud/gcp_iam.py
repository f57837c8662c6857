# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IAM policy on a GCP service account (IAM v1 REST): one member of one role added, removed or moved.

``edit_policy`` is the pure read-modify step: it changes only the unconditional binding of ``role``
(conditional bindings and every other role stay as they are) and keeps ``etag`` and ``version``, so
``setIamPolicy`` refuses it when someone changed the policy in between. ``ServiceAccountIam`` does the
read-modify-write through a ``requests``-compatible session (google-auth's ``AuthorizedSession``) at any
base URL (the public ``https://iam.googleapis.com`` by default, a lab's stand-in in tests), retrying 429
and 5xx with a jittered backoff and the whole read-modify-write on 409 (stale etag).
"""

from __future__ import annotations

import copy
import random
import re
import time

from ansible_collections.circleci.server.plugins.module_utils.network import (
    DEFAULT_TIMEOUT,
    Deadline,
    is_timeout,
    timeout_message,
)

DEFAULT_BASE_URL = "https://iam.googleapis.com"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
WORKLOAD_IDENTITY_ROLE = "roles/iam.workloadIdentityUser"


_MEMBER_RE = re.compile(r"^(user|serviceAccount|group|domain|principal|principalSet):[^\s*?]+$", re.ASCII)
_SERVICE_ACCOUNT_RE = re.compile(r"^([a-z0-9-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com|[a-z0-9-]+@[a-z0-9.-]+|\d{10,30})$",
                                 re.ASCII)


def check_member(member, option="member"):
    """Refuse a member that is not one principal: allUsers, allAuthenticatedUsers and wildcards grant the role to
    everyone (or to every matching identity)."""
    text = str(member)
    if text in ("allUsers", "allAuthenticatedUsers") or "*" in text or "?" in text:
        raise ValueError("%s %r grants the role to everyone (or to every matching identity): name one principal, "
                         "for example serviceAccount:PROJECT.svc.id.goog[circleci-server/machine-provisioner]."
                         % (option, member))
    if not _MEMBER_RE.match(text):
        raise ValueError("%s %r is not an IAM member: write TYPE:ID, for example "
                         "serviceAccount:PROJECT.svc.id.goog[circleci-server/machine-provisioner]." % (option, member))
    return text


def check_service_account(email):
    """Refuse a service account that is not an email or a numeric unique ID (it goes into the request's URL)."""
    if not _SERVICE_ACCOUNT_RE.match(str(email)):
        raise ValueError("service_account %r is not a service account email (NAME@PROJECT.iam.gserviceaccount.com) "
                         "or unique ID: give the email of the service account." % (email,))
    return email


class GcpIamError(Exception):
    """``verb`` is the call that failed: ``getIamPolicy`` (nothing written) or ``setIamPolicy`` (maybe written)."""

    def __init__(self, message, status=None, body=None, verb=None):
        super().__init__(message)
        self.status = status
        self.body = body
        self.verb = verb


def failure_message(email, error):
    """What a failed ``ensure`` means for the policy, and what to do."""
    head = "Failed to update the IAM policy of service account %s: %s." % (email, error)
    if error.verb == "setIamPolicy" and (error.status is None or error.status >= 500):
        return head + (" The write's outcome is unknown (no answer, or a server error): re-run, it reads the policy "
                       "again and writes only what is still missing.")
    if error.verb == "setIamPolicy":
        return head + " The write was refused, so the policy is unchanged: fix the cause above and re-run."
    if error.verb == "getIamPolicy":
        return head + " The policy could not be read, so nothing was written: fix the cause above and re-run."
    return head + " Re-run: the policy is read again first and only what is still missing is written."


def workload_identity_member(project, namespace, service_account):
    """``serviceAccount:<project>.svc.id.goog[<namespace>/<service account>]``."""
    return "serviceAccount:%s.svc.id.goog[%s/%s]" % (project, namespace, service_account)


def bindings_view(policy):
    """``{role: sorted members}`` of the unconditional bindings, plus conditional ones keyed ``role (condition title)``."""
    view = {}
    for binding in (policy or {}).get("bindings") or []:
        key = binding.get("role")
        if binding.get("condition"):
            key = "%s (condition: %s)" % (key, binding["condition"].get("title") or binding["condition"].get("expression"))
        view.setdefault(key, [])
        view[key] = sorted(set(view[key]) | set(binding.get("members") or []))
    return view


def edit_policy(policy, role, member, state="present", replaces=()):
    """Return ``(new_policy, changed)``.

    ``present``: ``member`` is in the unconditional binding of ``role`` (created if needed) and every member of
    ``replaces`` is removed from it. ``absent``: ``member`` and ``replaces`` are removed. A binding left
    empty is dropped (IAM refuses empty bindings). Other bindings, ``etag`` and ``version`` are kept.
    """
    new = copy.deepcopy(policy or {})
    bindings = new.setdefault("bindings", [])
    target = None
    for binding in bindings:
        if binding.get("role") == role and not binding.get("condition"):
            target = binding
            break
    remove = set(replaces or ())
    if state == "absent":
        remove.add(member)
    if target is None:
        if state != "present":
            if not bindings:
                new.pop("bindings")
            return new, False
        target = {"role": role, "members": []}
        bindings.append(target)
    members = [m for m in target.get("members") or [] if m not in remove]
    if state == "present" and member not in members:
        members.append(member)
    target["members"] = members
    if not members:
        bindings.remove(target)
    if not bindings:
        new.pop("bindings")
    return new, bindings_view(new) != bindings_view(policy)


class ServiceAccountIam:
    """getIamPolicy / setIamPolicy of one service account."""

    def __init__(self, session, email, project="-", base_url=DEFAULT_BASE_URL, retries=6, delay=1.0, max_delay=20.0,
                 timeout=DEFAULT_TIMEOUT, sleep=None, clock=time.monotonic):
        self.session = session
        self.email = email
        self.project = project or "-"
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.retries = retries
        self.delay = delay
        self.max_delay = max_delay
        # One budget for the whole read-modify-write, every retry included (``timeout`` seconds).
        self.timeout = timeout
        self.deadline = Deadline(timeout, clock)
        self._sleep = sleep or time.sleep

    def _url(self, verb):
        return "%s/v1/projects/%s/serviceAccounts/%s:%s" % (self.base_url, self.project, self.email, verb)

    def _post(self, verb, body):
        attempt = 0
        while True:
            if self.deadline.expired:
                raise GcpIamError(timeout_message(self.base_url, self.timeout, "calling %s of %s" % (verb, self.email)), verb=verb)
            remaining = self.deadline.remaining
            try:
                response = self.session.post(self._url(verb), json=body, timeout=(min(remaining, max(
                    1.0, self.timeout / 4)), remaining))
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # connection errors of requests/urllib3: retried like a 503, within the budget
                if is_timeout(exc) or self.deadline.remaining < 0.5:
                    raise GcpIamError(timeout_message(self.base_url, self.timeout, "calling %s of %s" % (
                        verb, self.email)), verb=verb) from None
                if attempt >= self.retries:
                    raise GcpIamError("%s of %s at %s failed: %s" % (verb, self.email, self.base_url, exc), verb=verb) from None
                status, payload = None, None
            else:
                status = response.status_code
                try:
                    payload = response.json()
                except ValueError:
                    payload = {"error": {"message": response.text}}
                if status < 300:
                    return payload
                if status not in RETRY_STATUSES or attempt >= self.retries:
                    message = ((payload or {}).get("error") or {}).get("message") or str(payload)
                    raise GcpIamError("%s of %s answered %s: %s" % (verb, self.email, status, message), status, payload, verb=verb)
            attempt += 1
            self._sleep(min(self.deadline.remaining, random.uniform(0, min(self.max_delay, self.delay * 2 ** attempt))))

    def get_policy(self):
        return self._post("getIamPolicy", {"options": {"requestedPolicyVersion": 3}})

    def set_policy(self, policy):
        return self._post("setIamPolicy", {"policy": policy})

    def ensure(self, role, member, state="present", replaces=(), check_mode=False, attempts=5):
        """Read-modify-write; returns ``(before, after, changed)``. A 409 (etag moved on) re-reads and retries."""
        for attempt in range(attempts):
            before = self.get_policy()
            after, changed = edit_policy(before, role, member, state, replaces)
            if not changed or check_mode:
                return before, after, changed
            try:
                written = self.set_policy(after)
            except GcpIamError as exc:
                if exc.status == 409 and attempt + 1 < attempts:
                    self._sleep(random.uniform(0, min(self.max_delay, self.delay * 2 ** attempt)))
                    continue
                raise
            return before, written, True
        raise GcpIamError("The IAM policy of %s kept changing under us (%d attempts, each write refused with 409 because "
                          "the policy's etag moved on): nothing of ours was written; re-run later." % (self.email, attempts),
                          409, verb="setIamPolicy")
