# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Malformed and hostile inputs, one case each, and the runner that judges a module's answer to one.

Issue 20 listed inputs that hung a module, crashed it with a traceback, succeeded silently (some changing
things) or leaked a secret. Each ``Case`` here builds one such input in a temporary directory, runs the module
in-process (``patch_module_args``; cloud and cluster clients replaced by recording fakes) and ``judge`` says
whether the answer is clean:

* ``expect="refused"``: the module failed (``fail_json``), within ``LIMIT_SECONDS``, with a message that names
  what is wrong and where (``words``) and says what to do (``ADVICE``), with no traceback and no ``exception``;
* ``expect="masked"``: the module succeeded and the secret shows nowhere in its result (values, diff);
* always: no file of the temporary directory changed, no write call reached a fake client, and no secret
  (``secret``) appears in the output.

``tests/unit/plugins/modules/test_hostile_inputs.py`` runs every case; ``tests/bench/bench_hostile_inputs.py``
prints them as a table. ``origin`` says whether the input is one of the issue's or one added for the class.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from unittest import mock

from ansible.module_utils.testing import patch_module_args

LIMIT_SECONDS = 30.0
# A refusal says what to do: one of these verbs or phrases appears in every message.
ADVICE = re.compile(r"\b(give|set|use|quote|fix|check|write|delete|remove|create|make|raise|install|name|keep|"
                    r"point|take|trim|download|convert|run|merge|restore)\b", re.IGNORECASE)
ISSUE, OWN = "issue", "own"
MODULES = "ansible_collections.circleci.server.plugins.modules."
SECRET = "CANARY-s3cr3t-9f1c"


@dataclass
class Case:
    """One hostile input: ``build(tmp)`` returns the module arguments (and makes the files they name)."""

    ident: str
    klass: str
    module: str
    build: object
    words: tuple = ()
    expect: str = "refused"
    origin: str = OWN
    secret: str = None
    reader: object = None      # a callable returning a FakeReader for K8sReader.from_params
    aws: object = None         # a callable(client MagicMock) that sets a fake AWS client's answers
    gcp: object = None         # a callable returning a fake GCP session
    patches: tuple = ()        # (target, value) pairs patched while the module runs
    real_clients: bool = False  # network cases: the real AWS client, against a local endpoint
    note: str = ""

    @property
    def name(self):
        return "%s:%s" % (self.klass, self.ident)


@dataclass
class Outcome:
    case: Case
    code: int = None
    result: dict = field(default_factory=dict)
    output: str = ""
    seconds: float = 0.0
    files_changed: list = field(default_factory=list)
    writes: list = field(default_factory=list)
    traceback: str = None

    @property
    def message(self):
        return str(self.result.get("msg", ""))


# --- running ------------------------------------------------------------------------------------------------------

def _snapshot(root):
    state = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            digest = None
            if os.path.isfile(path) and not os.path.islink(path) and info.st_size < (64 << 20):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            state[os.path.relpath(path, root)] = (info.st_mode, info.st_size, digest)
    return state


_WRITE_CALL = re.compile(r"^(put|update|authorize|revoke|create|delete|set|patch|modify|attach|detach|tag|terminate)")


def run_case(case, tmp):
    """Run ``case`` in directory ``tmp``; return its ``Outcome`` (never raises for the module's own errors)."""
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E501 pylint: disable=import-outside-toplevel
    from ansible_collections.circleci.server.plugins.module_utils import k8s  # pylint: disable=import-outside-toplevel

    args = case.build(tmp)
    before = _snapshot(tmp)
    outcome = Outcome(case)
    aws_client = mock.MagicMock()
    if case.aws:
        case.aws(aws_client)
    stdout = io.StringIO()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if not case.real_clients:
            stack.enter_context(mock.patch.object(AnsibleAWSModule, "client", lambda self, *a, **k: aws_client))
        if case.reader:
            reader = case.reader()
            stack.enter_context(mock.patch.object(k8s.K8sReader, "from_params", classmethod(lambda cls, p: reader)))
        for target, value in case.patches:
            stack.enter_context(mock.patch(target, value))
        if case.module.startswith("filter:"):
            outcome.code, outcome.result = _run_filter(case.module.split(":", 1)[1], args)
        else:
            module = importlib.import_module(MODULES + case.module)
            stack.enter_context(patch_module_args(args))
            stack.enter_context(contextlib.redirect_stdout(stdout))
            try:
                module.main()
                outcome.code = 0
            except SystemExit as exc:
                outcome.code = exc.code
            except Exception:  # pylint: disable=broad-except  # a traceback is the finding
                import traceback  # pylint: disable=import-outside-toplevel
                outcome.traceback = traceback.format_exc()
    outcome.seconds = time.monotonic() - started
    outcome.output = stdout.getvalue()
    if outcome.output.strip() and not case.module.startswith("filter:"):
        try:
            outcome.result = json.loads(outcome.output)
        except ValueError:
            outcome.result = {"msg": "(not JSON) " + outcome.output[-500:]}
    after = _snapshot(tmp)
    outcome.files_changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    outcome.writes = [str(call) for call in aws_client.mock_calls if _WRITE_CALL.match(call[0].split(".")[0] or "")]
    return outcome


def _run_filter(name, args):
    plugin = importlib.import_module("ansible_collections.circleci.server.plugins.filter." + name)
    from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
    try:
        value = plugin.FilterModule().filters()[name](*args["_args"], **args.get("_kwargs", {}))
    except AnsibleFilterError as exc:
        return 1, {"failed": True, "msg": str(exc)}
    return 0, {"value": value}


def judge(outcome):
    """The problems with an outcome, as sentences ([] when the module answered the input cleanly)."""
    case = outcome.case
    problems = []
    if outcome.traceback:
        return ["a traceback instead of a message:\n" + outcome.traceback[-2000:]]
    if outcome.seconds > LIMIT_SECONDS:
        problems.append("took %.1f s (limit %d s)" % (outcome.seconds, LIMIT_SECONDS))
    text = json.dumps(outcome.result)
    if case.expect == "refused":
        if outcome.code != 1 or not outcome.result.get("failed"):
            problems.append("not refused (exit %s): %s" % (outcome.code, text[:400]))
        if "exception" in outcome.result or "Traceback" in text:
            problems.append("a traceback in the result")
        for word in case.words:
            if not re.search(word, outcome.message):
                problems.append("the message does not match %r: %s" % (word, outcome.message))
        if not ADVICE.search(outcome.message):
            problems.append("the message does not say what to do: %s" % outcome.message)
    elif outcome.code != 0:
        problems.append("failed (exit %s) where it should succeed with the secret masked: %s" % (
            outcome.code, text[:400]))
    secret = case.secret
    if secret and (secret in text or secret in outcome.output):
        problems.append("the secret %s appears in the output" % secret)
    if outcome.files_changed and case.expect == "refused":
        problems.append("files changed: %s" % ", ".join(outcome.files_changed))
    if outcome.writes and case.expect == "refused":
        problems.append("write calls reached the API: %s" % ", ".join(outcome.writes))
    return problems


# --- inputs -------------------------------------------------------------------------------------------------------

VALUES_4_2 = """\
global:
  domainName: circleci.example.com
apiToken: %s
vm_service:
  providers:
    ec2:
      enabled: true
""" % SECRET


def _write(tmp, name, content, mode=None):
    path = os.path.join(tmp, name)
    if isinstance(content, bytes):
        with open(path, "wb") as handle:
            handle.write(content)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    if mode is not None:
        os.chmod(path, mode)
    return path


def _fifo(tmp, name="pipe"):
    path = os.path.join(tmp, name)
    os.mkfifo(path)
    return path


def _bomb(levels=9, width=9):
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for index in range(1, levels):
        name = "l%d" % index
        text += "%s: &%s [%s]\n" % (name, name, ", ".join(["*" + previous] * width))
        previous = name
    return text


def _big_values(megabytes=50):
    """A valid values file of ``megabytes`` MiB: one mapping whose list holds the padding."""
    item = "- value-padding-padding-padding-padding-padding-padding\n"
    return "global:\n  domainName: x\nextraItems:\n" + item * (megabytes * (1 << 20) // len(item) + 1)


def _migrate(src=None, dest=None, from_version="4.2.7", to_version="4.3.9", **extra):
    args = {"from_version": from_version, "to_version": to_version}
    if src is not None:
        args["src"] = src
    if dest is not None:
        args["dest"] = dest
    args.update(extra)
    return args


def _values_src(content, **extra):
    return lambda tmp: _migrate(_write(tmp, "values.yaml", content, 0o600), **extra)


def _fake_reader():
    from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import (  # noqa: E501 pylint: disable=import-outside-toplevel
        FakeReader,
        helm_release_secret,
    )
    return FakeReader([helm_release_secret("circleci-server", "circleci-server", 3, "4.2.7", {})])


AWS = {"region": "us-east-1", "access_key": "AKIDEXAMPLE", "secret_key": "dummy-secret"}
SG = {"group_id": "sg-0123456789abcdef0", "direction": "ingress"}
SUBJECT = "system:serviceaccount:circleci-server:vm-service"


def _rule(**kwargs):
    return lambda tmp: dict(AWS, **dict(SG, **kwargs))


def _trust(to_subject):
    return lambda tmp: dict(AWS, role_name="circleci-vm", from_subject=SUBJECT, to_subject=to_subject)


def _fake_group(client):
    client.describe_security_groups.return_value = {"SecurityGroups": [{"GroupId": SG["group_id"], "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 2376, "ToPort": 2376, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}]}]}


def _fake_role(client):
    client.get_role.return_value = {"Role": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": "arn"},
         "Condition": {"StringEquals": {"oidc/x:sub": SUBJECT}}}]}}}


def _kube(kubeconfig_builder, module="server_release_info", **extra):
    def build(tmp):
        args = {"kubeconfig": kubeconfig_builder(tmp), "namespace": "circleci-server"}
        args.update(extra)
        return args
    return build


def _readonly_dir(tmp):
    directory = os.path.join(tmp, "readonly")
    os.mkdir(directory)
    os.chmod(directory, 0o555)
    return directory


# root writes anywhere: for root the read-only directory is judged as a non-root user would see it.
_REAL_ACCESS = os.access


def _access_as_non_root(path, mode, *args, **kwargs):
    if os.geteuid() == 0 and mode & os.W_OK and not os.stat(path).st_mode & 0o222:
        return False
    return _REAL_ACCESS(path, mode, *args, **kwargs)


AS_NON_ROOT = (("ansible_collections.circleci.server.plugins.module_utils.files.os.access", _access_as_non_root),)


def _version_cases():
    """The issue's four version inputs, and more, at every version option."""
    bad = [("rc1", "4.3.9-rc1", ISSUE), ("fullwidth", "\uff14.\uff13.\uff19", ISSUE), ("rm-rf", "rm-rf-4.3.9", ISSUE),
           ("float", 4.3, ISSUE), ("empty", "", OWN), ("four-parts", "4.3.9.1", OWN), ("bool", True, OWN),
           ("semicolon", "4.3.9; rm -rf /", OWN), ("leading-zero", "4.03.9", OWN), ("arabic-indic", "\u0664.3.9", OWN)]
    cases = []
    for ident, value, origin in bad:
        word = "quote it" if isinstance(value, float) else r"version"
        cases.append(Case("server_version_info.target_version=%s" % ident, "versions", "server_version_info",
                          lambda tmp, v=value: {"server_version": "4.2.7", "target_version": v},
                          ("target_version", "(?i)" + word), origin=origin))
        cases.append(Case("helm_values_migrate.to_version=%s" % ident, "versions", "helm_values_migrate",
                          lambda tmp, v=value: _migrate(_write(tmp, "values.yaml", VALUES_4_2, 0o600), to_version=v),
                          ("to_version", "(?i)" + word), origin=origin, secret=SECRET))
        if origin == ISSUE:
            cases.append(Case("helm_release_diff.chart_version=%s" % ident, "versions", "helm_release_diff",
                              lambda tmp, v=value: {"release_namespace": "circleci-server", "chart_ref": "chart",
                                                    "chart_version": v, "binary_path": "/bin/false"},
                              ("chart_version", "(?i)" + word), origin=origin))
            cases.append(Case("filter.server_version(%s)" % ident, "versions", "filter:server_version",
                              lambda tmp, v=value: {"_args": (v, "circleci_target_version")},
                              ("circleci_target_version", "(?i)" + word), origin=origin))
    cases += [
        Case("server_version_info.server_version=minor", "versions", "server_version_info",
             lambda tmp: {"server_version": "4.3"}, ("server_version", "a minor")),
        Case("server_version_info.kubernetes_version=float", "versions", "server_version_info",
             lambda tmp: {"server_version": "4.3.9", "kubernetes_version": 1.28}, ("kubernetes_version", "Quote it")),
        Case("server_version_info.kubernetes_version=fullwidth", "versions", "server_version_info",
             lambda tmp: {"server_version": "4.3.9", "kubernetes_version": "1.\uff12\uff18.1"},
             ("kubernetes_version", "not a Kubernetes version")),
        Case("server_version_info.kubernetes_overrides-patch-key", "versions", "server_version_info",
             lambda tmp: {"server_version": "4.3.9", "kubernetes_overrides": {"4.3.9": "1.26-1.30"}},
             ("kubernetes_overrides key", "set it to a minor")),
        Case("server_version_info.kubernetes_overrides-bad-range", "versions", "server_version_info",
             lambda tmp: {"server_version": "4.3.9", "kubernetes_overrides": {"4.3": "1.26-latest"}},
             (r"kubernetes_overrides\[4.3\]", "LOW-HIGH")),
        Case("helm_release_diff.kube_version=float", "versions", "helm_release_diff",
             lambda tmp: {"release_namespace": "circleci-server", "chart_ref": "chart", "kube_version": 1.28,
                          "binary_path": "/bin/false"}, ("kube_version", "Quote it")),
        Case("helm_values_migrate.from_version=v-prefixed-garbage", "versions", "helm_values_migrate",
             _values_src(VALUES_4_2, from_version="vv4.2.7"), ("from_version", "not a version"), secret=SECRET),
    ]
    return cases


def _file_cases():
    return [
        Case("helm_values_migrate.src=billion-laughs", "file-hang", "helm_values_migrate", _values_src(_bomb()),
             ("alias", "billion laughs", "src"), origin=ISSUE),
        Case("helm_values_migrate.src=50MB-values", "file-hang", "helm_values_migrate",
             lambda tmp: _migrate(_write(tmp, "values.yaml", _big_values(50), 0o600)),
             ("src", "50.0 MiB", "over the 2 MiB"), origin=ISSUE),
        Case("tink_migration_status.import_log=FIFO", "file-hang", "tink_migration_status",
             lambda tmp: {"namespace": "circleci-server", "import_log": _fifo(tmp)},
             ("import_log", "FIFO", "not a regular file"), origin=ISSUE, reader=_fake_reader),
        Case("helm_values_migrate.src=FIFO", "file-hang", "helm_values_migrate", lambda tmp: _migrate(_fifo(tmp)),
             ("src", "FIFO")),
        Case("helm_values_migrate.src=/dev/zero", "file-hang", "helm_values_migrate",
             lambda tmp: _migrate("/dev/zero", dest=os.path.join(tmp, "out.yaml")), ("src", "character device")),
        Case("helm_values_migrate.src=directory", "file-hang", "helm_values_migrate",
             lambda tmp: _migrate(tmp, dest=os.path.join(tmp, "out.yaml")), ("src", "a directory")),
        Case("helm_values_migrate.src=wide-alias-bomb", "file-hang", "helm_values_migrate",
             _values_src(_bomb(levels=3, width=200)), ("alias", "src")),
        Case("helm_values_migrate.src=deep-nesting", "file-hang", "helm_values_migrate",
             _values_src("a: " + "[" * 20000 + "]" * 20000 + "\n"), ("src", "more than 100 deep")),
        Case("tink_migration_status.import_log=/dev/zero", "file-hang", "tink_migration_status",
             lambda tmp: {"namespace": "circleci-server", "import_log": "/dev/zero"}, ("import_log", "device"),
             reader=_fake_reader),
        Case("server_release_info.kubeconfig=FIFO", "file-hang", "server_release_info",
             _kube(lambda tmp: _fifo(tmp, "kubeconfig")), ("kubeconfig", "FIFO")),
        Case("server_release_info.kubeconfig=billion-laughs", "file-hang", "server_release_info",
             _kube(lambda tmp: _write(tmp, "kubeconfig", _bomb())), ("kubeconfig", "alias")),
        Case("server_release_info.kubeconfig=50MB", "file-hang", "server_release_info",
             _kube(lambda tmp: _write(tmp, "kubeconfig", "#" * (3 << 20))), ("kubeconfig", "over the 2 MiB")),
        Case("gcp_service_account_iam_member.gcp_credentials_file=FIFO", "file-hang", "gcp_service_account_iam_member",
             lambda tmp: {"service_account": "vm@p.iam.gserviceaccount.com", "member": "user:a@example.com",
                          "gcp_auth_kind": "serviceaccount", "gcp_credentials_file": _fifo(tmp, "key.json")},
             ("gcp_credentials_file", "FIFO")),
    ]


def _dangling(tmp):
    link = os.path.join(tmp, "values-link.yaml")
    os.symlink(os.path.join(tmp, "gone", "values.yaml"), link)
    return link


def _values_file(tmp):
    return _write(tmp, "values.yaml", VALUES_4_2, 0o600)


def _traceback_cases():
    src = _values_file
    return [
        Case("helm_values_migrate.dest-in-missing-directory", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(src(tmp), dest=os.path.join(tmp, "missing", "values.yaml")),
             ("dest", "does not exist", "create it"), origin=ISSUE, secret=SECRET),
        Case("helm_values_migrate.dest-in-read-only-directory", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(src(tmp), dest=os.path.join(_readonly_dir(tmp), "values.yaml")),
             ("dest", "not writable"), origin=ISSUE, secret=SECRET, patches=AS_NON_ROOT,
             note="as root, judged as a non-root user sees the directory"),
        Case("helm_values_migrate.dest=dangling-symlink", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(src(tmp), dest=_dangling(tmp)), ("dest", "symbolic link", "does not exist"),
             origin=ISSUE, secret=SECRET),
        Case("helm_values_migrate.dest=directory", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(src(tmp), dest=tmp), ("dest", "is a directory")),
        Case("helm_values_migrate.dest=FIFO", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(src(tmp), dest=_fifo(tmp)), ("dest", "FIFO")),
        Case("helm_values_migrate.dest-parent-is-a-file", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(src(tmp), dest=os.path.join(src(tmp), "values.yaml")),
             ("dest", "not a directory")),
        Case("helm_values_migrate.src=binary", "traceback", "helm_values_migrate",
             lambda tmp: _migrate(_write(tmp, "values.yaml", b"\x89PNG\r\n\x1a\n\x00\x00")), ("src", "binary")),
        Case("server_release_info.kubeconfig=not-YAML", "traceback", "server_release_info",
             _kube(lambda tmp: _write(tmp, "kubeconfig", "apiVersion: v1\nclusters: [\n  {name: x\n")),
             ("kubeconfig", "not valid YAML", "line"), origin=ISSUE),
        Case("server_release_info.kubeconfig=YAML-list", "traceback", "server_release_info",
             _kube(lambda tmp: _write(tmp, "kubeconfig", "- a\n- b\n")), ("kubeconfig", "not a kubeconfig")),
        Case("server_release_info.kubeconfig=directory", "traceback", "server_release_info",
             _kube(lambda tmp: tmp), ("kubeconfig", "directory")),
        Case("server_release_info.kubeconfig=number", "traceback", "server_release_info",
             lambda tmp: {"kubeconfig": 42, "namespace": "circleci-server"}, ("kubeconfig", "int")),
        Case("tink_migration_status.kubeconfig=empty-dict-context", "traceback", "tink_migration_status",
             _kube(lambda tmp: {"apiVersion": "v1"}, "tink_migration_status", context="nope"),
             ("Kubernetes configuration",)),
        Case("tink_migration_status.import_log=binary", "traceback", "tink_migration_status",
             lambda tmp: {"namespace": "circleci-server",
                          "import_log": _write(tmp, "run.log", b"\x7fELF\x02\x01\x01\x00\x00\x00" * 10)},
             ("import_log", "binary"), origin=ISSUE, reader=_fake_reader),
        Case("tink_migration_status.import_log=latin-1", "traceback", "tink_migration_status",
             lambda tmp: {"namespace": "circleci-server", "import_log": _write(tmp, "run.log", b"caf\xe9 0: Error")},
             ("import_log", "not UTF-8"), reader=_fake_reader),
        Case("tink_migration_status.fail_on_blocking=maybe", "traceback", "tink_migration_status",
             lambda tmp: {"namespace": "circleci-server", "fail_on_blocking": "maybe"},
             ("fail_on_blocking", "not a valid boolean"), origin=ISSUE, reader=_fake_reader),
        Case("velero_backup_info.max_age=overflow", "traceback", "velero_backup_info",
             lambda tmp: {"namespace": "circleci-server", "max_age": "9" * 400 + "d"}, ("max_age", "longer than 366d"),
             origin=ISSUE, reader=_fake_reader),
        Case("velero_backup_info.max_age=inf-seconds", "traceback", "velero_backup_info",
             lambda tmp: {"namespace": "circleci-server", "max_age": "9" * 400}, ("max_age", "longer than")),
        Case("velero_backup_info.max_age=negative", "traceback", "velero_backup_info",
             lambda tmp: {"namespace": "circleci-server", "max_age": "-5h"}, ("max_age", "not a duration")),
        Case("velero_backup_info.max_age=nan", "traceback", "velero_backup_info",
             lambda tmp: {"namespace": "circleci-server", "max_age": "nan"}, ("max_age", "not a duration")),
        Case("server_release_info.request_timeout=-1", "traceback", "server_release_info",
             lambda tmp: {"host": "https://127.0.0.1:1", "namespace": "circleci-server", "request_timeout": -1}, ("request_timeout", "more than 0")),
        Case("server_release_info.request_timeout=maybe", "traceback", "server_release_info",
             lambda tmp: {"host": "https://127.0.0.1:1", "namespace": "circleci-server", "request_timeout": "maybe"}, ("request_timeout", "float")),
        Case("s3_bucket_versioning.request_timeout=0", "traceback", "s3_bucket_versioning",
             lambda tmp: dict(AWS, bucket="b", request_timeout=0), ("request_timeout", "more than 0")),
        Case("gcp_service_account_iam_member.gcp_credentials_file=not-JSON", "traceback",
             "gcp_service_account_iam_member",
             lambda tmp: {"service_account": "vm@p.iam.gserviceaccount.com", "member": "user:a@example.com",
                          "gcp_auth_kind": "serviceaccount", "gcp_credentials_file": _write(tmp, "key.json", "{nope")},
             ("gcp_credentials_file", "not a service account key")),
        Case("helm_release_diff.request_timeout=-3", "traceback", "helm_release_diff",
             lambda tmp: {"release_namespace": "circleci-server", "chart_ref": "chart", "request_timeout": -3,
                          "binary_path": "/bin/false"}, ("request_timeout", "more than 0")),
        Case("helm_release_diff.binary_path=missing", "traceback", "helm_release_diff",
             lambda tmp: {"release_namespace": "circleci-server", "chart_ref": "chart",
                          "binary_path": os.path.join(tmp, "no-helm")}, ("cannot run", "helm")),
    ]


def _gcp(**kwargs):
    args = {"service_account": "vm@p.iam.gserviceaccount.com", "member": "user:a@example.com", "gcp_auth_kind": "none",
            "gcp_base_url": "http://127.0.0.1:1"}
    args.update(kwargs)
    return lambda tmp: args


def _silent_cases():
    return [
        Case("iam_role_trust_subject.to_subject=system:serviceaccount:*:*", "silent-success", "iam_role_trust_subject",
             _trust("system:serviceaccount:*:*"), ("to_subject", "wildcard", "every matching service account"),
             origin=ISSUE, aws=_fake_role),
        Case("ec2_security_group_rule.from_port=70000", "silent-success", "ec2_security_group_rule",
             _rule(from_port=70000, cidr_ip=["10.0.0.0/16"], state="present"), ("from_port", "0-65535"),
             origin=ISSUE, aws=_fake_group),
        Case("ec2_security_group_rule.from_port>to_port", "silent-success", "ec2_security_group_rule",
             _rule(from_port=2400, to_port=2376, cidr_ip=["10.0.0.0/16"], state="present"),
             ("from_port 2400 is greater than to_port 2376",), origin=ISSUE, aws=_fake_group),
        Case("ec2_security_group_rule.protocol=tcpp,state=absent", "silent-success", "ec2_security_group_rule",
             _rule(protocol="tcpp", from_port=2376, state="absent"), ("protocol", "tcpp"), origin=ISSUE,
             aws=_fake_group),
        Case("iam_role_trust_subject.to_subject=namespace-wildcard", "silent-success", "iam_role_trust_subject",
             _trust("system:serviceaccount:circleci-server:*"), ("wildcard",), aws=_fake_role),
        Case("iam_role_trust_subject.to_subject=*", "silent-success", "iam_role_trust_subject", _trust("*"),
             ("wildcard",), aws=_fake_role),
        Case("iam_role_trust_subject.to_subject=question-mark", "silent-success", "iam_role_trust_subject",
             _trust("system:serviceaccount:circleci-server:machine-provisione?"), ("wildcard",), aws=_fake_role),
        Case("iam_role_trust_subject.to_subject=account-root", "silent-success", "iam_role_trust_subject",
             _trust("arn:aws:iam::123456789012:root"), ("not a service account subject",), aws=_fake_role),
        Case("ec2_security_group_rule.from_port=-5", "silent-success", "ec2_security_group_rule",
             _rule(from_port=-5, state="absent"), ("from_port", "0-65535"), aws=_fake_group),
        Case("ec2_security_group_rule.to_port=65536,state=absent", "silent-success", "ec2_security_group_rule",
             _rule(from_port=2376, to_port=65536, state="absent"), ("to_port", "0-65535"), aws=_fake_group),
        Case("ec2_security_group_rule.protocol=999", "silent-success", "ec2_security_group_rule",
             _rule(protocol="999", from_port=1, state="absent"), ("protocol", "0-255"), aws=_fake_group),
        Case("ec2_security_group_rule.cidr_ip=/33", "silent-success", "ec2_security_group_rule",
             _rule(from_port=2376, cidr_ip=["10.0.0.0/33"], state="present"), ("cidr_ip", "IPv4 CIDR"),
             aws=_fake_group),
        Case("ec2_security_group_rule.cidr_ip=injection", "silent-success", "ec2_security_group_rule",
             _rule(from_port=2376, cidr_ip=["0.0.0.0/0; rm -rf /"], state="absent"), ("cidr_ip",), aws=_fake_group),
        Case("ec2_security_group_rule.source_group_id=sg-*", "silent-success", "ec2_security_group_rule",
             _rule(from_port=2376, source_group_id=["sg-*"], state="absent"), ("source_group_id",), aws=_fake_group),
        Case("ec2_security_group_rule.protocol=TCP-space", "silent-success", "ec2_security_group_rule",
             _rule(protocol="tcp ", from_port=2376, state="absent"), ("protocol",), aws=_fake_group),
        Case("gcp_service_account_iam_member.member=allUsers", "silent-success", "gcp_service_account_iam_member",
             _gcp(member="allUsers"), ("member", "everyone")),
        Case("gcp_service_account_iam_member.member=wildcard", "silent-success", "gcp_service_account_iam_member",
             _gcp(member="serviceAccount:p.svc.id.goog[*/*]"), ("member", "everyone")),
        Case("gcp_service_account_iam_member.member=no-type", "silent-success", "gcp_service_account_iam_member",
             _gcp(member="machine-provisioner"), ("member", "not an IAM member")),
        Case("gcp_service_account_iam_member.service_account=path-traversal", "silent-success",
             "gcp_service_account_iam_member", _gcp(service_account="../../projects/other/serviceAccounts/x"),
             ("service_account", "not a service account email")),
        Case("server_release_info.namespace=path-traversal", "silent-success", "server_release_info",
             lambda tmp: {"namespace": "../kube-system", "host": "https://127.0.0.1:1"},
             ("namespace", "not a namespace name")),
        Case("tink_migration_status.release=uppercase-slash", "silent-success", "tink_migration_status",
             lambda tmp: {"namespace": "circleci-server", "release": "Circle/Server", "host": "https://127.0.0.1:1"},
             ("release", "not a Helm release name")),
        Case("velero_backup_info.velero_namespace=empty", "silent-success", "velero_backup_info",
             lambda tmp: {"namespace": "circleci-server", "velero_namespace": "", "host": "https://127.0.0.1:1"},
             ("velero_namespace", "not a namespace name")),
        Case("helm_release_diff.release_namespace=flag-injection", "silent-success", "helm_release_diff",
             lambda tmp: {"release_namespace": "--all-namespaces", "chart_ref": "chart", "binary_path": "/bin/false"},
             ("release_namespace", "not a namespace name")),
        Case("s3_bucket_versioning.bucket=path", "silent-success", "s3_bucket_versioning",
             lambda tmp: dict(AWS, bucket="../other-bucket", status="Suspended"), ("bucket", "not an S3 bucket name")),
        Case("s3_bucket_versioning.bucket=upper-case", "silent-success", "s3_bucket_versioning",
             lambda tmp: dict(AWS, bucket="CircleCI_Data", status="Enabled"), ("bucket", "not an S3 bucket name")),
    ]


def _leak_cases():
    dup = "global:\n  domainName: x\npostgresql:\n  auth:\n    password: %s\n    password: %s-2\n" % (SECRET, SECRET)
    dsn = VALUES_4_2.replace("apiToken: %s" % SECRET, "apiToken: plain\npostgresql:\n  url: postgres://circle:%s@db:5432/"
                             "circle" % SECRET)
    smtp = VALUES_4_2.replace("apiToken: %s" % SECRET, "apiToken: plain\nsmtp:\n  user: ci\n  pass: %s" % SECRET)
    amqp = VALUES_4_2.replace("apiToken: %s" % SECRET, "apiToken: plain\nrabbitmq:\n  uri: amqp://guest:%s@rabbit:5672"
                              % SECRET)
    kv_dsn = VALUES_4_2.replace("apiToken: %s" % SECRET, "apiToken: plain\nmongodb:\n  options: host=db password=%s "
                                "tls=true" % SECRET)

    def diff_run(content):
        return lambda tmp: dict(_migrate(_write(tmp, "values.yaml", content, 0o600)), _ansible_diff=True,
                                _ansible_check_mode=True)

    return [
        Case("helm_values_migrate.duplicated-secret-key", "leak", "helm_values_migrate", _values_src(dup),
             ("password", "twice", "line 6"), origin=ISSUE, secret=SECRET),
        Case("helm_values_migrate.DSN-password-in-diff-and-values", "leak", "helm_values_migrate", diff_run(dsn),
             expect="masked", origin=ISSUE, secret=SECRET),
        Case("helm_values_migrate.smtp.pass-in-diff-and-values", "leak", "helm_values_migrate", diff_run(smtp),
             expect="masked", origin=ISSUE, secret=SECRET),
        Case("helm_values_migrate.amqp-URL-password", "leak", "helm_values_migrate", diff_run(amqp), expect="masked",
             secret=SECRET),
        Case("helm_values_migrate.key=value-DSN-password", "leak", "helm_values_migrate", diff_run(kv_dsn),
             expect="masked", secret=SECRET),
        Case("helm_values_migrate.unterminated-quote-after-secret", "leak", "helm_values_migrate",
             _values_src("apiToken: '%s\nglobal: {}\n" % SECRET), ("not valid YAML",), secret=SECRET),
        Case("helm_values_migrate.duplicated-key-flow-mapping", "leak", "helm_values_migrate",
             _values_src("keyset: {signing: %s, signing: %s}\n" % (SECRET, SECRET)), ("signing", "twice"),
             secret=SECRET),
        Case("server_release_info.kubeconfig-duplicated-token", "leak", "server_release_info",
             _kube(lambda tmp: _write(tmp, "kubeconfig", "users:\n- name: u\n  user:\n    token: %s\n    token: %s\n"
                                      % (SECRET, SECRET))), ("token", "twice"), secret=SECRET),
    ]


def _shape_cases():
    def values(block):
        return "global:\n  domainName: circleci.example.com\napiToken: %s\n%s" % (SECRET, block)
    return [
        Case("helm_values_migrate.vm_service=string", "shape", "helm_values_migrate",
             _values_src(values("vm_service: enabled\n")), ("vm_service is a string", "mapping"), origin=ISSUE,
             secret=SECRET),
        Case("helm_values_migrate.vm_service=list", "shape", "helm_values_migrate",
             _values_src(values("vm_service: [a, b]\n")), ("vm_service is a list",), secret=SECRET),
        Case("helm_values_migrate.providers=string", "shape", "helm_values_migrate",
             _values_src(values("vm_service:\n  providers: ec2\n")), ("vm_service.providers is a string",),
             secret=SECRET),
        Case("helm_values_migrate.global=bool", "shape", "helm_values_migrate",
             _values_src("global: true\napiToken: %s\n" % SECRET), ("global is a boolean",), secret=SECRET),
        Case("helm_values_migrate.nomad=yes", "shape", "helm_values_migrate", _values_src(values("nomad: 'yes'\n")),
             ("nomad is a string",), secret=SECRET),
        Case("helm_values_migrate.top-level-list", "shape", "helm_values_migrate", _values_src("- a\n- b\n"),
             ("not a mapping",)),
        Case("helm_values_migrate.machine_provisioner.providers.ec2=number", "shape", "helm_values_migrate",
             _values_src(values("machine_provisioner:\n  providers:\n    ec2: 1\n")),
             ("machine_provisioner.providers.ec2 is a number",), secret=SECRET),
    ]


def all_cases():
    return _version_cases() + _file_cases() + _traceback_cases() + _silent_cases() + _leak_cases() + _shape_cases()
