"""Instant controllers of the lab cluster: what kube-controller-manager, the scheduler and the kubelets
would have done by the time a client looks again.

On every write the store calls ``admit`` (defaulting and mutation, like admission plugins) before
storing and ``reconcile`` after, so a single request leaves the world converged:
- Deployment -> an owned ReplicaSet ``<deploy>-<pod-template-hash>`` whose template is the
  Deployment's (plus the ``pod-template-hash`` label), old ReplicaSets scaled to 0, status ready;
- ReplicaSet -> owned Pods ``<rs>-<5 chars>`` with the template's labels, Running and Ready;
- StatefulSet -> Pods ``<sts>-0..N-1``, a ControllerRevision, and one PVC ``<claim>-<sts>-<i>``
  per volumeClaimTemplate that is NOT owned by the StatefulSet (it survives its deletion) unless
  ``persistentVolumeClaimRetentionPolicy.whenDeleted`` is ``Delete``;
- DaemonSet -> one Pod per Node; Job -> one Pod Succeeded and the Job Complete;
- Pod created directly -> Running and Ready (Succeeded when restartPolicy is Never);
- Namespace -> Active, with the ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap;
- PersistentVolumeClaim -> Bound to a PersistentVolume ``pvc-<uid>`` (deleted with the claim);
- Service -> a cluster IP, node ports, and for type LoadBalancer an ingress hostname (EKS style)
  or IP (GKE style);
- Secret -> ``stringData`` folded into ``data`` (base64); CustomResourceDefinition -> Established,
  and its resources served (removed, with their objects, when the CRD is deleted);
- a Pod deleted by a client is replaced by its controller, like the real ReplicaSet controller.

Not modelled: rollout pacing (maxSurge/maxUnavailable: the new ReplicaSet is complete at once),
image pulls, crash loops, failing Jobs, readiness probes, scheduling constraints (every Pod lands on
the first Node), Endpoints, HPA and PDB status, CronJob schedules, events.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random

from .store import Store, b64, now_rfc3339, selector_from_label_selector, match_labels

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    """A pod-template-hash in the style of the real one (10 characters of a safe alphabet)."""
    digest = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    out = []
    while len(out) < 10:
        digest, index = divmod(digest, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[index])
    return "".join(out)


def random_suffix(length: int = 5) -> str:
    return "".join(random.choices(SAFE_ALPHABET, k=length))


def owner_ref(obj: dict, controller: bool = True) -> dict:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


def controlled_by(obj: dict, owner: dict) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


class Controllers:
    """Defaulting and instant reconciliation for the built-in kinds; see the module docstring."""

    def __init__(self, store: Store, load_balancer: str = "hostname", region: str = "us-east-1"):
        self.store = store
        self.registry = store.registry
        self.load_balancer = load_balancer
        self.region = region
        self.kubelet_version = "v1.27.9"
        self._busy: set = set()
        self._node_port = 30000
        self.pod_states: list = []
        # Callables ``hook(pod) -> state or None`` that stand-ins with state (tests/lab/datastores.py) use to say
        # how a new Pod fares; a rule of set_pod_state wins over them.
        self.pod_state_hooks: list = []

    def _type(self, group: str, plural: str):
        return self.registry.by_plural(group, "v1" if plural != "horizontalpodautoscalers" else "v2", plural)

    # ------------------------------------------------------------------ admission / defaulting
    def admit(self, rtype, obj: dict, current: dict | None) -> None:
        if rtype.custom:
            return
        handler = getattr(self, "_admit_" + rtype.kind.lower(), None)
        if handler is not None:
            handler(obj, current)

    @staticmethod
    def _admit_secret(obj: dict, current: dict | None) -> None:
        del current
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.get("data") or {}
            data.update({k: b64(str(v)) for k, v in string_data.items()})
            obj["data"] = data
        obj.setdefault("type", "Opaque")

    @staticmethod
    def _admit_namespace(obj: dict, current: dict | None) -> None:
        del current
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    @staticmethod
    def _admit_deployment(obj: dict, current: dict | None) -> None:
        del current
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})

    @staticmethod
    def _admit_statefulset(obj: dict, current: dict | None) -> None:
        del current
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})

    @staticmethod
    def _admit_replicaset(obj: dict, current: dict | None) -> None:
        del current
        obj.setdefault("spec", {}).setdefault("replicas", 1)

    @staticmethod
    def _admit_daemonset(obj: dict, current: dict | None) -> None:
        del current
        spec = obj.setdefault("spec", {})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})

    @staticmethod
    def _admit_job(obj: dict, current: dict | None) -> None:
        spec = obj.setdefault("spec", {})
        uid = obj["metadata"]["uid"]
        if current is None:
            spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
            labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
            labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": obj["metadata"]["name"],
                           "controller-uid": uid, "job-name": obj["metadata"]["name"]})
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)

    def _admit_pod(self, obj: dict, current: dict | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        if current is not None or (obj.get("status") or {}).get("phase"):
            return
        nodes = self.store.iter_raw("", "nodes")
        if nodes and not spec.get("nodeName"):
            spec["nodeName"] = sorted(n["metadata"]["name"] for n in nodes)[0]
        obj["status"] = pod_status(obj, self.pod_state(obj), self.store.next_ip("10.244"))

    def pod_state(self, pod: dict) -> str:
        """The state a new Pod reaches: the scripted one (``set_pod_state``) or Running, and for
        run-to-completion Pods (restartPolicy Never, or owned by a Job) Succeeded instead of Running."""
        state = "Running"
        namespace, name = pod["metadata"].get("namespace"), pod["metadata"]["name"]
        best = -1
        images = [c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []]
        for rule_ns, prefix, image, rule_state in self.pod_states:
            if image is not None and not any(i.startswith(image) for i in images):
                continue
            rank = len(prefix) + (1000 if image is not None else 0)
            if rule_ns == namespace and name.startswith(prefix) and rank > best:
                state, best = rule_state, rank
        if best < 0:
            for hook in self.pod_state_hooks:
                state = hook(pod) or state
        run_to_completion = (pod.get("spec") or {}).get("restartPolicy") == "Never" or any(
            r.get("kind") == "Job" for r in pod["metadata"].get("ownerReferences") or [])
        if run_to_completion and state == "Running":
            return "Succeeded"
        if run_to_completion and state == "CrashLoopBackOff":
            return "Failed"
        return state

    def set_pod_state(self, namespace: str, prefix: str, state: str | None, image: str | None = None) -> None:
        """Script the state of the Pods whose name starts with ``prefix`` (and, with ``image``, that run
        an image starting with it); None removes the rule. Existing Pods change at once and their
        controllers' status follows."""
        if state is not None and state not in POD_STATES:
            raise ValueError("a lab pod state is one of %s, not %r" % (", ".join(POD_STATES), state))
        with self.store.lock:
            self.pod_states = [r for r in self.pod_states if r[:3] != (namespace, prefix, image)]
            if state is not None:
                self.pod_states.append((namespace, prefix, image, state))
            pod_type = self._type("", "pods")
            for pod in self.store.iter_raw("", "pods", namespace):
                if not pod["metadata"]["name"].startswith(prefix):
                    continue
                new = copy.deepcopy(pod)
                ip = (pod.get("status") or {}).get("podIP") or self.store.next_ip("10.244")
                new["status"] = pod_status(new, self.pod_state(new), ip)
                self.store.put(pod_type, new)
            for group, plural in (("apps", "replicasets"), ("apps", "deployments"), ("apps", "statefulsets"),
                                  ("apps", "daemonsets"), ("batch", "jobs")):
                rtype = self._type(group, plural)
                for owner in self.store.iter_raw(group, plural, namespace):
                    self.reconcile(rtype, owner)

    def _admit_service(self, obj: dict, current: dict | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        old = (current or {}).get("spec") or {}
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old.get("clusterIP") or self.store.next_ip("10.96")
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("sessionAffinity", "None")
        old_ports = {p.get("port"): p for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                previous = old_ports.get(port.get("port"), {}).get("nodePort")
                if not previous:
                    self._node_port += 1
                    previous = self._node_port
                port["nodePort"] = previous
        if spec["type"] == "LoadBalancer":
            spec.setdefault("externalTrafficPolicy", "Cluster")
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        obj.setdefault("status", {}).setdefault("loadBalancer", {})

    def _admit_persistentvolumeclaim(self, obj: dict, current: dict | None) -> None:
        del current
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("storageClassName", "gp2" if self.load_balancer == "hostname" else "standard")
        if not spec.get("volumeName"):
            spec["volumeName"] = "pvc-" + obj["metadata"]["uid"]
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        obj["status"] = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"], "capacity": {"storage": size}}

    @staticmethod
    def _admit_customresourcedefinition(obj: dict, current: dict | None) -> None:
        del current
        names = dict((obj.get("spec") or {}).get("names") or {})
        names.setdefault("singular", names.get("kind", "").lower())
        names.setdefault("listKind", names.get("kind", "") + "List")
        now = now_rfc3339()
        obj["status"] = {"acceptedNames": names,
                         "conditions": [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                                         "message": "no conflicts found", "lastTransitionTime": now},
                                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                                         "message": "the initial names have been accepted", "lastTransitionTime": now}],
                         "storedVersions": [v["name"] for v in (obj.get("spec") or {}).get("versions") or [] if v.get("storage")]}

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, rtype, obj: dict) -> None:
        if rtype.custom:
            return
        handler = getattr(self, "_reconcile_" + rtype.kind.lower(), None)
        if handler is None:
            return
        uid = obj["metadata"]["uid"]
        if uid in self._busy:
            return
        self._busy.add(uid)
        try:
            handler(rtype, obj)
        finally:
            self._busy.discard(uid)

    def deleted(self, rtype, obj: dict) -> None:
        if rtype.kind == "CustomResourceDefinition" and not rtype.custom:
            spec = obj.get("spec") or {}
            with self.store.lock:
                for version_type in self.registry.versions_of(spec.get("group", ""), (spec.get("names") or {}).get("plural", "")):
                    for child in self.store.iter_raw(version_type.group, version_type.plural):
                        self.store.remove(version_type, child)
                    break
            self.registry.unregister_crd(obj)
        elif rtype.kind == "PersistentVolumeClaim" and not rtype.group:
            pv_type = self._type("", "persistentvolumes")
            volume = self.store.raw(pv_type, None, (obj.get("spec") or {}).get("volumeName", ""))
            if volume is not None and (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
                self.store.remove(pv_type, volume)
        elif rtype.kind == "Pod" and not rtype.group:
            self._replace_deleted_pod(obj)

    def _replace_deleted_pod(self, pod: dict) -> None:
        namespace = pod["metadata"].get("namespace")
        if self.store.raw(self._type("", "namespaces"), None, namespace) is None:
            return
        for ref in pod["metadata"].get("ownerReferences") or []:
            if not ref.get("controller") or ref.get("uid") in self._busy:
                continue
            plural = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}.get(ref.get("kind"))
            if plural is None:
                continue
            owner_type = self._type("apps", plural)
            owner = self.store.raw(owner_type, namespace, ref.get("name"))
            if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
                continue
            self.reconcile(owner_type, owner)
            for grand in owner["metadata"].get("ownerReferences") or []:
                dep_type = self._type("apps", "deployments")
                deployment = self.store.raw(dep_type, namespace, grand.get("name")) if grand.get("kind") == "Deployment" else None
                if deployment is not None and grand.get("controller"):
                    self.reconcile(dep_type, deployment)

    def _put_status(self, rtype, obj: dict, status: dict, annotations: dict | None = None) -> dict:
        new = copy.deepcopy(obj)
        new["status"] = status
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        return self.store.put(rtype, new)

    def _owned(self, group: str, plural: str, owner: dict, adopt: bool = False) -> list:
        """The objects an owner controls; with ``adopt``, orphans its selector matches are adopted first,
        like real controllers do after a ``--cascade=orphan`` delete and re-create."""
        namespace = owner["metadata"].get("namespace")
        if adopt:
            reqs = selector_from_label_selector((owner.get("spec") or {}).get("selector"))
            rtype = self._type(group, plural)
            for obj in self.store.iter_raw(group, plural, namespace):
                refs = obj["metadata"].get("ownerReferences") or []
                if reqs and not any(r.get("controller") for r in refs) and match_labels(obj["metadata"].get("labels"), reqs):
                    adopted = copy.deepcopy(obj)
                    adopted["metadata"]["ownerReferences"] = refs + [owner_ref(owner)]
                    self.store.put(rtype, adopted)
        return [o for o in self.store.iter_raw(group, plural, namespace) if controlled_by(o, owner)]

    def _create_child(self, group: str, plural: str, child: dict) -> dict:
        rtype = self._type(group, plural)
        return self.store.create(rtype, child["metadata"].get("namespace"), child)

    def _reconcile_namespace(self, rtype, obj: dict) -> None:
        del rtype
        name = obj["metadata"]["name"]
        sa_type = self._type("", "serviceaccounts")
        if self.store.raw(sa_type, name, "default") is None:
            self.store.create(sa_type, name, {"metadata": {"name": "default", "namespace": name}})
        cm_type = self._type("", "configmaps")
        if self.store.raw(cm_type, name, "kube-root-ca.crt") is None:
            self.store.create(cm_type, name, {"metadata": {"name": "kube-root-ca.crt", "namespace": name},
                                              "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n"}})

    def _reconcile_service(self, rtype, obj: dict) -> None:
        spec = obj.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            return
        digest = hashlib.sha256(obj["metadata"]["uid"].encode()).hexdigest()
        if self.load_balancer == "ip":
            ingress = {"ip": "34.%d.%d.%d" % (int(digest[:2], 16), int(digest[2:4], 16), int(digest[4:6], 16) or 1),
                       "ipMode": "VIP"}
        else:
            ingress = {"hostname": "a%s-%d.%s.elb.amazonaws.com" % (digest[:32], int(digest[32:40], 16) % 10 ** 10, self.region)}
        self._put_status(rtype, obj, {"loadBalancer": {"ingress": [ingress]}})

    def _reconcile_persistentvolumeclaim(self, rtype, obj: dict) -> None:
        del rtype
        spec = obj.get("spec") or {}
        pv_type = self._type("", "persistentvolumes")
        if self.store.raw(pv_type, None, spec.get("volumeName", "")) is not None:
            return
        meta = obj["metadata"]
        self.store.create(pv_type, None, {
            "metadata": {"name": spec["volumeName"], "annotations": {"pv.kubernetes.io/provisioned-by": "lab.csi"}},
            "spec": {"accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                     "capacity": dict((obj.get("status") or {}).get("capacity") or {"storage": "1Gi"}),
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": meta["name"],
                                  "namespace": meta.get("namespace"), "uid": meta["uid"]},
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": spec.get("storageClassName"),
                     "volumeMode": spec.get("volumeMode", "Filesystem")},
            "status": {"phase": "Bound"}})

    def _reconcile_customresourcedefinition(self, rtype, obj: dict) -> None:
        del rtype
        self.registry.register_crd(obj)

    def _reconcile_deployment(self, rtype, dep: dict) -> None:
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        pod_hash = template_hash(template)
        replicas = spec.get("replicas", 1)
        owned = self._owned("apps", "replicasets", dep, adopt=True)
        rs_type = self._type("apps", "replicasets")
        revision = max([int(((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")) or 0)
                        for rs in owned] + [0])
        current = next((rs for rs in owned if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == pod_hash), None)
        if current is None:
            revision += 1
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            self._create_child("apps", "replicasets", {
                "metadata": {"name": "%s-%s" % (dep["metadata"]["name"], pod_hash), "namespace": dep["metadata"]["namespace"],
                             "labels": dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": pod_hash}),
                             "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                             "deployment.kubernetes.io/desired-replicas": str(replicas),
                                             "deployment.kubernetes.io/max-replicas": str(replicas + 1)},
                             "ownerReferences": [owner_ref(dep)]},
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template}})
        else:
            own_revision = int((current["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0)
            new = copy.deepcopy(current)
            if own_revision < revision:
                # A rollback re-activates an old ReplicaSet: like the real controller, it becomes the newest revision.
                revision += 1
                new["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(revision)
            if (current.get("spec") or {}).get("replicas") != replicas:
                new["spec"]["replicas"] = replicas
                new["metadata"]["generation"] = new["metadata"].get("generation", 1) + 1
                new["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(replicas)
            if new != current:
                self.reconcile(rs_type, self.store.put(rs_type, new))
        current = next((rs for rs in self._owned("apps", "replicasets", dep)
                        if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == pod_hash), None)
        new_pods = self._owned("", "pods", current) if current is not None else []
        rolled_out = len(new_pods) == replicas and all(pod_ready(p) for p in new_pods)
        # A rollout whose new Pods are not Ready keeps the newest old ReplicaSet at replicas - maxUnavailable,
        # like the real rolling update that cannot progress; a complete one scales every old ReplicaSet to 0.
        keep = 0 if rolled_out else max(0, replicas - max_unavailable(dep))
        olds = sorted((rs for rs in owned if rs is not current and (rs["metadata"].get("labels") or {}).get("pod-template-hash") != pod_hash),
                      key=lambda rs: -int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0))
        for old in olds:
            target = keep if (old.get("spec") or {}).get("replicas", 0) > 0 else 0
            keep = 0 if target else keep
            if (old.get("spec") or {}).get("replicas", 0) == target:
                continue
            new = copy.deepcopy(old)
            new["spec"]["replicas"] = target
            new["metadata"]["generation"] = new["metadata"].get("generation", 1) + 1
            self.reconcile(rs_type, self.store.put(rs_type, new))
        history = sorted((rs for rs in self._owned("apps", "replicasets", dep)
                          if (rs["metadata"].get("labels") or {}).get("pod-template-hash") != pod_hash),
                         key=lambda rs: int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0))
        for old in history[:max(0, len(history) - spec.get("revisionHistoryLimit", 10))]:
            if (old.get("spec") or {}).get("replicas", 0) == 0:
                self.store.remove(rs_type, old)
        dep = self.store.raw(rtype, dep["metadata"]["namespace"], dep["metadata"]["name"])
        all_pods = [p for rs in self._owned("apps", "replicasets", dep) for p in self._owned("", "pods", rs)]
        ready = sum(1 for p in all_pods if pod_ready(p))
        updated = len(new_pods)
        available = ready >= replicas - max_unavailable(dep)
        now = now_rfc3339()
        rs_name = "%s-%s" % (dep["metadata"]["name"], pod_hash)
        status = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": len(all_pods), "updatedReplicas": updated,
                  "readyReplicas": ready, "availableReplicas": ready,
                  "conditions": [{"type": "Available", "status": "True" if available else "False",
                                  "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                                  "message": "Deployment has minimum availability." if available else
                                  "Deployment does not have minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now},
                                 {"type": "Progressing", "status": "True",
                                  "reason": "NewReplicaSetAvailable" if rolled_out else "ReplicaSetUpdated",
                                  "message": ('ReplicaSet "%s" has successfully progressed.' if rolled_out else
                                              'ReplicaSet "%s" is progressing.') % rs_name,
                                  "lastUpdateTime": now, "lastTransitionTime": now}]}
        if len(all_pods) > ready:
            status["unavailableReplicas"] = len(all_pods) - ready
        for key in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
            if not status[key]:
                del status[key]
        old_status = dep.get("status") or {}
        if _same_status(old_status, status):
            status["conditions"] = old_status["conditions"]
        self._put_status(rtype, dep, status, {"deployment.kubernetes.io/revision": str(revision)})

    def _reconcile_replicaset(self, rtype, rs: dict) -> None:
        spec = rs.get("spec") or {}
        replicas = spec.get("replicas", 1)
        pods = sorted(self._owned("", "pods", rs, adopt=True), key=lambda p: p["metadata"]["creationTimestamp"])
        template = spec.get("template") or {}
        for _missing in range(replicas - len(pods)):
            self._create_child("", "pods", self._pod_from_template(rs, template, "%s-%s" % (rs["metadata"]["name"], random_suffix())))
        for pod in pods[replicas:] if replicas < len(pods) else []:
            self.store.remove(self._type("", "pods"), pod)
        rs = self.store.raw(rtype, rs["metadata"]["namespace"], rs["metadata"]["name"])
        pods = self._owned("", "pods", rs)
        ready = sum(1 for p in pods if pod_ready(p))
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                  "observedGeneration": rs["metadata"].get("generation", 1)}
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        self._put_status(rtype, rs, status)

    @staticmethod
    def _pod_from_template(owner: dict, template: dict, name: str, extra_labels: dict | None = None) -> dict:
        tmeta = template.get("metadata") or {}
        meta = {"name": name, "namespace": owner["metadata"]["namespace"],
                "labels": dict(tmeta.get("labels") or {}, **(extra_labels or {})),
                "ownerReferences": [owner_ref(owner)]}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if owner["kind"] == "ReplicaSet":
            meta["generateName"] = owner["metadata"]["name"] + "-"
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}

    def _reconcile_statefulset(self, rtype, sts: dict) -> None:
        spec = sts.get("spec") or {}
        name, namespace = sts["metadata"]["name"], sts["metadata"]["namespace"]
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        revision = "%s-%s" % (name, template_hash(template)[:10])
        cr_type = self._type("apps", "controllerrevisions")
        revisions = self._owned("apps", "controllerrevisions", sts, adopt=True)
        self._owned("", "pods", sts, adopt=True)
        if not any(r["metadata"]["name"] == revision for r in revisions):
            self.store.create(cr_type, namespace, {
                "metadata": {"name": revision, "namespace": namespace, "ownerReferences": [owner_ref(sts)],
                             "labels": dict((template.get("metadata") or {}).get("labels") or {},
                                            **{"controller.kubernetes.io/hash": revision.rsplit("-", 1)[1]})},
                "data": {"spec": {"template": copy.deepcopy(template)}},
                "revision": max([r.get("revision", 0) for r in revisions] + [0]) + 1})
        pod_type = self._type("", "pods")
        pvc_type = self._type("", "persistentvolumeclaims")
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        selector_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        for index in range(replicas):
            pod_name = "%s-%d" % (name, index)
            volumes = []
            for claim in spec.get("volumeClaimTemplates") or []:
                claim_name = "%s-%s" % (claim["metadata"]["name"], pod_name)
                volumes.append({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
                if self.store.raw(pvc_type, namespace, claim_name) is None:
                    meta = {"name": claim_name, "namespace": namespace,
                            "labels": dict(selector_labels, **((claim.get("metadata") or {}).get("labels") or {}))}
                    if policy.get("whenDeleted") == "Delete":
                        meta["ownerReferences"] = [owner_ref(sts, controller=False)]
                    self.store.create(pvc_type, namespace, {"metadata": meta, "spec": copy.deepcopy(claim.get("spec") or {})})
            existing = self.store.raw(pod_type, namespace, pod_name)
            if existing is not None:
                if (existing["metadata"].get("labels") or {}).get("controller-revision-hash") == revision:
                    continue
                self.store.remove(pod_type, existing)
            pod = self._pod_from_template(sts, template, pod_name, {
                "controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(index)})
            pod["spec"]["hostname"] = pod_name
            if spec.get("serviceName"):
                pod["spec"]["subdomain"] = spec["serviceName"]
            pod["spec"]["volumes"] = list(pod["spec"].get("volumes") or []) + volumes
            self.store.create(pod_type, namespace, pod)
        for pod in self._owned("", "pods", sts):
            labels = pod["metadata"].get("labels") or {}
            if int(labels.get("apps.kubernetes.io/pod-index", "0")) >= replicas:
                self.store.remove(pod_type, pod)
        sts = self.store.raw(rtype, namespace, name)
        ready = sum(1 for p in self._owned("", "pods", sts) if pod_ready(p))
        status = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": replicas, "readyReplicas": ready,
                  "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": ready,
                  "currentRevision": revision, "updateRevision": revision, "collisionCount": 0}
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status[key]:
                del status[key]
        self._put_status(rtype, sts, status)

    def _reconcile_daemonset(self, rtype, ds: dict) -> None:
        spec = ds.get("spec") or {}
        namespace = ds["metadata"]["namespace"]
        template = spec.get("template") or {}
        revision = template_hash(template)
        generation = str(ds["metadata"].get("generation", 1))
        nodes = sorted(n["metadata"]["name"] for n in self.store.iter_raw("", "nodes"))
        pod_type = self._type("", "pods")
        on_node = {}
        for pod in self._owned("", "pods", ds, adopt=True):
            current = (pod["metadata"].get("labels") or {}).get("controller-revision-hash") == revision
            node = (pod.get("spec") or {}).get("nodeName")
            if not current or node not in nodes or node in on_node:
                self.store.remove(pod_type, pod)
            else:
                on_node[node] = pod
        for node in nodes:
            if node in on_node:
                continue
            pod = self._pod_from_template(ds, template, "%s-%s" % (ds["metadata"]["name"], random_suffix()),
                                          {"controller-revision-hash": revision, "pod-template-generation": generation})
            pod["spec"]["nodeName"] = node
            self.store.create(pod_type, namespace, pod)
        ds = self.store.raw(rtype, namespace, ds["metadata"]["name"])
        count = len(nodes)
        ready = sum(1 for p in self._owned("", "pods", ds) if pod_ready(p))
        status = {"currentNumberScheduled": count, "desiredNumberScheduled": count, "numberAvailable": ready,
                  "numberMisscheduled": 0, "numberReady": ready, "updatedNumberScheduled": count,
                  "observedGeneration": ds["metadata"].get("generation", 1)}
        if count > ready:
            status["numberUnavailable"] = count - ready
        self._put_status(rtype, ds, status)

    def _reconcile_job(self, rtype, job: dict) -> None:
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or []) or (job.get("spec") or {}).get("suspend"):
            return
        spec = job.get("spec") or {}
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        completions = spec.get("completions") or 1
        pods = self._owned("", "pods", job)
        for _missing in range(completions - len(pods)):
            pod = self._pod_from_template(job, spec.get("template") or {}, "%s-%s" % (name, random_suffix()))
            pod["metadata"]["generateName"] = name + "-"
            self._create_child("", "pods", pod)
        job = self.store.raw(rtype, namespace, name)
        phases = [(p.get("status") or {}).get("phase") for p in self._owned("", "pods", job)]
        now = now_rfc3339()
        status = {"startTime": (job.get("status") or {}).get("startTime") or now, "ready": 0, "terminating": 0,
                  "uncountedTerminatedPods": {}}
        if "Failed" in phases:
            status.update(failed=phases.count("Failed"), conditions=[
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                 "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now}])
        elif phases.count("Succeeded") >= completions:
            status.update(completionTime=now, succeeded=completions, conditions=[
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now}])
        else:
            status.update(active=len(phases) - phases.count("Succeeded"))
            if phases.count("Succeeded"):
                status["succeeded"] = phases.count("Succeeded")
        self._put_status(rtype, job, status)

    def _reconcile_node(self, rtype, node: dict) -> None:
        del rtype, node
        ds_type = self._type("apps", "daemonsets")
        for ds in self.store.iter_raw("apps", "daemonsets"):
            self.reconcile(ds_type, ds)


def _same_status(old: dict, new: dict) -> bool:
    strip = ("conditions",)
    return ({k: v for k, v in old.items() if k not in strip} == {k: v for k, v in new.items() if k not in strip}
            and [(c.get("type"), c.get("status")) for c in old.get("conditions") or []]
            == [(c.get("type"), c.get("status")) for c in new.get("conditions") or []])


POD_STATES = ("Running", "CrashLoopBackOff", "Pending", "Failed", "Succeeded")


def pod_status(pod: dict, state: str, ip: str) -> dict:
    """The status of a Pod in one of ``POD_STATES``, reached at once: Running and Ready; crash-looping
    (Running, not Ready, restarted 5 times); Pending (unschedulable); Failed or Succeeded (finished)."""
    if state not in POD_STATES:
        raise ValueError("a lab pod state is one of %s, not %r" % (", ".join(POD_STATES), state))
    now = now_rfc3339()
    spec = pod.get("spec") or {}
    if state == "Pending":
        return {"phase": "Pending", "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
                                "lastTransitionTime": now,
                                "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available."}]}
    ready = "True" if state == "Running" else "False"
    conditions = [{"type": t, "status": "True" if t in ("PodScheduled", "Initialized", "PodReadyToStartContainers") else ready,
                   "lastProbeTime": None, "lastTransitionTime": now}
                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    for cond in conditions:
        if cond["status"] == "False":
            cond["reason"] = "PodCompleted" if state in ("Succeeded", "Failed") else "ContainersNotReady"
    statuses = []
    for container in spec.get("containers") or []:
        container_id = "containerd://" + hashlib.sha256((pod["metadata"].get("uid", "") + str(container.get("name"))).encode()).hexdigest()
        entry = {"name": container.get("name"), "image": container.get("image"), "imageID": "", "containerID": container_id,
                 "ready": state == "Running", "started": state in ("Running", "CrashLoopBackOff"), "restartCount": 0}
        if state == "Running":
            entry["state"] = {"running": {"startedAt": now}}
        elif state == "CrashLoopBackOff":
            entry["restartCount"] = 5
            entry["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": "back-off 5m0s restarting failed container=%s" % container.get("name")}}
            entry["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}
        else:
            code = 0 if state == "Succeeded" else 1
            entry["state"] = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                             "startedAt": now, "finishedAt": now}}
        statuses.append(entry)
    return {"phase": "Running" if state == "CrashLoopBackOff" else state, "conditions": conditions, "containerStatuses": statuses,
            "hostIP": "10.0.0.10", "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": "BestEffort", "startTime": now}


def pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def max_unavailable(deployment: dict) -> int:
    """maxUnavailable of a RollingUpdate Deployment (an int or a percentage of replicas, rounded down)."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    replicas = spec.get("replicas", 1)
    if isinstance(value, str) and value.endswith("%"):
        return replicas * int(value[:-1]) // 100
    return int(value)


def pods_matching(store: Store, namespace: str, selector: dict) -> list:
    """Pods of a namespace that a metav1.LabelSelector selects."""
    reqs = selector_from_label_selector(selector)
    return [p for p in store.iter_raw("", "pods", namespace) if match_labels(p["metadata"].get("labels"), reqs)]
