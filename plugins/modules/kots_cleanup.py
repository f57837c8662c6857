#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kots_cleanup
short_description: Remove what KOTS left in a CircleCI Server 3.x namespace before the 4.0 Helm upgrade
version_added: 0.1.0
description:
  - "The KOTS cleanup of the in-place 3.x (KOTS) to 4.0 (Helm) migration, as CircleCI's C(kots-exporter.sh) did it,
    in this order. (1) The C(kots.io/app-slug) annotation and the C(kots.io/app-slug) and C(kots.io/backup) labels are
    removed from every object of O(kinds) that is kept. (2) Every object of O(kinds) labelled C(kots.io/kotsadm=true) is
    deleted (the KOTS admin console, including its PersistentVolumeClaims). (3) The Secrets O(secrets) are deleted.
    (4) Every Job whose name starts with O(job_prefix) is deleted (the C(inject-bottoken) job). (5) With
    O(postgresql_internal), the C(postgresql) StatefulSet is deleted with orphan propagation (its Pod and its data
    volume stay, for the 4.0 chart's StatefulSet to take over) and its C(postgresql) Secret is deleted, each only while
    it carries the C(kots.io/app-slug) label or annotation KOTS gave it (the 4.0 chart's objects of the same names are
    never deleted)."
  - B(Deleting is a point of no return.) Run it in check mode first, which lists everything it would delete
    and sends no write. What is already gone is skipped, so a re-run after success reports no change.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reads the namespace and returns the plan (RV(deleted), RV(cleaned)); sends no write.
  diff_mode:
    support: full
    description: The objects to delete and the KOTS metadata to remove.
options:
  namespace:
    description: The namespace of the 3.x install. It must exist; an empty or malformed name is refused.
    type: str
    default: circleci-server
  release:
    description:
      - The Helm release of the 3.x install. Its current record must be a 3.x chart, what KOTS deployed; a 4.x
        release, or no release, is refused before anything is read further or changed.
    type: str
    default: circleci-server
  values_file:
    description:
      - The 4.0 values file the upgrade will use (what M(circleci.server.kots_export) wrote).
      - The passwords of the internal datastores (the C(postgresql), C(mongodb) and C(rabbitmq) Secrets of the
        3.x charts) must be in it, equal to the Secrets' (C(postgresql.auth.postgresPassword),
        C(mongodb.auth.rootPassword), C(mongodb.auth.password), C(rabbitmq.auth.password),
        C(rabbitmq.auth.erlangCookie)); otherwise the cleanup is refused, since it deletes the 3.x
        C(postgresql) Secret and the upgrade replaces the others. Required when one of those Secrets holds a
        password.
    type: path
  kinds:
    description: The kinds to clean; the default is the 14 kinds of C(kots-exporter.sh).
    type: list
    elements: str
    default: [ServiceAccount, ConfigMap, Job, DaemonSet, Secret, Role, RoleBinding, Service, CronJob, Deployment,
              StatefulSet, NetworkPolicy, PersistentVolumeClaim, PodDisruptionBudget]
  secrets:
    description:
      - Secrets of KOTS to delete by name. Helm's release records (C(sh.helm.release.v1.*), or labelled
        C(owner=helm)) are refused.
    type: list
    elements: str
    default: [kotsadm-sessions, kotsadm-replicated-registry]
  job_prefix:
    description: Jobs whose name starts with it are deleted (with their Pods). Empty deletes none.
    type: str
    default: inject-bottoken
  postgresql_internal:
    description:
      - Whether Postgres runs inside the cluster (C(postgresql.internal) of the 3.x values, the
        C(postgresql_internal) result of M(circleci.server.kots_export)). Then the C(postgresql) StatefulSet is
        deleted with orphan propagation and the C(postgresql) Secret is deleted.
    type: bool
    required: true
"""

EXAMPLES = r"""
- name: List what the KOTS cleanup would delete
  circleci.server.kots_cleanup:
    namespace: circleci-server
    postgresql_internal: true
  check_mode: true
  register: kots_plan

- name: Clean up KOTS (point of no return)
  circleci.server.kots_cleanup:
    namespace: circleci-server
    postgresql_internal: true
"""

RETURN = r"""
deleted:
  description: The objects deleted (in check mode, to delete), as C(Kind/name), in deletion order.
  returned: always
  type: list
  elements: str
  sample: ["Deployment/kotsadm", "PersistentVolumeClaim/kotsadm-minio-kotsadm-minio-0", "Secret/kotsadm-sessions"]
orphaned:
  description: The objects deleted with orphan propagation (their Pods and volumes stay).
  returned: always
  type: list
  elements: str
  sample: ["StatefulSet/postgresql"]
cleaned:
  description: The objects whose KOTS labels and annotations were (would be) removed, as C(Kind/name).
  returned: always
  type: list
  elements: str
passwords_checked:
  description: The 4.0 values paths of the datastore passwords found in O(values_file), equal to their Secrets'.
  returned: always
  type: list
  elements: str
  sample: ["postgresql.auth.postgresPassword", "mongodb.auth.rootPassword"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.plugins.module_utils import k8s_objects
from ansible_collections.circleci.server.plugins.module_utils import kots
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile

KOTS_LABELS = ("kots.io/app-slug", "kots.io/backup")
KOTS_ANNOTATIONS = ("kots.io/app-slug",)


def kots_deployed(obj) -> bool:
    """Whether an object carries the kots.io/app-slug label or annotation KOTS gave what it deployed."""
    meta = (obj or {}).get("metadata") or {}
    return "kots.io/app-slug" in (meta.get("labels") or {}) or "kots.io/app-slug" in (meta.get("annotations") or {})


def plan_cleanup(client, params):
    """(patches, deletions): [(kind, name, patch, obj)], [(kind, name, propagation)], reading only."""
    namespace = params["namespace"]
    deletions, doomed = [], set()

    def delete(kind, name, propagation="Background"):
        if (kind, name) not in doomed:
            doomed.add((kind, name))
            deletions.append((kind, name, propagation))

    listed = {}
    for kind in params["kinds"]:
        listed[kind] = client.list(kind, namespace)
    for kind in params["kinds"]:
        for obj in listed[kind]:
            if ((obj.get("metadata") or {}).get("labels") or {}).get("kots.io/kotsadm") == "true" \
                    and not k8s_objects.helm_storage(dict(obj, kind=kind)):
                delete(kind, obj["metadata"]["name"])
    for name in params["secrets"]:
        found = client.get("Secret", namespace, name)
        if found is not None and not k8s_objects.helm_storage(dict(found, kind="Secret")):
            delete("Secret", name)
    if params["job_prefix"]:
        jobs = listed["Job"] if "Job" in listed else client.list("Job", namespace)
        for obj in jobs:
            if obj["metadata"]["name"].startswith(params["job_prefix"]):
                delete("Job", obj["metadata"]["name"])
    if params["postgresql_internal"]:
        # Only the 3.x ones, which KOTS labelled: after the upgrade the 4.0 chart's have the same names.
        if kots_deployed(client.get("StatefulSet", namespace, "postgresql")):
            delete("StatefulSet", "postgresql", "Orphan")
        if kots_deployed(client.get("Secret", namespace, "postgresql")):
            delete("Secret", "postgresql")
    patches = []
    for kind in params["kinds"]:
        for obj in listed[kind]:
            name = obj["metadata"]["name"]
            if (kind, name) in doomed or k8s_objects.helm_storage(dict(obj, kind=kind)):
                continue
            patch = k8s_objects.kots_metadata_patch(obj, KOTS_LABELS, KOTS_ANNOTATIONS)
            if patch:
                patches.append((kind, name, patch, obj))
    return patches, deletions


def check_inputs(params):
    """Refuse, before any request, what would make the cleanup touch what it must not."""
    k8s_objects.check_namespace(params["namespace"])
    for name in params["secrets"]:
        if not name or name.startswith("sh.helm.release.") or not k8s_objects.RELEASE_NAME.match(name):
            raise k8s.K8sError(
                "secrets holds %r, which is %s: the KOTS cleanup deletes only KOTS's own Secrets (kotsadm-sessions, "
                "kotsadm-replicated-registry). Nothing was changed." % (
                    name, "a Helm release record" if name.startswith("sh.helm.release.") else "not a Secret name"))
    for kind in params["kinds"]:
        if kind not in k8s_objects.KINDS:
            raise k8s.K8sError("kinds holds %r: the KOTS cleanup works on the kinds KOTS deployed (%s)." % (
                kind, ", ".join(k8s_objects.KINDS)))


def read_values_file(path):
    """The 4.0 values file as a tree; K8sError (with what to do) when it cannot be read."""
    try:
        text = kots.read_text_file(path, "values_file")
        tree, _layout = yamlfile.load(text, name="values_file %s" % path)
    except (kots.KotsExportError, yamlfile.ValuesFileError) as exc:
        raise k8s.K8sError("%s (values_file: the 4.0 values file kots_export wrote.)" % exc)
    return tree


def check_passwords(client, params):
    """The values paths of the datastore passwords carried; K8sError naming those missing (never a value)."""
    namespace = params["namespace"]

    def read_secret(name):
        found = client.get("Secret", namespace, name)
        return k8s.decode_secret_data(found) if found is not None else None

    values = read_values_file(params["values_file"]) if params["values_file"] else {}
    carried, _sources = kots.datastore_passwords(values, read_secret)
    if carried and not params["values_file"]:
        raise k8s.K8sError(
            "values_file is not set, and the 3.x Secrets hold the passwords of %s: give the 4.0 values file that "
            "carries them (kots_export writes it), so that the cleanup cannot lose them. Nothing was changed."
            % ", ".join(kots.path_text(path) for path in sorted(carried)))
    missing = kots.uncarried_passwords(values, read_secret)
    if missing:
        raise k8s.K8sError(
            "The 4.0 values file %s does not carry the 3.x datastore passwords: %s. The KOTS cleanup deletes the 3.x "
            "postgresql Secret and the upgrade replaces the others, so the 4.0 release would get passwords that no "
            "longer match the data. Nothing was changed: run kots_export again (it carries them from the Secrets) "
            "or set them in the file, then re-run." % (params["values_file"], "; ".join(missing)))
    return [kots.path_text(path) for path in sorted(carried)]


def main():
    argument_spec = dict(
        namespace=dict(type="str", default="circleci-server"),
        release=dict(type="str", default="circleci-server"),
        values_file=dict(type="path"),
        kinds=dict(type="list", elements="str", default=k8s_objects.DEFAULT_KINDS),
        secrets=dict(type="list", elements="str", default=["kotsadm-sessions", "kotsadm-replicated-registry"], no_log=False),
        job_prefix=dict(type="str", default="inject-bottoken"),
        postgresql_internal=dict(type="bool", required=True),
    )
    argument_spec.update(k8s.K8S_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    namespace = params["namespace"]
    if not k8s.HAS_K8S:
        module.fail_json(msg=k8s.missing_library_message())
    try:
        check_inputs(params)
        client = k8s_objects.ObjectClient.from_params(params)
        if not client.namespace_exists(namespace):
            raise k8s.K8sError("Namespace %s does not exist: give the namespace of the CircleCI Server 3.x install "
                               "(kubectl get namespaces). Nothing was changed." % namespace)
        k8s_objects.check_kots_3x_release(client, namespace, params["release"])
        checked = check_passwords(client, params)
        patches, deletions = plan_cleanup(client, params)
    except k8s.K8sError as exc:
        module.fail_json(msg=str(exc))

    result = dict(
        changed=bool(patches or deletions),
        deleted=["%s/%s" % (kind, name) for kind, name, _propagation in deletions],
        orphaned=["%s/%s" % (kind, name) for kind, name, propagation in deletions if propagation == "Orphan"],
        cleaned=["%s/%s" % (kind, name) for kind, name, _patch, _obj in patches],
        passwords_checked=checked,
    )
    if module._diff:
        keys = KOTS_LABELS + KOTS_ANNOTATIONS
        before = {"objects": result["deleted"], "kots_metadata": {
            "%s/%s" % (kind, name): k8s_objects.metadata_view(obj, keys) for kind, name, _patch, obj in patches}}
        after = {"objects": [], "kots_metadata": {key: {"labels": {}, "annotations": {}} for key in before["kots_metadata"]}}
        result["diff"] = dict(before=before, after=after)
    if module.check_mode:
        module.exit_json(**result)

    done = []
    try:
        for kind, name, patch, _obj in patches:
            client.merge_patch(kind, namespace, name, patch)
        for kind, name, propagation in deletions:
            client.delete(kind, namespace, name, propagation)
            done.append("%s/%s" % (kind, name))
    except k8s.K8sError as exc:
        result["deleted"] = done
        module.fail_json(msg="%s Deleted before the failure: %s. Re-run: what is gone is skipped."
                             % (exc, ", ".join(done) or "nothing"), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
