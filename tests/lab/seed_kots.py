"""Seed a scenario of kind ``kots-3.x``: a CircleCI Server 3.x install as KOTS left it (``aws-3.4``).

``seed.bring_up`` hands a scenario whose ``kind`` is ``kots-3.x`` to ``bring_up_kots``. What it builds,
in order:

1. the Kubernetes API server (``seed._start_kube``), and when the scenario has an ``aws`` section, the AWS
   stand-in with the Route 53 hosted zone of the installation's domain (``aws.route53_zone``), empty; with
   ``aws.nomad_clients`` too, the 3.x Nomad clients' Auto Scaling group (``seed._seed_aws_nomad_clients``), a
   second version of its launch template (``next_version``: what the operator's terraform apply of the
   migration's root module made), and the Nomad stand-in whose nodes are the group's instances
   (``seed._start_nomad``);
2. the KOTS admin console objects (labelled ``kots.io/kotsadm=true``, ``kots.io/backup=velero``): the
   ``kotsadm`` Deployment, ServiceAccount, Role, RoleBinding, Service and ConfigMap, the ``kotsadm-minio``
   and ``kotsadm-postgres`` StatefulSets (whose claims leave labelled PVCs), the ``kotsadm-password``
   Secret, and the unlabelled ``kotsadm-sessions``/``kotsadm-replicated-registry`` Secrets;
3. the 3.x release: ``helm install`` then ``helm upgrade`` of the KOTS-era stand-in chart
   (``tests/lab/kots_chart``, version ``server_version``) with each history entry's values;
4. what KOTS did to the objects it applied: every object of the 14 kinds the migration annotates gets
   the ``kots.io/app-slug`` label and annotation and ``kots.io/backup=velero``, and loses Helm's
   ownership metadata; the four 3.x LoadBalancer Services come from KOTS's own manifests, outside the
   release (so ``helm upgrade`` to 4.0 refuses them until they are annotated);
5. the completed ``inject-bottoken-<suffix>`` Job, the Velero backup, the ``circle-migrator`` Job's
   scripted Pod state and log (``kots.migrator_state``, ``migrator_failing_image``, ``migrator_log``,
   ``migrator_failed_log``);
6. a local chart repository holding ``circleci-server-<target_version>.tgz`` and the inventory.

The stand-in charts are built here (``kots_chart_path``), from one template tree gated on the chart
version, into ``<repo>/.cache/lab-charts`` under a digest of their sources.
"""
from __future__ import annotations

import base64
import copy
import json
import os


from . import yaml_c
from .charts import build_chart, package_chart
from .scenarios import release_steps, write_values_file

CHART_NAME = "circleci-server"
KOTS_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kots_chart")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO_ROOT, ".venv", "bin")
HELM_OWNERSHIP = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")

# The 14 kinds kots-exporter annotated and cleaned (server-scripts.md section 1.3), as (apiVersion, kind).
KINDS = (
    ("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("batch/v1", "Job"), ("apps/v1", "DaemonSet"), ("v1", "Secret"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("v1", "Service"),
    ("batch/v1", "CronJob"), ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "PersistentVolumeClaim"), ("policy/v1", "PodDisruptionBudget"),
)

# The four 3.x LoadBalancers, from KOTS's manifests (not the chart): name -> (selected app, ports).
KOTS_LOAD_BALANCERS = {
    "circleci-server-traefik": ("circleci-server-traefik", (80, 443)),
    "nomad-server-external": ("nomad-server", (4647,)),
    "vm-service": ("vm-service", (3000,)),
    "output-processor": ("output-processor", (8585,)),
}

# ------------------------------------------------------------------------------------------- charts
_NOT = {"not": {}}


def values_schema_40() -> dict:
    """The 4.0 stand-in's schema: what kots_export writes is required, what it deletes is refused."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "circleci-server 4.0 values (lab stand-in)",
        "type": "object",
        "required": ["global"],
        "properties": {
            "global": {
                "type": "object", "required": ["domainName", "license", "imagePullSecrets"],
                "properties": {
                    "domainName": {"type": "string", "minLength": 1}, "license": {"type": "string", "minLength": 1},
                    "imagePullSecrets": {"type": "array", "minItems": 1},
                    "container": {"type": "object", "properties": {"registry": {"type": "string"}, "org": {"type": "string"}}},
                },
            },
            "domainName": _NOT, "license": _NOT, "published": _NOT, "minio": _NOT,
            "kong": {"type": "object", "properties": {"annotations": _NOT}},
            "postgresql": {"type": "object", "properties": {"postgresqlPassword": _NOT, "postgresqlUsername": _NOT}},
            "mongodb": {"type": "object", "properties": {"auth": {"type": "object", "required": ["password"]}}},
            "telegraf": {"type": "object"},
        },
    }


def kots_chart_files(version: str) -> dict[str, str]:
    """Relative path -> text of the stand-in chart of ``version`` (3.x or 4.0.x)."""
    major = int(str(version).split(".", 1)[0])
    chart = {"apiVersion": "v2", "name": CHART_NAME, "type": "application", "version": version, "appVersion": version,
             "description": "CircleCI Server %s (lab stand-in chart of the KOTS-era scenarios)" % version}
    defaults = {"global": {"container": {"registry": "cciserver.azurecr.io", "org": ""}, "imagePullSecrets": []}}
    files = {
        "Chart.yaml": yaml_c.safe_dump(chart, sort_keys=False),
        "values.yaml": yaml_c.safe_dump(defaults, sort_keys=False),
        ".helmignore": "*.tgz\n",
    }
    if major >= 4:
        files["values.schema.json"] = json.dumps(values_schema_40(), indent=2, sort_keys=True) + "\n"
    templates = os.path.join(KOTS_SRC, "templates")
    for name in sorted(os.listdir(templates)):
        with open(os.path.join(templates, name), encoding="utf-8") as handle:
            text = handle.read()
        target = name if name.startswith("_") else name[:-len(".tpl")] + ".yaml"
        files["templates/" + target] = text
    return files


def kots_chart_path(version: str) -> str:
    """The directory of the built 3.x/4.0 stand-in chart of ``version`` (built now unless up to date)."""
    return build_chart(kots_chart_files(version), "kots-" + version)


def kots_chart_archive(version: str) -> str:
    """The chart of ``version`` packaged as ``circleci-server-<version>.tgz``."""
    return package_chart(kots_chart_path(version), version)


# ------------------------------------------------------------------------------------------ seeding
def bring_up_kots(lab, scenario) -> None:
    """Seed ``scenario`` (kind kots-3.x) into ``lab``; called by ``seed.bring_up``."""
    # seed imports this module lazily too, hence the late import.
    from . import seed  # pylint: disable=import-outside-toplevel

    with seed._phase("kube"):  # pylint: disable=protected-access
        seed._start_kube(lab, scenario)  # pylint: disable=protected-access
    if scenario.get("aws"):
        with seed._phase("aws"):  # pylint: disable=protected-access
            _start_aws(lab, scenario["aws"])
        if scenario["aws"].get("nomad_clients"):
            with seed._phase("nomad"):  # pylint: disable=protected-access
                _seed_nomad_clients(lab, scenario)
                seed._start_nomad(lab, scenario)  # pylint: disable=protected-access
    namespace = scenario["kubernetes"]["namespace"]
    kots = scenario.get("kots") or {}
    slug = kots.get("app_slug", "circleci-server")
    with seed._phase("kotsadm"):  # pylint: disable=protected-access
        lab.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for obj in kotsadm_objects(namespace):
            lab.kube.create(obj)
    with seed._phase("release"):  # pylint: disable=protected-access
        release = scenario["helm"]["release"]
        seed_values = os.path.join(lab.state_dir, "seed-values.yaml")
        for step in release_steps(scenario):
            write_values_file(scenario, seed_values, extra_overrides=step["extra_overrides"])
            verb = "install" if step["revision"] == 1 else "upgrade"
            seed._helm(lab, verb, release, kots_chart_path(step["version"]),  # pylint: disable=protected-access
                       "--namespace", namespace, "--values", seed_values)
        os.remove(seed_values)
        for name, (app, ports) in KOTS_LOAD_BALANCERS.items():
            lab.kube.create(_load_balancer(namespace, name, app, ports))
        _as_kots_left_it(lab, namespace, slug)
        lab.kube.create(_inject_bottoken_job(namespace, slug))
        lab.files["values"] = write_values_file(scenario, os.path.join(lab.state_dir, "values-3.x.yaml"))
        seed._seed_velero(lab, scenario)  # pylint: disable=protected-access
        _script_migrator(lab, namespace, kots)
    _write_inventory(lab, scenario)
    lab.request_log.clear()


def _start_aws(lab, spec) -> None:
    """moto, with the public hosted zone the migration's DNS step points at the 4.0 load balancer."""
    from .aws import AwsLab  # pylint: disable=import-outside-toplevel
    lab.aws = AwsLab(lab.clock, lab.request_log, lab.faults, region=spec["region"])
    lab.endpoints["aws"] = lab.aws.start()
    lab.register_stopper(lab.aws.stop)
    lab.files["aws_env"] = lab.aws.write_env_file(os.path.join(lab.state_dir, "aws.env"))
    zone = spec.get("route53_zone")
    if zone:
        created = lab.aws.client("route53").create_hosted_zone(Name=zone, CallerReference="lab-" + zone)
        lab.ids = dict(getattr(lab, "ids", None) or {}, route53_zone_id=created["HostedZone"]["Id"].split("/")[-1])


def _seed_nomad_clients(lab, scenario) -> None:
    """The 3.x clients' group on launch template version 1, and version 2 (the 4.0 endpoint, a new image)."""
    from . import seed  # pylint: disable=import-outside-toplevel
    spec = scenario["aws"]
    ec2, asg = lab.aws.client("ec2"), lab.aws.client("autoscaling")
    ids = dict(getattr(lab, "ids", None) or {})
    ids[spec["vpc"]["id"]] = ec2.create_vpc(CidrBlock=spec["vpc"]["cidr"])["Vpc"]["VpcId"]
    for subnet in spec["vpc"]["subnets"]:
        ids[subnet["id"]] = ec2.create_subnet(VpcId=ids[spec["vpc"]["id"]], CidrBlock=subnet["cidr"],
                                              AvailabilityZone=subnet["az"])["Subnet"]["SubnetId"]
    seed._seed_aws_nomad_clients(ec2, asg, spec, ids)  # pylint: disable=protected-access
    clients = spec["nomad_clients"]
    following = clients.get("next_version")
    if following:
        image = following["image"]
        ids[image["id"]] = ec2.register_image(Name=image["name"], RootDeviceName="/dev/sda1", Architecture="x86_64",
                                              VirtualizationType="hvm")["ImageId"]
        ec2.create_launch_template_version(
            LaunchTemplateName=clients["launch_template"]["name"], SourceVersion="1",
            LaunchTemplateData={"ImageId": ids[image["id"]],
                                "UserData": base64.b64encode(following["user_data"].encode()).decode()})
    lab.ids = ids


def _script_migrator(lab, namespace, kots) -> None:
    """The circle-migrator Job's Pods: Succeeded with ``migrator_log``, or ``migrator_state`` (Failed) with
    ``migrator_failed_log`` for the Pods of ``migrator_failing_image`` (every image when it is not set)."""
    state = kots.get("migrator_state", "Succeeded")
    failing_image = kots.get("migrator_failing_image")
    if state != "Succeeded":
        lab.kube.set_pod_state(namespace, "circle-migrator", state, image=failing_image)
    good = [str(line) for line in kots.get("migrator_log") or []]
    bad = [str(line) for line in kots.get("migrator_failed_log") or []]

    def lines(pod):
        images = [c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []]
        failing = state != "Succeeded" and (not failing_image or any(i.startswith(failing_image) for i in images))
        return bad if failing else good
    lab.kube.set_logs(namespace, "circle-migrator", lines)


def _meta(name, namespace, labels=None, annotations=None):
    meta = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def kotsadm_objects(namespace) -> list:
    """The KOTS admin console objects, as kotsadm installs them."""
    labels = {"kots.io/kotsadm": "true", "kots.io/backup": "velero"}

    def workload(kind, name, claim=None):
        pod_labels = dict(labels, app=name)
        spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": pod_labels},
                             "spec": {"containers": [{"name": name, "image": "kotsadm/%s:v1.94.0" % name}]}}}
        if claim:
            spec["serviceName"] = name
            spec["volumeClaimTemplates"] = [{"metadata": {"name": claim, "labels": labels}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "4Gi"}}}}]
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": _meta(name, namespace, dict(labels, app=name)), "spec": spec}

    def secret(name, data, with_labels=True):
        encoded = {key: _b64(value) for key, value in data.items()}
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": _meta(name, namespace, labels if with_labels else {}), "data": encoded}

    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("kotsadm", namespace, labels)},
        {"apiVersion": rbac, "kind": "Role", "metadata": _meta("kotsadm-role", namespace, labels),
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": rbac, "kind": "RoleBinding", "metadata": _meta("kotsadm-rolebinding", namespace, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kotsadm-role"},
         "subjects": [{"kind": "ServiceAccount", "name": "kotsadm", "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("kotsadm-confg", namespace, labels),
         "data": {"initial-app-images-pushed": "false", "skip-preflights": "false"}},
        workload("Deployment", "kotsadm"),
        workload("StatefulSet", "kotsadm-minio", claim="kotsadm-minio"),
        workload("StatefulSet", "kotsadm-postgres", claim="kotsadm-postgres"),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("kotsadm", namespace, labels),
         "spec": {"type": "ClusterIP", "selector": {"app": "kotsadm"}, "ports": [{"name": "http", "port": 3000}]}},
        secret("kotsadm-password", {"passwordBcrypt": "$2a$10$lab.fake.bcrypt.hash.of.the.admin.console.pw"}),
        secret("kotsadm-sessions", {"lab-fake-session": "lab-fake-session-token"}, with_labels=False),
        secret("kotsadm-replicated-registry", {".dockerconfigjson": json.dumps({"auths": {"registry.replicated.com": {
            "auth": _b64("lab-fake-license-id:lab-fake-license-id")}}})}, with_labels=False),
    ]


def _b64(text) -> str:
    import base64  # pylint: disable=import-outside-toplevel
    return base64.b64encode(str(text).encode()).decode()


def _load_balancer(namespace, name, app, ports) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(name, namespace, {"app": app, "app.kubernetes.io/instance": "circleci-server"}),
            "spec": {"type": "LoadBalancer", "selector": {"app": app, "app.kubernetes.io/instance": "circleci-server"},
                     "ports": [{"name": "tcp-%d" % port, "port": port, "targetPort": port} for port in ports]}}


def _inject_bottoken_job(namespace, slug) -> dict:
    labels = {"kots.io/app-slug": slug, "kots.io/backup": "velero"}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": _meta("inject-bottoken-7f3kq", namespace, labels, {"kots.io/app-slug": slug}),
            "spec": {"backoffLimit": 1, "template": {"metadata": {"labels": {"app": "inject-bottoken"}}, "spec": {
                "restartPolicy": "Never", "containers": [{"name": "inject-bottoken", "image": "circleci/inject-bottoken:3.4.8"}]}}}}


def _as_kots_left_it(lab, namespace, slug) -> None:
    """KOTS's labels and annotations on the application's objects, and no Helm ownership metadata."""
    for api_version, kind in KINDS:
        for obj in lab.kube.list(api_version, kind, namespace):
            meta = obj["metadata"]
            labels = meta.get("labels") or {}
            name = meta["name"]
            if labels.get("kots.io/kotsadm") == "true" or labels.get("owner") == "helm" or name.startswith("kotsadm-"):
                continue
            if kind in ("ServiceAccount", "ConfigMap") and name in ("default", "kube-root-ca.crt"):
                continue
            new = copy.deepcopy(obj)
            new_meta = new["metadata"]
            new_meta["labels"] = dict(labels, **{"kots.io/app-slug": slug, "kots.io/backup": "velero"})
            if new_meta["labels"].get("app.kubernetes.io/managed-by") == "Helm":
                del new_meta["labels"]["app.kubernetes.io/managed-by"]
            annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in HELM_OWNERSHIP}
            annotations["kots.io/app-slug"] = slug
            new_meta["annotations"] = annotations
            new.pop("status", None)
            lab.kube.replace(new)


def _write_inventory(lab, scenario) -> None:
    """The inventory and vars file the migration playbook runs with against this lab (no secret in them)."""
    directory = os.path.join(lab.state_dir, "charts")
    os.makedirs(directory, exist_ok=True)
    target = str(scenario["target_version"])
    link = os.path.join(directory, "%s-%s.tgz" % (CHART_NAME, target))
    if not os.path.exists(link):
        os.symlink(kots_chart_archive(target), link)
    variables = {
        "ansible_connection": "local",
        "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
        "circleci_lab": True,
        "circleci_cloud": scenario["cloud"],
        "circleci_namespace": scenario["kubernetes"]["namespace"],
        "circleci_release_name": scenario["helm"]["release"],
        "circleci_kubeconfig": lab.files["kubeconfig"],
        "circleci_chart_repository": directory,
        "circleci_target_version": target,
        "circleci_lab_admin_url": lab.endpoints["admin"],
        "helm_upgrade_ready_delay": 1,
    }
    if scenario.get("aws"):
        variables.update(circleci_aws_region=scenario["aws"]["region"], circleci_aws_endpoint_url=lab.endpoints["aws"])
        if (getattr(lab, "ids", None) or {}).get("route53_zone_id"):
            variables["circleci_route53_zone_id"] = lab.ids["route53_zone_id"]
        if getattr(lab, "nomad", None) is not None:
            # The Nomad API; the clients' group under a lab name (an operator gives it as
            # circleci_migrate_nomad_client_group to have the migration roll them); lab time runs fast.
            variables.update(circleci_nomad_address=lab.endpoints["nomad"],
                             circleci_lab_nomad_client_group=scenario["aws"]["nomad_clients"]["asg"]["name"],
                             circleci_poll_delay=1, circleci_clock_factor=lab.clock.factor)
    vars_path = os.path.join(lab.state_dir, "vars.yml")
    with open(vars_path, "w", encoding="utf-8") as handle:
        yaml_c.safe_dump({k: v for k, v in variables.items() if not k.startswith("ansible_")}, handle, sort_keys=True)
    lab.files["vars"] = vars_path
    path = os.path.join(lab.state_dir, "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Written by `python -m tests.lab up %s`: the lab's endpoints for the collection's playbooks.\n"
                     % lab.scenario_name)
        yaml_c.safe_dump({"all": {"hosts": {"localhost": variables}}}, handle, default_flow_style=False, sort_keys=True)
    lab.files["inventory"] = path
