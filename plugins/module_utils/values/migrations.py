# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migrations of a CircleCI Server values tree from one 4.x minor to the next, 4.0 -> 4.10.

One pure function per hop (``HOPS``): it takes a values tree, does not modify it (unless called with
``in_place=True``, which ``migrate`` does on its own copy), and returns a
``HopResult``: the new tree, the changes made or reported (``Change``: path, action, before,
after, reason), and the manual actions that values alone cannot do (``ManualAction``: IAM and
trust policies, security groups, Terraform modules, settings...). A hop whose release changes no
value key is an explicit no-op hop, so a chain always exists. ``migrate`` validates the versions
against the release catalog and applies the hops in order.

Facts: ``server-4x-docs.md`` sections 1.2-1.9 (CircleCI server-admin docs: upgrade guides UPG-4.X,
release notes RN-4.X, values tables REF/VAL-4.X, server-terraform tags). Plain Python with no Ansible
import; the tree is a ruamel round-trip mapping (positions and comments kept) or a plain dict.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ansible_collections.circleci.server.plugins.module_utils.values import tree as T
from ansible_collections.circleci.server.plugins.module_utils.values.masking import mask_value
from ansible_collections.circleci.server.plugins.module_utils.values.yamlfile import (
    CommentedMap,
    CommentedSeq,
    from_plain,
    to_plain,
)
from ansible_collections.circleci.server.plugins.module_utils.versions import PATCH, SERVER, Catalog, Version, parse_version

ACTIONS = ("renamed", "converted", "removed", "added", "warning")


class MigrationError(ValueError):
    """A values tree that cannot be migrated as it is; the message says what, where, and what to do."""


@dataclass
class Change:
    hop: str
    path: tuple
    action: str
    before: object = None
    after: object = None
    reason: str = ""

    def as_dict(self, masked: bool = True) -> dict:
        before, after = to_plain(self.before), to_plain(self.after)
        if masked and self.action != "renamed":
            before, after = mask_value(self.path, before), mask_value(self.path, after)
        return {"hop": self.hop, "path": T.dotted(self.path), "action": self.action,
                "before": before, "after": after, "reason": self.reason}


@dataclass
class ManualAction:
    id: str
    hop: str
    title: str
    detail: str
    content: object = None
    applies_to: str = "all"
    source: str = ""

    def as_dict(self) -> dict:
        return {"id": self.id, "hop": self.hop, "title": self.title, "detail": self.detail,
                "content": self.content, "applies_to": self.applies_to, "source": self.source}


@dataclass
class HopResult:
    tree: object
    changes: list = field(default_factory=list)
    manual_actions: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


@dataclass
class MigrationResult:
    tree: object
    hops: list
    changes: list
    manual_actions: list
    warnings: list

    @property
    def changed(self) -> bool:
        return any(change.action != "warning" for change in self.changes)


class _Hop:
    """Collects what one hop does, while it edits its own copy of the tree."""

    def __init__(self, name, tree, in_place=False):
        self.name = name
        self.tree = tree if in_place else copy.deepcopy(tree)
        self.result = HopResult(self.tree)

    def change(self, path, action, before=None, after=None, reason=""):
        self.result.changes.append(Change(self.name, tuple(path), action, copy.deepcopy(before),
                                          copy.deepcopy(after), reason))

    def warn(self, path, value, reason):
        self.change(path, "warning", before=value, reason=reason)
        self.result.warnings.append("%s: %s" % (T.dotted(path), reason))

    def manual(self, ident, title, detail, content=None, applies_to="all", source=""):
        self.result.manual_actions.append(ManualAction("%s-%s" % (self.name.split("->")[1], ident), self.name,
                                                       title, detail, content, applies_to, source))

    def rename(self, old_path, new_key, reason):
        """Rename the last key of ``old_path`` to ``new_key`` (same mapping). Fails when both exist and differ."""
        holder = T.parent(self.tree, old_path)
        old_key = old_path[-1]
        if holder is None or old_key not in holder:
            return False
        new_path = tuple(old_path[:-1]) + (new_key,)
        if new_key in holder:
            if to_plain(holder[old_key]) == to_plain(holder[new_key]) or holder[old_key] in (None, {}):
                before = holder[old_key]
                T.delete(holder, old_key)
                self.change(old_path, "removed", before=before,
                            reason="%s; the old key is empty or %s already holds the same value, so the old key "
                                   "is dropped." % (reason, T.dotted(new_path)))
                return False
            raise MigrationError(
                "%s and %s are both set, with different content: the values file holds the old and the new "
                "name of the same setting. Keep one of them (the content you want under %s), delete the other, "
                "and run again." % (T.dotted(old_path), T.dotted(new_path), T.dotted(new_path)))
        T.rename(holder, old_key, new_key)
        self.change(old_path, "renamed", before=T.dotted(old_path), after=T.dotted(new_path), reason=reason)
        return True

    def report_removed_keys(self, paths, reason_fmt):
        for path in paths:
            if T.has(self.tree, path):
                self.warn(path, T.get(self.tree, path), reason_fmt % T.dotted(path))


def _providers(tree, block="machine_provisioner"):
    """Which clouds a values tree uses: {'aws': bool, 'gcp': bool}; both True when it does not say."""
    providers = T.get(tree, (block, "providers"), {}) or {}
    aws = bool(T.get(providers, ("ec2", "enabled"))) or bool(T.get(tree, ("object_storage", "s3", "enabled")))
    gcp = bool(T.get(providers, ("gcp", "enabled"))) or bool(T.get(tree, ("object_storage", "gcs", "enabled")))
    if not aws and not gcp:
        return {"aws": True, "gcp": True}
    return {"aws": aws, "gcp": gcp}


def _placeholder(value, name):
    return str(value) if value not in (None, "") else "<%s>" % name


def _terraform_action(hop, tag, extra=""):
    hop.manual(
        "terraform-modules",
        "Upgrade the Nomad Terraform modules to the %s release before helm upgrade" % tag,
        "Pin the server-terraform nomad-aws / nomad-gcp module source to the %s release, run terraform plan "
        "and apply before the helm upgrade.%s" % (tag, extra),
        content="source = \"git::https://github.com/CircleCI-Public/server-terraform.git//nomad-aws?ref=%s\"" % tag,
        source="UPG-%s; server-terraform tags" % hop.name.split("->")[1])


# --------------------------------------------------------------------------------------------
# 4.0 -> 4.1
# --------------------------------------------------------------------------------------------

def hop_4_0_to_4_1(tree, in_place=False) -> HopResult:
    """No value key changes. The Nomad Terraform module input changed (manual)."""
    hop = _Hop("4.0->4.1", tree, in_place)
    hop.manual(
        "terraform-server-endpoint",
        "Replace the Nomad Terraform input server_endpoint with nomad_server_hostname and nomad_server_port",
        "From server-terraform 4.1.0 the nomad-aws/nomad-gcp modules take the hostname alone "
        "(no ':port', validated) and the port separately (default 4647).",
        content="nomad_server_hostname = \"<domain>\"   # was server_endpoint = \"<domain>:4647\"\n"
                "nomad_server_port     = 4647",
        source="server-terraform commit 556fb84 (tag 4.1.0); server-4x-docs.md 1.2")
    return hop.result


# --------------------------------------------------------------------------------------------
# 4.1 -> 4.2
# --------------------------------------------------------------------------------------------

_ANNOTATE_SECRET = """for secret in api-token session-cookie pusher nomad-gossip-encryption-key; do
  kubectl -n <namespace> get secret "$secret" >/dev/null 2>&1 || continue
  kubectl -n <namespace> annotate secret/"$secret" \\
    meta.helm.sh/release-name=<helm-release-name> \\
    meta.helm.sh/release-namespace=<namespace> \\
    helm.sh/resource-policy=keep --overwrite
  kubectl -n <namespace> label secret/"$secret" app.kubernetes.io/managed-by=Helm --overwrite
done"""


def hop_4_1_to_4_2(tree, in_place=False) -> HopResult:
    """No value key renames. User-managed secrets must be adopted by Helm (manual)."""
    hop = _Hop("4.1->4.2", tree, in_place)
    hop.manual(
        "user-managed-secrets",
        "Adopt user-created secrets into the Helm release before upgrading",
        "From 4.2 the chart generates api-token, session-cookie, pusher and nomad-gossip-encryption-key when "
        "absent. Any of these that you created yourself must carry the Helm annotations and label first, "
        "or Helm fails on ownership or regenerates them.",
        content=_ANNOTATE_SECRET, source="UPG-4.2; user-managed-secrets-migration (4.2)")
    hop.manual(
        "rabbitmq-password",
        "Keep the RabbitMQ password across the RabbitMQ chart upgrade",
        "The RabbitMQ chart is upgraded with 4.2: make sure the current password is known and kept in the "
        "values or the rabbitmq-key secret.",
        content="kubectl get secret --namespace <namespace> rabbitmq-key -o jsonpath=\"{.data.rabbitmq-password}\" | base64 -d",
        source="UPG-4.2")
    hop.manual(
        "vault-to-tink",
        "Migrate from Vault to Tink on 4.2 after upgrading",
        "Complete the Vault to Tink migration on the 4.2.x installation (CircleCI-Public/server-scripts "
        "vault-to-tink), before taking the backup that precedes the 4.3 upgrade.",
        source="UPG-4.2 (Vault); UPG-4.3 prerequisites")
    if T.has(hop.tree, ("postgresql", "persistence")):
        hop.warn(("postgresql", "persistence"), T.get(hop.tree, ("postgresql", "persistence")),
                 "the chart reads postgresql.primary.persistence (the 4.x docs' own volume page uses it); this key "
                 "is left in place: move its settings under postgresql.primary.persistence if they matter.")
    return hop.result


# --------------------------------------------------------------------------------------------
# 4.2 -> 4.3
# --------------------------------------------------------------------------------------------

MACHINE_PROVISIONER_POLICY_4_3 = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Action": "ec2:RunInstances",
      "Effect": "Allow",
      "Resource": [
        "arn:aws:ec2:*::image/*",
        "arn:aws:ec2:*::snapshot/*",
        "arn:aws:ec2:*:*:key-pair/*",
        "arn:aws:ec2:*:*:launch-template/*",
        "arn:aws:ec2:*:*:network-interface/*",
        "arn:aws:ec2:*:*:placement-group/*",
        "arn:aws:ec2:*:*:subnet/*",
        "arn:aws:ec2:*:*:security-group/<SECURITY_GROUP_ID>",
        "arn:aws:ec2:*:*:volume/*"
      ]
    },
    {
      "Action": "ec2:RunInstances",
      "Effect": "Allow",
      "Resource": "arn:aws:ec2:*:*:instance/*",
      "Condition": {
        "StringEquals": {
          "aws:RequestTag/ManagedBy": "circleci-machine-provisioner"
        }
      }
    },
    {
      "Action": [
        "ec2:Describe*"
      ],
      "Effect": "Allow",
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "ec2:CreateTags"
      ],
      "Resource": "arn:aws:ec2:*:*:*/*",
      "Condition": {
        "StringEquals": {
          "ec2:CreateAction" : "RunInstances"
        }
      }
    },
    {
      "Action": [
        "ec2:CreateTags",
        "ec2:StartInstances",
        "ec2:StopInstances",
        "ec2:TerminateInstances"
      ],
      "Effect": "Allow",
      "Resource": "arn:aws:ec2:*:*:*/*",
      "Condition": {
        "StringEquals": {
          "ec2:ResourceTag/ManagedBy": "circleci-machine-provisioner"
        }
      }
    },
    {
      "Action": [
        "ec2:RunInstances",
        "ec2:StartInstances",
        "ec2:StopInstances",
        "ec2:TerminateInstances"
      ],
      "Effect": "Allow",
      "Resource": "arn:aws:ec2:*:*:subnet/*",
      "Condition": {
        "StringEquals": {
          "ec2:Vpc": "<VPC_ID>"
        }
      }
    }
  ]
}
"""

MACHINE_PROVISIONER_TRUST_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "Federated": "<OIDC_PROVIDER_ARN>"
      },
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {
          "<OIDC_PROVIDER_URL>:sub": "system:serviceaccount:<K8S_NAMESPACE>:machine-provisioner"
        }
      }
    }

  ]
}
"""

_R43 = "Server 4.3 upgrade guide, step 3"
_IAM_POLICY_SOURCE = ("UPG-4.3 step 4; P3-4.3 Set up authentication (circleci/circleci-docs "
                      "jekyll/_cci2/server/v4.3/installation/phase-3-execution-environments.adoc @ fdd992e)")


def _scalar_item(item):
    return not isinstance(item, (dict, list))


def _carry_item_comments(mapping, key, key_comment, value_comment):
    """The comments written after a tags list's key item and value item end up after the mapping entry."""
    tokens = [c[0] for c in (key_comment, value_comment) if c and c[0] is not None]
    if not tokens:
        return
    token = tokens[-1]
    if len(tokens) == 2:
        token.value = tokens[0].value.split("\n", 1)[0].rstrip() + " " + token.value.lstrip()
    mapping.ca.items[key] = [None, None, token, None]


def _tags_to_map(hop, ec2, path):
    tags = ec2.get("tags")
    if tags is None or isinstance(tags, dict):
        return
    if not isinstance(tags, list):
        raise MigrationError(
            "%s is a %s: 4.2 takes a list of alternating keys and values (['k1', 'v1']) and 4.3 a mapping "
            "({k1: v1}). Write it as either and run again." % (T.dotted(path), type(tags).__name__))
    if len(tags) % 2:
        raise MigrationError(
            "%s has %d items, an odd number: it must alternate keys and values (['k1', 'v1', 'k2', 'v2']), "
            "so the last key %r has no value. Add the missing value (or remove the key) and run again." % (
                T.dotted(path), len(tags), to_plain(tags[-1])))
    for index, item in enumerate(tags):
        if not _scalar_item(item):
            raise MigrationError(
                "%s[%d] is a %s: every item of the 4.2 tags list must be a plain key or value "
                "(['k1', 'v1']). Fix that item and run again." % (
                    T.dotted(path), index, "mapping" if isinstance(item, dict) else "list"))
        if index % 2 == 0 and item in (None, ""):
            raise MigrationError("%s[%d] is an empty tag key. Give it a name (or remove it and its value) and run again." % (
                T.dotted(path), index))
    mapping = CommentedMap()
    comments = getattr(getattr(tags, "ca", None), "items", {})
    for index in range(0, len(tags), 2):
        key = tags[index] if isinstance(tags[index], str) else str(tags[index])
        if key in mapping:
            raise MigrationError(
                "%s sets tag %r twice (items %d and %d): a mapping holds each key once. Keep one and run again." % (
                    T.dotted(path), str(key), list(mapping.keys()).index(key) * 2, index))
        mapping[key] = tags[index + 1]
        _carry_item_comments(mapping, key, comments.get(index), comments.get(index + 1))
    fa = getattr(tags, "fa", None)
    if fa is not None and fa.flow_style():
        mapping.fa.set_flow_style()
    T.replace(ec2, "tags", mapping)
    hop.change(path, "converted", before=tags, after=mapping,
               reason="%s: on AWS, tags are a dictionary instead of a list of alternating keys and values." % _R43)


def _zone_to_zones(hop, gcp, gcp_path):
    if "zone" not in gcp:
        return
    zone = gcp["zone"]
    zone_path, zones_path = gcp_path + ("zone",), gcp_path + ("zones",)
    wanted = list(zone) if isinstance(zone, list) else ([] if zone in (None, "") else [zone])
    if isinstance(zone, dict) or any(not _scalar_item(z) for z in wanted):
        raise MigrationError("%s must be a zone name (a string), not %s. Fix it and run again." % (
            T.dotted(zone_path), type(zone).__name__))
    if "zones" in gcp:
        zones = gcp["zones"]
        if to_plain(zones) == to_plain(wanted) or not wanted:
            T.delete(gcp, "zone")
            hop.change(zone_path, "removed", before=zone,
                       reason="%s: GCP zones are a list in 4.3; %s already lists the same zones." % (
                           _R43, T.dotted(zones_path)))
            return
        raise MigrationError(
            "%s (%r) and %s (%r) are both set and disagree. 4.3 reads only zones: put the zones you want in "
            "%s, delete %s, and run again." % (
                T.dotted(zone_path), to_plain(zone), T.dotted(zones_path), to_plain(zones), T.dotted(zones_path),
                T.dotted(zone_path)))
    if not wanted:
        T.delete(gcp, "zone")
        hop.change(zone_path, "removed", before=zone,
                   reason="%s: the zone was empty; 4.3 takes a zones list and defaults it to the us-central1 zones "
                          "(set zones and region explicitly if that is not your region)." % _R43)
        return
    seq = CommentedSeq(wanted)
    T.rename(gcp, "zone", "zones")
    T.replace(gcp, "zones", seq)
    hop.change(zones_path, "converted", before=zone, after=seq,
               reason="%s: on GCP, zones are a list instead of the zone string (was %s)." % (_R43, T.dotted(zone_path)))


def _convert_provider_shapes(hop, block):
    providers = T.get(hop.tree, (block, "providers"))
    if not isinstance(providers, dict):
        return
    ec2 = providers.get("ec2")
    if isinstance(ec2, dict):
        _tags_to_map(hop, ec2, (block, "providers", "ec2", "tags"))
    gcp = providers.get("gcp")
    if isinstance(gcp, dict):
        _zone_to_zones(hop, gcp, (block, "providers", "gcp"))


def _same_after_conversion(old, new) -> bool:
    """Whether vm_service and machine_provisioner hold the same settings once both are in the 4.3 shape."""
    scratch_old = _Hop("4.2->4.3", {"b": old})
    scratch_new = _Hop("4.2->4.3", {"b": new})
    try:
        for scratch in (scratch_old, scratch_new):
            _convert_provider_shapes(scratch, "b")
            block = scratch.tree["b"]
            if isinstance(block, dict) and "dlc_lifespan_days" in block and "dlcUnusedLifespanDays" not in block:
                T.rename(block, "dlc_lifespan_days", "dlcUnusedLifespanDays")
    except MigrationError:
        return False
    return to_plain(scratch_old.tree) == to_plain(scratch_new.tree)


def _prescaled_config(prescaled):
    lines = ["scheduled:"]
    for entry in prescaled:
        if not isinstance(entry, dict) or not entry.get("count"):
            continue
        kind = str(entry.get("type", ""))
        lines.extend([
            "  - executor: %s" % ("windows" if "windows" in kind else "linux"),
            "    class: %s" % (kind.split(".", 1)[1] if "." in kind else kind or "medium"),
            "    image: %s" % entry.get("image", "default"),
            "    cron: \"%s\"" % entry.get("cron", ""),
            "    count: %s" % entry.get("count"),
        ])
    return "\n".join(lines) + "\n" if len(lines) > 1 else None


def hop_4_2_to_4_3(tree, in_place=False) -> HopResult:
    """vm_service becomes machine_provisioner; EC2 tags a map; GCP zone a zones list; IAM, SG and DLC changes."""
    hop = _Hop("4.2->4.3", tree, in_place)
    root = hop.tree
    if "vm_service" in root and "machine_provisioner" in root:
        old, new = root["vm_service"], root["machine_provisioner"]
        if old in (None, {}) or _same_after_conversion(old, new):
            T.delete(root, "vm_service")
            hop.change(("vm_service",), "removed", before=old,
                       reason="%s: vm_service is renamed machine_provisioner, which already holds the same "
                              "settings, so the old block is dropped." % _R43)
        else:
            raise MigrationError(
                "vm_service and machine_provisioner are both set, with different content. 4.3 reads only "
                "machine_provisioner (the renamed vm_service block). Merge the settings you want into "
                "machine_provisioner, delete vm_service, and run again.")
    elif "vm_service" in root:
        hop.rename(("vm_service",), "machine_provisioner",
                   "%s: rename the vm_service block to machine_provisioner (all its settings kept)." % _R43)
    _convert_provider_shapes(hop, "machine_provisioner")

    block = T.get(root, ("machine_provisioner",))
    if isinstance(block, dict) and "dlc_lifespan_days" in block:
        if "dlcUnusedLifespanDays" in block:
            hop.warn(("machine_provisioner", "dlc_lifespan_days"), block["dlc_lifespan_days"],
                     "4.3 no longer reads dlc_lifespan_days (DLC moved to object storage); "
                     "machine_provisioner.dlcUnusedLifespanDays is already set. Delete the old key.")
        else:
            hop.rename(("machine_provisioner", "dlc_lifespan_days"), "dlcUnusedLifespanDays",
                       "REF-4.2 -> REF-4.3: dlc_lifespan_days (days to keep DLC volumes) is gone; "
                       "dlcUnusedLifespanDays (default 3) is the 4.3 setting for how long unused DLC is kept "
                       "[inference from the values tables].")

    prescaled = T.get(root, ("vm_scaler", "prescaled"))
    if T.has(root, ("vm_scaler", "prescaled")):
        hop.warn(("vm_scaler", "prescaled"), prescaled,
                 "4.3 no longer reads vm_scaler.prescaled: preallocated VMs are the 'scheduled' list of the "
                 "machine-provisioner config file (machine_provisioner.config_path). Left in place; see the "
                 "manual action.")
        config = _prescaled_config(prescaled if isinstance(prescaled, list) else [])
        if config:
            hop.manual("prescaled-instances", "Carry the prescaled VMs into the machine-provisioner config file",
                       "Write this (suggested from vm_scaler.prescaled; check classes and images against MP-4.3 "
                       "'Instance preallocation') into the machine-provisioner config file.",
                       content=config, source="MP-4.3 Instance preallocation")
    hop.report_removed_keys(
        [("vm_scaler", "replicas"), ("internal_zone",), ("prometheus",), ("distributor", "launch_agent_base_url")],
        "%s is not in the 4.3 values table; the chart ignores it (launch_agent_base_url: see "
        "runner_admin.external.launch_agent_base_url). Left in place; delete it once checked.")

    providers = _providers(root)
    gcp = T.get(root, ("machine_provisioner", "providers", "gcp"))
    if isinstance(gcp, dict) and gcp.get("enabled"):
        zones = to_plain(gcp.get("zones") or [])
        if zones and not gcp.get("region") and any(not str(z).startswith("us-central1") for z in zones):
            hop.warn(("machine_provisioner", "providers", "gcp", "region"), None,
                     "the 4.3 default region is us-central1 but the zones are elsewhere: set region.")
        if zones and not gcp.get("subnetwork"):
            hop.warn(("machine_provisioner", "providers", "gcp", "subnetwork"), gcp.get("subnetwork"),
                     "UPG-4.3: if deploying in a specific zone, subnetwork must be set for GCP.")
    ec2 = T.get(root, ("machine_provisioner", "providers", "ec2"), {}) or {}
    sg = _placeholder(T.get(ec2, ("securityGroupId",)), "VM_SECURITY_GROUP_ID")
    bucket = _placeholder(T.get(root, ("object_storage", "bucketName")), "BUCKET_NAME")
    project = _placeholder(T.get(root, ("machine_provisioner", "providers", "gcp", "project_id")), "GCP_PROJECT_ID")
    hop.manual("vm-gc-cleanup", "Let vm-gc clean up vm-service machines (or remove them yourself)",
               "Before vm-service is removed, vm-gc must clean up all machines left running; other vm-service "
               "pods can be removed first. Otherwise the machines stay until removed by hand. On AWS the 4.2 "
               "machines carry the tag ManagedBy=circleci-vm-service. Old DLC volumes are not carried over: wipe "
               "them by hand.",
               content="aws ec2 describe-instances --filters Name=tag:ManagedBy,Values=circleci-vm-service "
                       "Name=instance-state-name,Values=pending,running,stopping,stopped",
               source="UPG-4.3 Notes (Machine jobs, DLC)")
    if providers["aws"]:
        hop.manual("iam-policy", "Replace the vm-service IAM policy with the machine-provisioner policy",
                   "machine-provisioner needs different permissions: the ManagedBy tag value becomes "
                   "circleci-machine-provisioner and the DLC volume actions (Create/Attach/Detach/DeleteVolume) "
                   "are gone. Fill in the security group and VPC IDs. With IAM access keys, the documented user is now circleci-machine-provisioner "
                   "(was circleci-vm-service): put this policy on it and its keys in machine_provisioner.",
                   content=MACHINE_PROVISIONER_POLICY_4_3.replace(
                       "<SECURITY_GROUP_ID>", _placeholder(T.get(ec2, ("securityGroupId",)), "SECURITY_GROUP_ID")),
                   applies_to="aws", source=_IAM_POLICY_SOURCE)
        hop.manual("trust-policy", "Point the IRSA role's trust policy at the machine-provisioner service account",
                   "Change only the subject from system:serviceaccount:<K8S_NAMESPACE>:vm-service to "
                   "...:machine-provisioner (read the current trust policy, edit the subject, write it back).",
                   content=MACHINE_PROVISIONER_TRUST_POLICY, applies_to="aws", source="UPG-4.3 step 5")
        hop.manual("security-group-2376", "Remove port 2376 from the vm-service security group",
                   "Port 2376 (remote Docker to the VMs) is no longer needed. Revoke only that rule; do not "
                   "rewrite the group (other rules would be purged).",
                   content="aws ec2 revoke-security-group-ingress --group-id %s --protocol tcp --port 2376 "
                           "--cidr <SUBNET_CIDR>" % sg, applies_to="aws", source="UPG-4.3 step 9")
        hop.manual("dlc-bucket-versioning", "Enable versioning on the S3 bucket (required for DLC)",
                   "DLC now runs through object storage: with AWS S3, Docker layer caching requires versioning "
                   "on the bucket.",
                   content="aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled" % bucket,
                   applies_to="aws", source="UPG-4.3 Notes (Docker layer caching)")
    if providers["gcp"]:
        hop.manual("workload-identity", "Bind the GCP service account to the machine-provisioner service account",
                   "With Workload Identity, 4.0-4.2 bound [<namespace>/vm-service]; 4.3 needs "
                   "[<namespace>/machine-provisioner] (the docs hard-code the namespace circleci-server: use yours).",
                   content="gcloud iam service-accounts add-iam-policy-binding <YOUR_SERVICE_ACCOUNT_EMAIL> \\\n"
                           "    --role roles/iam.workloadIdentityUser \\\n"
                           "    --member \"serviceAccount:%s.svc.id.goog[<K8S_NAMESPACE>/machine-provisioner]\"" % project,
                   applies_to="gcp", source="P3-4.2 vs P3-4.3 (server-4x-docs.md 1.4) [inference]")
    hop.manual("workflows-conductor-migration", "Leave 4.3 running until the workflows-conductor migration ends",
               "A background job migrates projects in batches of 1000; it is done when the log shows "
               "'starting next-build-seq-migration' with project_count=0.",
               content="kubectl -n <namespace> logs deploy/workflows-conductor-event-consumer | "
                       "grep 'starting next-build-seq-migration'",
               source="UPG-4.3 Notes (Workflows conductor); RN-4.3")
    return hop.result


# --------------------------------------------------------------------------------------------
# 4.3 -> 4.4, 4.4 -> 4.5, 4.5 -> 4.6
# --------------------------------------------------------------------------------------------

def hop_4_3_to_4_4(tree, in_place=False) -> HopResult:
    """REF-4.3 -> REF-4.4: no key changes (explicit no-op hop)."""
    return _Hop("4.3->4.4", tree, in_place).result


def hop_4_4_to_4_5(tree, in_place=False) -> HopResult:
    """REF-4.4 -> REF-4.5 only adds keys. 4.5 must not be installed on GKE (RN-4.5)."""
    hop = _Hop("4.4->4.5", tree, in_place)
    if _providers(hop.tree) == {"aws": False, "gcp": True}:
        hop.result.warnings.append(
            "RN-4.5: do not upgrade an installation on GKE to 4.5; this values file uses GCP. "
            "Go from 4.4 straight to 4.7 (a validated skip) instead.")
    return hop.result


def hop_4_5_to_4_6(tree, in_place=False) -> HopResult:
    """REF-4.5 -> REF-4.6: no key changes (explicit no-op hop)."""
    return _Hop("4.5->4.6", tree, in_place).result


# --------------------------------------------------------------------------------------------
# 4.6 -> 4.7
# --------------------------------------------------------------------------------------------

def _image_pull_secrets(hop):
    path = ("global", "imagePullSecrets")
    secrets = T.get(hop.tree, path)
    if secrets is None:
        return
    if not isinstance(secrets, list):
        raise MigrationError("%s must be a list of secret names; it is a %s. Fix it and run again." % (
            T.dotted(path), type(secrets).__name__))
    before = copy.deepcopy(secrets)
    converted = False
    for index, item in enumerate(secrets):
        if isinstance(item, dict):
            if set(item.keys()) != {"name"}:
                raise MigrationError(
                    "%s[%d] has keys %s: 4.7 takes a list of secret names, so an item can only be {name: ...}. "
                    "Keep the name alone and run again." % (T.dotted(path), index, sorted(str(k) for k in item)))
            T.replace_item(secrets, index, item["name"])
            converted = True
    if converted:
        hop.change(path, "converted", before=before, after=secrets,
                   reason="REF-4.6 -> REF-4.7: imagePullSecrets is a list of names ([\"regcred\"]) instead of "
                          "[{name: regcred}]; check with helm diff.")


def hop_4_6_to_4_7(tree, in_place=False) -> HopResult:
    """machine_agent_base_url becomes agent_base_url; imagePullSecrets a list of names; 4.7.7 is broken."""
    hop = _Hop("4.6->4.7", tree, in_place)
    hop.rename(("machine_provisioner", "machine_agent_base_url"), "agent_base_url",
               "REF-4.6 -> REF-4.7: machine_provisioner.machine_agent_base_url is renamed agent_base_url.")
    _image_pull_secrets(hop)
    hop.manual("never-4.7.7", "Never install or upgrade to Server 4.7.7",
               "Server 4.7.7 is broken (release notes): stop at the last 4.7 patch instead. This module refuses "
               "to_version 4.7.7.", source="RN-4.7")
    _terraform_action(hop, "4.7.0", " 4.7 brings rootless containers.")
    hop.manual("iam-policy", "Update the machine-provisioner IAM policy to the 4.7 version",
               "From 4.7 the documented policy restricts RunInstances to explicit subnet ARNs and conditions "
               "instance actions on the ManagedBy tag (P3-4.7 'Set up authentication').",
               applies_to="aws", source="P3-4.7 (server-4x-docs.md 1.4)")
    return hop.result


# --------------------------------------------------------------------------------------------
# 4.7 -> 4.8
# --------------------------------------------------------------------------------------------

def _telegraf_custom_config(hop):
    old_path, new_path = ("telegraf", "config", "custom_config_file"), ("telegraf", "custom_config")
    config = T.get(hop.tree, ("telegraf", "config"))
    if not isinstance(config, dict) or "custom_config_file" not in config:
        return
    telegraf = hop.tree["telegraf"]
    if "custom_config" in telegraf:
        if to_plain(telegraf["custom_config"]) != to_plain(config["custom_config_file"]):
            raise MigrationError(
                "%s and %s are both set, with different content. 4.8 reads only %s: keep the configuration "
                "you want there, delete %s, and run again." % (
                    T.dotted(old_path), T.dotted(new_path), T.dotted(new_path), T.dotted(old_path)))
        before = config["custom_config_file"]
        T.delete(config, "custom_config_file")
        hop.change(old_path, "removed", before=before, reason="REF-4.8: %s already holds it." % T.dotted(new_path))
    else:
        T.move(config, "custom_config_file", telegraf, "custom_config", after="config")
        hop.change(old_path, "renamed", before=T.dotted(old_path), after=T.dotted(new_path),
                   reason="REF-4.7 -> REF-4.8: telegraf.config.custom_config_file moves to telegraf.custom_config.")
    if not config:
        T.delete(telegraf, "config")
        hop.change(("telegraf", "config"), "removed", before={},
                   reason="left empty by the move; the chart's defaults apply as before.")


def hop_4_7_to_4_8(tree, in_place=False) -> HopResult:
    """config_path becomes custom_config; telegraf custom config moves; removed keys reported."""
    hop = _Hop("4.7->4.8", tree, in_place)
    for block in ("machine_provisioner", "docker_provisioner"):
        hop.rename((block, "config_path"), "custom_config",
                   "REF-4.7 -> REF-4.8: %s.config_path is renamed custom_config." % block)
    _telegraf_custom_config(hop)
    hop.report_removed_keys(
        [("nomad", "clusterDomain"), ("runner_admin", "external", "launch_agent_base_url"),
         ("mongodb", "injectBotToken", "image")],
        "%s is removed in 4.8 (REF-4.8) and is ignored (nomad.clusterDomain: see nomad.server.serverHostname). "
        "Left in place; delete it once checked.")
    _terraform_action(hop, "4.8.0", " Externalised Nomad servers need their module at 4.8 too.")
    hop.manual("machine-runner-3", "Migrate machine runners from the launch agent to machine runner 3.0",
               "After the upgrade, move existing machine runner instances to the machine runner 3.0 agent: "
               "the launch agent is not supported from 4.8.", source="UPG-4.8")
    return hop.result


# --------------------------------------------------------------------------------------------
# 4.8 -> 4.9
# --------------------------------------------------------------------------------------------

_ASG_OLD = re.compile(r"^(?P<base>.+)_circleci_nomad_clients_asg$")
_MIG_OLD = re.compile(r"^(?P<name>.+)-nomad$")


def hop_4_8_to_4_9(tree, in_place=False) -> HopResult:
    """global.tracing becomes global.otel; Terraform 4.9.0 renames the Nomad client ASG/MIG (reported)."""
    hop = _Hop("4.8->4.9", tree, in_place)
    hop.rename(("global", "tracing"), "otel",
               "REF-4.8 -> VAL-4.9: global.tracing is renamed global.otel (enabled, collector_host, sample_rate; "
               "new collector_port).")
    hop.report_removed_keys([("nomad", "server", "scheme")], "%s is removed in 4.9 and is ignored. Left in place.")
    asg_path = ("nomad", "auto_scaler", "aws", "autoScalingGroup")
    asg = T.get(hop.tree, asg_path)
    match = _ASG_OLD.match(str(asg)) if isinstance(asg, str) else None
    if match:
        new = "%s-circleci-nomad-clients-asg" % match.group("base")
        hop.warn(asg_path, asg, "server-terraform 4.9.0 renames the client ASG to %s (the group is replaced): set this "
                                "value to the new name once terraform apply has run." % new)
        hop.manual("autoscaler-asg-name", "Point the Nomad Autoscaler at the renamed ASG",
                   "After applying server-terraform 4.9.0, the ASG is %s." % new,
                   content="nomad:\n  auto_scaler:\n    aws:\n      autoScalingGroup: \"%s\"\n" % new,
                   applies_to="aws", source="server-terraform 4.9.0 (not in the upgrade docs)")
    mig_path = ("nomad", "auto_scaler", "gcp", "mig_name")
    mig = T.get(hop.tree, mig_path)
    match = _MIG_OLD.match(str(mig)) if isinstance(mig, str) else None
    if match:
        new = "%s-nomad-client-group" % match.group("name")
        hop.warn(mig_path, mig, "server-terraform 4.9.0 renames the client MIG to %s (the group is replaced): set this "
                                "value to the new name once terraform apply has run." % new)
        hop.manual("autoscaler-mig-name", "Point the Nomad Autoscaler at the renamed MIG",
                   "After applying server-terraform 4.9.0, the MIG is %s." % new,
                   content="nomad:\n  auto_scaler:\n    gcp:\n      mig_name: \"%s\"\n" % new,
                   applies_to="gcp", source="server-terraform 4.9.0 (not in the upgrade docs)")
    _terraform_action(hop, "4.9.0", " It renames the Nomad client ASG/MIG (the clients are replaced) and removes "
                                    "enable_mtls / unsafe_disable_mtls (mTLS always on).")
    hop.manual("mongodb-4.4", "Upgrade MongoDB to 4.4 or later before upgrading",
               "Internal MongoDB: CircleCI-Public/server-scripts upgrade-mongo-to-4.4 (3.6 -> 4.0 -> 4.2 -> 4.4 with "
               "setFeatureCompatibilityVersion after each step).", source="UPG-4.9")
    return hop.result


# --------------------------------------------------------------------------------------------
# 4.9 -> 4.10
# --------------------------------------------------------------------------------------------

def hop_4_9_to_4_10(tree, in_place=False) -> HopResult:
    """telegraf is removed (reported); the workflow-retention setting must be re-applied by hand."""
    hop = _Hop("4.9->4.10", tree, in_place)
    if "telegraf" in hop.tree:
        custom = T.get(hop.tree, ("telegraf", "custom_config"))
        hop.warn(("telegraf",), hop.tree["telegraf"],
                 "VAL-4.10: telegraf is removed; metrics go through opentelemetry-collector (statsd receiver). "
                 "Left in place and ignored.%s" % (
                     " Your telegraf.custom_config must be rewritten as opentelemetry-collector configuration."
                     if custom else ""))
    hop.report_removed_keys(
        [("global", "otel", "enabled"), ("authentication_service", "auth_api", "rate_limit"),
         ("builds_service", "jvmHeapSize"), ("nomad", "server", "podAnnotations"), ("vault", "resources")],
        "%s is removed in 4.10 (VAL-4.10) and is ignored. Left in place; delete it once checked.")
    hop.manual("workflow-retention", "Re-apply a custom workflow retention period after upgrading",
               "The setting key changed from :wfc-workflow-deletion-retention-period to "
               ":wfc-workflow-expired-delete-after-days and the value is not migrated: left unset, retention reverts "
               "to 660 days. Set it in the frontend REPL (kubectl port-forward <frontend pod> 16000:6005); "
               ":wfc-workflow-deletion-interval must be > 0 for deletion to run.",
               content="(circle.http.api.admin-commands/set-setting :wfc-workflow-expired-delete-after-days <DAYS>)",
               source="UPG-4.10; data-retention (4.10)")
    hop.manual("mongodb-7.0", "Upgrade MongoDB to 7.0 or later before upgrading",
               "Internal MongoDB: CircleCI-Public/server-scripts upgrade-mongo-to-7.0 (4.4 -> 5.0 -> 6.0 -> 7.0).",
               source="UPG-4.10")
    _terraform_action(hop, "<4.10 tag>", " The docs link a 4.10.0 release; check the server-terraform tags for the "
                                         "exact ref (release links and tags have not always matched).")
    if T.get(hop.tree, ("machine_provisioner", "custom_config")):
        hop.manual("preallocation-config", "Check the machine-provisioner preallocation config",
                   "4.10 expects preboot.scheduled[] with image = an offering name (ubuntu-2204, not default / "
                   "docker-default) and a quoted, valid cron (an empty string is invalid): an unknown image stops "
                   "machine provisioner from starting.", source="MP-4.10")
    return hop.result


HOPS = {
    ("4.0", "4.1"): hop_4_0_to_4_1,
    ("4.1", "4.2"): hop_4_1_to_4_2,
    ("4.2", "4.3"): hop_4_2_to_4_3,
    ("4.3", "4.4"): hop_4_3_to_4_4,
    ("4.4", "4.5"): hop_4_4_to_4_5,
    ("4.5", "4.6"): hop_4_5_to_4_6,
    ("4.6", "4.7"): hop_4_6_to_4_7,
    ("4.7", "4.8"): hop_4_7_to_4_8,
    ("4.8", "4.9"): hop_4_8_to_4_9,
    ("4.9", "4.10"): hop_4_9_to_4_10,
}


def plan(from_version, to_version, catalog=None):
    """The hops from one server version to another, as (from_minor, to_minor) pairs, in order.

    Raises ``VersionError``/``UnknownRelease`` (from the catalog) for unknown versions and
    ``MigrationError`` for a downgrade, a known-broken target or a missing hop.
    """
    catalog = catalog or Catalog()
    source = parse_version(from_version, "from_version", SERVER, PATCH)
    target = parse_version(to_version, "to_version", SERVER, PATCH)
    catalog.release(source)
    catalog.release(target)
    if target < source:
        raise MigrationError("to_version %s is older than from_version %s: values migrations only go forward. "
                             "Restore the values file kept for %s (a backup) instead." % (target, source, target))
    if catalog.is_broken(target):
        raise MigrationError("CircleCI Server %s is a known-broken release: never target it. Use %s." % (
            target, catalog.release(target).last_patch))
    minors = [release.minor for release in catalog.minors]
    start, end = minors.index(source.minor_key), minors.index(target.minor_key)
    hops = [(minors[i], minors[i + 1]) for i in range(start, end)]
    for pair in hops:
        if pair not in HOPS:
            raise MigrationError("No values migration is registered for %s -> %s: upgrade the circleci.server "
                                 "collection." % pair)
    return hops


# Blocks the chart (and the hops) read as mappings: a scalar or a list there is a typo the hops must not
# rewrite around (vm_service: "true" would otherwise be renamed as it stands).
_MAPPING_PATHS = tuple(tuple(p.split(".")) for p in (
    "global", "global.tracing", "global.otel",
    "vm_service", "vm_service.providers", "vm_service.providers.ec2", "vm_service.providers.gcp",
    "machine_provisioner", "machine_provisioner.providers", "machine_provisioner.providers.ec2",
    "machine_provisioner.providers.gcp",
    "nomad", "nomad.server", "nomad.auto_scaler", "nomad.auto_scaler.aws", "nomad.auto_scaler.gcp",
    "object_storage", "object_storage.s3", "object_storage.gcs",
    "postgresql", "mongodb", "rabbitmq", "redis", "telegraf", "telegraf.config", "vm_scaler", "vault",
    "keyset", "tls", "authentication_service", "runner_admin", "runner_admin.external", "distributor",
    "builds_service",
))


def check_shapes(tree, name="the values"):
    """Refuse a tree whose known blocks are not mappings (a typo'd ``vm_service: "yes"``), naming the key."""
    if not isinstance(tree, dict):
        raise MigrationError("%s are a %s, not a mapping of keys to values." % (name, type(tree).__name__))
    for path in _MAPPING_PATHS:
        value = T.get(tree, path)
        if value is not None and not isinstance(value, dict):
            kind = "list" if isinstance(value, list) else "boolean" if isinstance(value, bool) else \
                "number" if isinstance(value, (int, float)) else "string"
            raise MigrationError(
                "%s: %s is a %s, but CircleCI Server reads it as a mapping of settings (for example %s:\n  "
                "key: value). Fix it in the values file (or restore the file from its backup); nothing was "
                "changed." % (name, T.dotted(path), kind, path[-1]))


def set_values(result: MigrationResult, values: dict, reason: str = "set_values") -> None:
    """Set dotted keys (``{"postgresql.image.tag": "14.22..."}``) in ``result.tree`` after the hops, creating the
    mappings on the way, each recorded as a change; a key already holding that value is left alone. For what a run
    changed besides the values (a data store it upgraded) and the values must now say."""
    for dotted_key, value in (values or {}).items():
        path = tuple(str(dotted_key).split("."))
        if not all(path):
            raise MigrationError("set_values: %r is not a dotted key such as postgresql.image.tag" % (dotted_key,))
        node = result.tree
        for index, key in enumerate(path[:-1]):
            if key not in node:
                T.insert(node, len(node), key, from_plain({}))
            elif not isinstance(node[key], dict):
                raise MigrationError("set_values: %s is not a mapping in the values (it holds a %s); cannot set %s" % (
                    T.dotted(path[:index + 1]), type(to_plain(node[key])).__name__, dotted_key))
            node = node[key]
        if path[-1] in node and to_plain(node[path[-1]]) == value:
            continue
        before = node.get(path[-1])
        action = "changed" if path[-1] in node else "added"
        if path[-1] in node:
            T.replace(node, path[-1], from_plain(value))
        else:
            T.insert(node, len(node), path[-1], from_plain(value))
        result.changes.append(Change("set", path, action, copy.deepcopy(before), copy.deepcopy(value), reason))


def migrate(tree, from_version, to_version, catalog=None) -> MigrationResult:
    """Apply every hop from ``from_version`` to ``to_version`` to ``tree`` (which is left unchanged)."""
    catalog = catalog or Catalog()
    check_shapes(tree)
    hops = plan(from_version, to_version, catalog)
    source = parse_version(from_version, "from_version", SERVER, PATCH)
    result = MigrationResult(copy.deepcopy(tree), [], [], [], [])
    for index, (low, high) in enumerate(hops):
        last = catalog.release(Version.parse(low)).last_patch
        if index > 0 or source != last:
            result.manual_actions.append(ManualAction(
                "%s-upgrade-path" % high, "%s->%s" % (low, high),
                "Be on %s (the last %s patch) before upgrading to %s" % (last, low, high),
                "The upgrade path must include the last patch of each minor (UPG-4.3 and later; 4.8, 4.9 and "
                "4.10 require it).", content="helm upgrade ... --version %s" % last, source="UPG-%s" % high))
        step = HOPS[(low, high)](result.tree, in_place=True)
        result.tree = step.tree
        result.changes.extend(step.changes)
        result.manual_actions.extend(step.manual_actions)
        result.warnings.extend(step.warnings)
    result.hops = ["%s->%s" % pair for pair in hops]
    return result
