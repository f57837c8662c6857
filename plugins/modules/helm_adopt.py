#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_adopt
short_description: Mark the objects of a namespace as owned by a Helm release, so that Helm adopts them
version_added: 0.1.0
description:
  - Gives every object of O(kinds) in O(namespace) the C(meta.helm.sh/release-name) and
    C(meta.helm.sh/release-namespace) annotations and the C(app.kubernetes.io/managed-by=Helm) label, which
    C(helm upgrade) requires before it takes over an object that exists outside the release. This is the
    annotation step of CircleCI's C(kots-exporter.sh) for the in-place 3.x (KOTS) to 4.0 migration.
  - Objects that already carry them are not touched, so a re-run reports no change. Helm's own release
    records (Secrets labelled C(owner=helm)) are never touched.
  - An object owned by another Helm release is not re-labelled; the module fails and names it, unless
    O(skip_conflicts) is set.
  - Each object is changed with one JSON merge patch that only adds the two annotations and the label.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.k8s_auth
attributes:
  check_mode:
    support: full
    description: Lists (reads) the objects and reports which would be adopted; sends no write.
  diff_mode:
    support: full
    description: The Helm ownership metadata of each object to adopt, before and after.
options:
  namespace:
    description:
      - The namespace of the objects and of the release. It must exist; an empty or malformed name is refused.
    type: str
    default: circleci-server
  release:
    description: The Helm release that adopts the objects.
    type: str
    default: circleci-server
  kinds:
    description:
      - The kinds to adopt. The default is the 14 kinds C(kots-exporter.sh) annotated, in its order.
      - Any kind the API server serves may be given (a kind the 4.x chart owns, such as V(Ingress),
        V(HorizontalPodAutoscaler), a custom resource's kind); kinds outside the built-in table are found
        through API discovery.
      - "Cluster-scoped kinds (V(ClusterRole), V(ClusterRoleBinding), ...): only the objects that carry the
        C(kots.io/app-slug) label or C(app.kubernetes.io/instance=<release>) are adopted (and O(label_selector)
        applies), never every object of the cluster."
      - Kinds Helm never owns are refused with the reason (V(Pod), V(ReplicaSet), V(Event), V(Node),
        V(Namespace), ...).
    type: list
    elements: str
    default: [ServiceAccount, ConfigMap, Job, DaemonSet, Secret, Role, RoleBinding, Service, CronJob, Deployment,
              StatefulSet, NetworkPolicy, PersistentVolumeClaim, PodDisruptionBudget]
  label_selector:
    description:
      - Only adopt the objects this label selector matches, for example V(kots.io/kotsadm!=true). Empty adopts
        every object of O(kinds), as the script did.
      - It is checked against the Kubernetes label selector syntax before any request; a malformed one is
        refused.
    type: str
    default: ""
  skip_conflicts:
    description:
      - Leave objects owned by another Helm release as they are and report them in RV(conflicts), instead of
        failing.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Let the circleci-server release adopt what KOTS deployed
  circleci.server.helm_adopt:
    namespace: circleci-server
    release: circleci-server
  register: adopt

- name: Show what would be adopted, changing nothing
  circleci.server.helm_adopt:
    namespace: circleci-server
  check_mode: true
  diff: true
"""

RETURN = r"""
adopted:
  description: The objects that were (in check mode, would be) adopted, as C(Kind/name).
  returned: always
  type: list
  elements: str
  sample: ["Service/vm-service", "Deployment/frontend"]
already_adopted:
  description: How many objects already carried the release's ownership metadata.
  returned: always
  type: int
  sample: 42
conflicts:
  description: Objects owned by another Helm release, as C(Kind/name (release namespace/name)).
  returned: always
  type: list
  elements: str
counts:
  description: Per kind, how many objects were found.
  returned: always
  type: dict
  sample: {"Service": 9, "Deployment": 7}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.plugins.module_utils import k8s_objects


def cluster_scoped_owned(obj, release) -> bool:
    """A cluster-scoped object is adopted only when it says it belongs to this install."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return "kots.io/app-slug" in labels or labels.get("app.kubernetes.io/instance") == release


def plan_adoption(client, params):
    """(plan, conflicts, counts, already) for the objects of params' kinds; reads only."""
    namespace, release = params["namespace"], params["release"]
    plan, conflicts, counts, already = [], [], {}, 0
    for kind in params["kinds"]:
        namespaced = client.namespaced(kind)
        items = client.list(kind, namespace, params["label_selector"] or None)
        if not namespaced:
            items = [obj for obj in items if cluster_scoped_owned(obj, release)]
        counts[kind] = len(items)
        for obj in items:
            if k8s_objects.helm_storage(dict(obj, kind=kind)):
                continue
            state, patch = k8s_objects.adoption_patch(obj, release, namespace)
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if state == "conflict":
                conflicts.append("%s (%s/%s)" % (k8s_objects.object_id(kind, obj),
                                                 annotations.get(k8s_objects.HELM_RELEASE_NAMESPACE),
                                                 annotations.get(k8s_objects.HELM_RELEASE_NAME)))
            elif state == "adopted":
                already += 1
            else:
                plan.append((kind, obj, patch))
    return plan, conflicts, counts, already


def main():
    argument_spec = dict(
        namespace=dict(type="str", default="circleci-server"),
        release=dict(type="str", default="circleci-server"),
        kinds=dict(type="list", elements="str", default=k8s_objects.DEFAULT_KINDS),
        label_selector=dict(type="str", default=""),
        skip_conflicts=dict(type="bool", default=False),
    )
    argument_spec.update(k8s.K8S_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    namespace = params["namespace"]
    if not k8s.HAS_K8S:
        module.fail_json(msg=k8s.missing_library_message())

    try:
        k8s_objects.check_namespace(namespace)
        k8s_objects.check_label_selector(params["label_selector"])
        if not params["kinds"]:
            raise k8s.K8sError("kinds is empty: give the kinds to adopt, or omit kinds for the default 14.")
        if not params["release"] or not k8s_objects.RELEASE_NAME.match(params["release"]):
            raise k8s.K8sError("release %r is not a Helm release name: give the release that adopts the objects "
                               "(circleci-server for a KOTS install)." % (params["release"],))
        client = k8s_objects.ObjectClient.from_params(params)
        for kind in params["kinds"]:
            client.resolve(kind)  # every kind refused or found before the first list
        if not client.namespace_exists(namespace):
            raise k8s.K8sError("Namespace %s does not exist: give the namespace of the CircleCI Server install "
                               "(kubectl get namespaces). Nothing was changed." % namespace)
        plan, conflicts, counts, already = plan_adoption(client, params)
    except k8s.K8sError as exc:
        module.fail_json(msg=str(exc))

    result = dict(changed=bool(plan), adopted=[k8s_objects.object_id(kind, obj) for kind, obj, _patch in plan],
                  already_adopted=already, conflicts=conflicts, counts=counts)
    if conflicts and not params["skip_conflicts"]:
        result["changed"] = False
        module.fail_json(msg="%d object(s) in namespace %s belong to another Helm release and were not changed: %s. "
                             "Find out why (helm list -A), move or delete them, or set skip_conflicts to leave them."
                             % (len(conflicts), namespace, ", ".join(conflicts)), **result)
    if module._diff:
        keys = (k8s_objects.MANAGED_BY, k8s_objects.HELM_RELEASE_NAME, k8s_objects.HELM_RELEASE_NAMESPACE)
        before, after = {}, {}
        for kind, obj, patch in plan:
            ident = k8s_objects.object_id(kind, obj)
            before[ident] = k8s_objects.metadata_view(obj, keys)
            after[ident] = {"labels": dict(before[ident]["labels"], **patch["metadata"]["labels"]),
                            "annotations": dict(before[ident]["annotations"], **patch["metadata"]["annotations"])}
        result["diff"] = dict(before=before, after=after)
    if module.check_mode:
        module.exit_json(**result)
    done = []
    for kind, obj, patch in plan:
        name = obj["metadata"]["name"]
        try:
            client.merge_patch(kind, namespace, name, patch)
        except k8s.K8sError as exc:
            result.update(adopted=done, changed=bool(done))
            module.fail_json(msg="%s Adopted before the failure: %s. Re-run: adopted objects are skipped."
                                 % (exc, ", ".join(done) or "none"), **result)
        done.append("%s/%s" % (kind, name))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
