#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kots_export
short_description: Export the values of a CircleCI Server 3.x (KOTS) release as a 4.0 Helm values file
version_added: 0.1.0
description:
  - Reads the values of the Helm release that KOTS created for CircleCI Server 3.x, from the cluster (the
    current deployed revision by default, or O(revision)) or from O(src), a values file saved earlier, and
    writes the CircleCI Server 4.0 values file O(dest) for the in-place migration (C(helm upgrade --force) to
    the 4.0.x chart).
  - The transform is the one CircleCI's C(kots-exporter.sh) applied, as a function over the parsed values
    instead of text edits. The top-level C(domainName) becomes C(global.domainName); C(global.imagePullSecrets),
    C(global.license) and C(global.container) are set; C(kong.annotations) and C(kong.aws_acm.enabled) move to
    C(nginx); a MongoDB password is generated when there is none; the telegraf custom config is base64-decoded;
    the Postgres credentials move under C(postgresql.auth); the blocks of the cloud providers not in use are
    deleted (autoscaler, VM service, object storage); C(published), C(domainName), C(kong.annotations),
    C(postgresql.postgresqlUsername), C(postgresql.postgresqlPassword), C(nomad.server.rpc.advertise),
    C(license) and C(minio) are deleted; null values and empty C(service_account) strings are removed.
    Every other key passes through unchanged.
  - Unlike the script, a missing telegraf config stays missing, the VM provider prune tests and deletes the
    same key, nulls are removed from the parsed tree (never from inside a multi-line string), and a provider
    block is deleted only when the other provider is the enabled one.
  - O(dest) holds every secret of the installation. It is written atomically with mode 0600, an existing
    O(dest) is backed up (mode 0600) before it is replaced, and a generated MongoDB password is taken from the
    O(dest) an earlier run wrote, so a re-run with the same input reports no change.
  - Changes, diffs and results never show a secret value.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.k8s_auth
attributes:
  check_mode:
    support: full
    description: Reads the source and reports what O(dest) would become; writes nothing.
  diff_mode:
    support: full
    description: The diff of O(dest), with every secret masked.
options:
  src:
    description:
      - A values file of the 3.x release saved earlier, for example with
        C(helm get values circleci-server -n circleci-server -o yaml > values-3.x.yaml).
      - When omitted, the values are read from the release's Helm storage Secrets in the cluster (no helm
        binary is needed), with the Kubernetes connection options.
    type: path
  release:
    description:
      - The name of the 3.x Helm release. Used when O(src) is omitted.
    type: str
    default: circleci-server
  namespace:
    description:
      - The namespace of the 3.x release. Used when O(src) is omitted.
    type: str
    default: circleci-server
  revision:
    description:
      - The release revision to read. Defaults to the current deployed revision, which holds the latest
        configuration (the script read revision 1, losing later changes).
      - Cannot be used with O(src).
    type: int
  dest:
    description:
      - The 4.0 values file to write. Its directory must exist.
    type: path
    required: true
  license:
    description:
      - The CircleCI Server 4.x license string that CircleCI sent. Set as C(global.license); the 3.x license
        is not carried over.
    type: str
    required: true
  registry:
    description:
      - The registry of the 4.x images, set as C(global.container.registry).
    type: str
    default: cciserver.azurecr.io
  image_pull_secret:
    description:
      - The name of the docker-registry Secret that holds the registry credentials, added to
        C(global.imagePullSecrets).
    type: str
    default: regcred
  backup:
    description:
      - Copy an existing O(dest) to C(<dest>.<timestamp>~) (mode 0600) before replacing it.
    type: bool
    default: true
notes:
  - C(changes) describes what the transform did to the source values; C(changed) tells whether O(dest) was
    (or would be) rewritten. A re-run from the same source therefore returns the same C(changes) with
    C(changed=false).
  - An O(dest) edited by hand after the export is replaced (and backed up) on the next run.
  - For an internal Postgres, C(postgresql.auth.postgresPassword) must hold the password of the existing
    database before the upgrade. Read from the cluster, the passwords of the internal datastores are taken from
    their 3.x Secrets (C(postgresql), C(mongodb), C(rabbitmq)), which the running databases use; from O(src), a
    warning says so when the source values have none.
  - Refused before anything is written - a release whose chart is not 3.x (a 4.x install), a namespace where
    no Deployment carries KOTS's C(kots.io/app-slug) label, an O(src) holding 4.x values, a C(domainName) that is
    not a DNS name, an O(src) that is not a regular file (a FIFO, a directory) or is larger than 2 MiB or whose
    YAML aliases expand past the limit, an O(dest) that is a directory, a dangling link or in a missing or
    read-only directory.
seealso:
  - name: Migrate from server v3 to v4 (CircleCI documentation)
    description: The manual procedure this module automates the export step of.
    link: https://circleci.com/docs/server/installation/migrate-from-server-3-to-server-4
"""

EXAMPLES = r"""
- name: Export the current 3.x release as a 4.0 values file
  circleci.server.kots_export:
    namespace: circleci-server
    dest: /srv/circleci/values-4.0.yaml
    license: "{{ circleci_license }}"
  register: export

- name: Show what is left to do by hand
  ansible.builtin.debug:
    var: export.manual_actions

- name: Export from a values file saved before the migration window, without touching the cluster
  circleci.server.kots_export:
    src: /srv/circleci/values-3.x.yaml
    dest: /srv/circleci/values-4.0.yaml
    license: "{{ circleci_license }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
dest:
  description: The path of the 4.0 values file.
  returned: always
  type: str
  sample: /srv/circleci/values-4.0.yaml
backup_file:
  description: The backup of the previous O(dest), when one was made.
  returned: changed and a backup was made
  type: str
  sample: /srv/circleci/values-4.0.yaml.2026-11-23@10:52:52~
source:
  description: Where the 3.x values came from.
  returned: always
  type: dict
  contains:
    type:
      description: V(file) or V(release).
      type: str
    path:
      description: O(src), for a file.
      type: str
    namespace:
      description: The release's namespace, for a release.
      type: str
    release:
      description: The release's name, for a release.
      type: str
    revision:
      description: The revision read, for a release.
      type: int
    chart_version:
      description: The chart version of that revision, for a release.
      type: str
    status:
      description: The status of that revision (V(deployed), V(superseded), ...), for a release.
      type: str
  sample: {"type": "release", "namespace": "circleci-server", "release": "circleci-server", "revision": 7,
           "chart_version": "3.4.8", "status": "deployed"}
changes:
  description:
    - What the transform did, one record per key, in the order of the table. Secret values are masked.
    - C(row) is the row of the transform table (1 to 17), C(action) one of V(copied), V(set), V(changed),
      V(generated), V(reused), V(decoded), V(deleted); C(from) names the source key of a copy.
  returned: always
  type: list
  elements: dict
  sample:
    - {"row": "1", "action": "copied", "path": "global.domainName", "from": "domainName", "after": "circleci.example.com"}
    - {"row": "6", "action": "generated", "path": "mongodb.auth.password", "after": "********"}
    - {"row": "14", "action": "deleted", "path": "nomad.server.rpc.advertise", "before": "nomad.circleci.example.com"}
manual_actions:
  description: What the operator must still do by hand after the upgrade (DNS, Nomad Terraform, Nomad mTLS values).
  returned: always
  type: list
  elements: str
domain_name:
  description: The installation's domain, C(global.domainName).
  returned: always
  type: str
  sample: circleci.example.com
nomad_server_endpoint:
  description: The value of the Nomad Terraform C(server_endpoint) variable after the migration.
  returned: always
  type: str
  sample: circleci.example.com:4647
postgresql_internal:
  description: Whether Postgres runs inside the cluster (its StatefulSet is replaced by the 4.0 chart's).
  returned: always
  type: bool
object_storage:
  description: The object storage in use, V(s3) (AWS S3 or S3-compatible) or V(gcs); null when neither is enabled.
  returned: always
  type: str
  sample: s3
carried:
  description:
    - The datastore passwords carried from the 3.x Secrets (C(postgresql), C(mongodb), C(rabbitmq)) of the cluster, as
      4.0 values paths (their values are in O(dest) only). Only when reading the release from the cluster.
  returned: always
  type: list
  elements: str
  sample: ["postgresql.auth.postgresPassword", "mongodb.auth.password"]
minio_enabled:
  description: Whether the 3.x MinIO was enabled (its values are not carried; a warning says what to do).
  returned: always
  type: bool
nginx_aws_acm:
  description: Whether the 4.0 load balancer is C(circleci-proxy-acm) (an ACM certificate).
  returned: always
  type: bool
nomad_mtls_enabled:
  description: Whether the 3.x values enabled Nomad mTLS.
  returned: always
  type: bool
generated:
  description: The secrets the export made because the source had none (their values are in O(dest) only).
  returned: always
  type: list
  elements: str
  sample: ["mongodb.auth.password"]
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.plugins.module_utils import kots
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile

HEADER = ("# CircleCI Server 4.0 Helm values, exported from the 3.x release by circleci.server.kots_export.\n"
          "# They hold every secret of the installation: keep this file mode 0600 and out of version control.\n")


def read_source(module):
    """(values tree, layout, source description, carried passwords, their sources) from src or the cluster."""
    params = module.params
    if params["src"]:
        path = params["src"]
        try:
            text = kots.read_text_file(path, "src")
        except kots.KotsExportError as exc:
            module.fail_json(msg="%s Or omit src to read the release from the cluster." % exc)
        try:
            tree, layout = yamlfile.load(text, name="src %s" % path)
            kots.check_tree_size(tree, "src %s" % path)
            kots.check_3x_values(tree, "src %s" % path)
        except (yamlfile.ValuesFileError, kots.KotsExportError) as exc:
            module.fail_json(msg=str(exc))
        return tree, layout, {"type": "file", "path": path}, {}, {}

    if not k8s.HAS_K8S:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(k8s.K8S_IMPORT_ERROR))
    namespace, release = params["namespace"], params["release"]
    try:
        reader = k8s.K8sReader.from_params(params)
        record = k8s.helm_release(reader, namespace, release, params["revision"])
        # The release as it is now decides, whatever revision is read.
        current = record if params["revision"] is None else k8s.helm_release(reader, namespace, release)
        kots_objects = [item for item in reader.list("Deployment", namespace)
                        if "kots.io/app-slug" in ((item.get("metadata") or {}).get("labels") or {})]
        kots.check_kots_release(current, namespace, release, kots_objects)
        values = record.get("config") or {}
        kots.check_tree_size(values, "the values of release %s" % release)
        carried, sources = kots.datastore_passwords(values, lambda name: k8s.read_secret(reader, namespace, name))
    except (k8s.K8sError, kots.KotsExportError) as exc:
        module.fail_json(msg=str(exc))
    source = {
        "type": "release",
        "namespace": namespace,
        "release": release,
        "revision": record.get("version"),
        "chart_version": k8s.helm_chart_version(record),
        "status": (record.get("info") or {}).get("status"),
    }
    return yamlfile.from_plain(values), yamlfile.Layout(), source, carried, sources


def read_previous(module, dest):
    """(bytes, tree or None, mode or None) of an existing dest; (None, None, None) when there is none."""
    if not os.path.lexists(dest):
        return None, None, None
    try:
        data = kots.read_regular_file(dest, "The existing dest")
        mode = stat.S_IMODE(os.stat(dest).st_mode)
    except kots.KotsExportError as exc:
        module.fail_json(msg="%s Fix it or remove it." % exc)
    try:
        tree, _layout = yamlfile.load(data.decode("utf-8"), name="dest %s" % dest)
        kots.check_tree_size(tree, "dest %s" % dest)
    except (UnicodeDecodeError, yamlfile.ValuesFileError, kots.KotsExportError) as exc:
        module.warn("The existing dest is not a values file (%s): it will be backed up and replaced, and its "
                    "generated secrets cannot be reused." % str(exc).split(":", maxsplit=1)[0])
        tree = None
    return data, tree, mode


def masked_text(tree, layout):
    return yamlfile.dump(kots.mask_values(tree), layout)


def main():
    argument_spec = dict(
        src=dict(type="path"),
        release=dict(type="str", default="circleci-server"),
        namespace=dict(type="str", default="circleci-server"),
        revision=dict(type="int"),
        dest=dict(type="path", required=True),
        license=dict(type="str", required=True, no_log=True),
        registry=dict(type="str", default=kots.DEFAULT_REGISTRY),
        image_pull_secret=dict(type="str", default=kots.DEFAULT_IMAGE_PULL_SECRET, no_log=False),
        backup=dict(type="bool", default=True),
    )
    argument_spec.update(k8s.K8S_AUTH_ARGSPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("src", "revision")],
        supports_check_mode=True,
    )
    if not yamlfile.HAS_RUAMEL:
        module.fail_json(msg=missing_required_lib("ruamel.yaml"), exception=str(yamlfile.RUAMEL_IMPORT_ERROR))
    params = module.params
    dest = params["dest"]
    if not dest:
        module.fail_json(msg="dest is empty: give the path of the 4.0 values file to write.")

    if params["src"] and os.path.realpath(params["src"]) == os.path.realpath(dest):
        module.fail_json(msg="dest is the same file as src: the 3.x values would be overwritten. Give dest another path.")
    try:
        dest = kots.check_dest(dest)  # a link to a file is written through
    except kots.KotsExportError as exc:
        module.fail_json(msg=str(exc))
    tree, layout, source, carried, carried_sources = read_source(module)
    previous_data, previous_tree, previous_mode = read_previous(module, dest)
    if source["type"] == "release" and previous_tree is not None:
        # A re-run after the KOTS cleanup deleted a datastore's Secret (the upgrade then failed): the password the
        # earlier run carried is still the database's.
        for path, _secret, _key, _internal in kots.DATASTORE_PASSWORDS:
            earlier = kots.lookup(previous_tree, path)
            if path not in carried and isinstance(earlier, str) and earlier:
                carried[path] = earlier
                carried_sources[path] = "the file an earlier run wrote (the Secret is gone)"

    try:
        export = kots.export_values(tree, params["license"], registry=params["registry"],
                                    image_pull_secret=params["image_pull_secret"], previous=previous_tree,
                                    carried=carried, carried_sources=carried_sources)
    except kots.KotsExportError as exc:
        module.fail_json(msg=str(exc), source=source)
    kots.literal_blocks(export.values)
    data = (HEADER + yamlfile.dump(export.values, layout)).encode("utf-8")

    content_changed = data != previous_data
    mode_changed = previous_mode is not None and previous_mode != kots.PRIVATE_MODE
    changed = content_changed or mode_changed

    result = dict(
        changed=changed,
        dest=params["dest"],
        source=source,
        changes=export.changes,
        manual_actions=kots.manual_actions(export.facts, namespace=params["namespace"], dest=dest),
        domain_name=export.facts["domain_name"],
        nomad_server_endpoint=export.facts["nomad_server_endpoint"],
        postgresql_internal=export.facts["postgresql_internal"],
        object_storage=export.facts["object_storage"],
        generated=export.facts["generated"],
        carried=export.facts["carried"],
        minio_enabled=export.facts["minio_enabled"],
        nginx_aws_acm=export.facts["nginx_aws_acm"],
        nomad_mtls_enabled=export.facts["nomad_mtls_enabled"],
    )
    for warning in export.warnings:
        module.warn(warning)

    if module._diff:
        if previous_data is None:
            before = ""
        elif previous_tree is None:
            before = "# (the previous file is not a values file: not shown, it may hold secrets)\n"
        else:
            before = masked_text(previous_tree, layout)
        result["diff"] = dict(
            before=before,
            after=HEADER + masked_text(export.values, layout),
            before_header="%s%s" % (dest, " (mode %04o)" % previous_mode if mode_changed else ""),
            after_header="%s%s" % (dest, " (mode %04o)" % kots.PRIVATE_MODE if mode_changed else ""),
        )

    if changed and not module.check_mode:
        try:
            if content_changed:
                if previous_data is not None and params["backup"]:
                    result["backup_file"] = kots.backup_private_file(dest)
                kots.write_private_file(dest, data)
            else:
                os.chmod(dest, kots.PRIVATE_MODE)
        except kots.KotsExportError as exc:
            module.fail_json(msg=str(exc), **result)
        except OSError as exc:
            module.fail_json(msg="Cannot write dest %s (%s): check that its directory is writable by the user the "
                                 "module runs as, and that the disk is not full." % (dest, exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
