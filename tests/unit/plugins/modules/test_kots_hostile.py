# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Malformed and hostile inputs to kots_export, kots_cleanup and helm_adopt (issue 20's items for these modules,
and issue 18's "anything but a KOTS-deployed 3.x release"): each case must fail before any change, within 30 s,
with a message that names what is wrong, and without a traceback or a secret in the output."""
from __future__ import annotations

import json
import os
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.module_utils import k8s, k8s_objects
from ansible_collections.circleci.server.plugins.modules import helm_adopt, kots_cleanup, kots_export
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import (
    FakeReader, helm_release_secret, obj, secret)
from ansible_collections.circleci.server.tests.unit.plugins.modules.test_migrate_modules import (
    KOTS, NS, FakeObjects, namespace)

LICENSE = "hostile-4x-license-0c0c"
PG_PASSWORD = "hostile-pg-password-from-secret"
VALID_3X = "domainName: ci.example.com\npostgresql:\n  internal: true\n"
BOMB = "\n".join(["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                 + ["a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 9)) for i in range(1, 10)]
                 + ["domainName: ci.example.com"]) + "\n"
TIME_LIMIT = 30


def refused(module, capsys, args):
    """Run the module; it must fail cleanly and quickly. Returns its message."""
    began = time.monotonic()
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    elapsed = time.monotonic() - began
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exit_info.value.code == 1, result
    assert elapsed < TIME_LIMIT, elapsed
    assert "Traceback" not in out and "exception" not in result, out
    for value in (LICENSE, PG_PASSWORD):
        assert value not in out
    return result["msg"]


# ----------------------------------------------------------------------------------------------- kots_export
def _fifo(path):
    os.mkfifo(path)


def _sparse(size):
    def make(path):
        with open(path, "wb") as stream:
            stream.truncate(size)
    return make


def _text(text):
    def make(path):
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
    return make


def _bytes(data):
    def make(path):
        with open(path, "wb") as stream:
            stream.write(data)
    return make


SRC_CASES = [
    ("fifo", _fifo, "is a FIFO"),
    ("yaml-bomb", _text(BOMB), "expands to more than"),
    ("fifty-megabytes", _sparse(50 * 1024 * 1024), "over the 2 MiB this module reads"),
    ("directory", os.mkdir, "is a directory"),
    ("missing", lambda path: None, "does not exist"),
    ("not-utf8", _bytes(b"domainName: \xff\xfe\n"), "not UTF-8"),
    ("not-yaml", _text("domainName: [unclosed\n"), "not valid YAML"),
    ("a-list", _text("- domainName: ci.example.com\n"), "not a mapping"),
    ("domain-true", _text("domainName: true\n"), "domainName is a boolean"),
    ("domain-list", _text("domainName: [a.example.com, b.example.com]\n"), "domainName is a list"),
    ("domain-mapping", _text("domainName: {host: ci.example.com}\n"), "domainName is a mapping"),
    ("domain-number", _text("domainName: 42\n"), "domainName is a number"),
    ("domain-shell", _text("domainName: 'ci.example.com; rm -rf /'\n"), "not a DNS name"),
    ("values-of-4x", _text("global:\n  domainName: ci.example.com\n  license: x\n"), "holds 4.x values"),
    ("empty", _text(""), "no domainName"),
    ("multi-document", _text(VALID_3X + "---\n" + VALID_3X), "YAML documents"),
]


@pytest.mark.parametrize("make_src, needle", [case[1:] for case in SRC_CASES], ids=[case[0] for case in SRC_CASES])
def test_kots_export_refuses_a_bad_src(capsys, tmp_path, make_src, needle):
    src, dest = tmp_path / "src.yaml", tmp_path / "out" / "values-4.0.yaml"
    dest.parent.mkdir()
    make_src(str(src))
    msg = refused(kots_export, capsys, {"src": str(src), "dest": str(dest), "license": LICENSE})
    assert needle in msg
    assert os.listdir(dest.parent) == []


def _dangling(tmp_path, dest):
    os.symlink(str(tmp_path / "nowhere.yaml"), str(dest))


def _link_to_file(tmp_path, dest):
    (tmp_path / "real.yaml").write_text("x: 1\n")
    os.symlink(str(tmp_path / "real.yaml"), str(dest))


def _read_only_directory(tmp_path, dest):
    os.chmod(str(dest.parent), 0o555)


def _dest_fifo(tmp_path, dest):
    os.mkfifo(str(dest))


DEST_CASES = [
    ("directory", lambda tmp_path, dest: dest.mkdir(), "is a directory"),
    ("missing-directory", lambda tmp_path, dest: os.rmdir(str(dest.parent)), "does not exist"),
    ("read-only-directory", _read_only_directory, "is read-only"),
    ("dangling-symlink", _dangling, "which does not exist"),
    ("fifo", _dest_fifo, "not a regular file"),
]


@pytest.mark.parametrize("make_dest, needle", [case[1:] for case in DEST_CASES], ids=[case[0] for case in DEST_CASES])
def test_kots_export_refuses_a_bad_dest(capsys, tmp_path, make_dest, needle):
    src = tmp_path / "src.yaml"
    src.write_text(VALID_3X)
    dest = tmp_path / "out" / "values-4.0.yaml"
    dest.parent.mkdir()
    make_dest(tmp_path, dest)
    before = sorted(os.listdir(str(tmp_path)))
    try:
        msg = refused(kots_export, capsys, {"src": str(src), "dest": str(dest), "license": LICENSE})
    finally:
        if dest.parent.exists():
            os.chmod(str(dest.parent), 0o755)
    assert needle in msg
    assert sorted(os.listdir(str(tmp_path))) == before
    assert not os.path.isfile(str(tmp_path / "nowhere.yaml"))


def test_kots_export_refuses_an_empty_dest(capsys, tmp_path):
    src = tmp_path / "src.yaml"
    src.write_text(VALID_3X)
    assert "dest is empty" in refused(kots_export, capsys, {"src": str(src), "dest": "", "license": LICENSE})


def test_kots_export_writes_through_a_link_to_a_file_and_keeps_the_link(capsys, tmp_path):
    src, real, link = tmp_path / "src.yaml", tmp_path / "real.yaml", tmp_path / "link.yaml"
    src.write_text(VALID_3X)
    real.write_text("x: 1\n")
    os.symlink(str(real), str(link))
    with patch_module_args({"src": str(src), "dest": str(link), "license": LICENSE}):
        with pytest.raises(SystemExit) as exit_info:
            kots_export.main()
    result = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 0, result
    assert os.path.islink(str(link)) and "ci.example.com" in real.read_text()


def kots_deployment():
    return obj("Deployment", NS, "frontend", {"kots.io/app-slug": "circleci-server"})


CLUSTER_CASES = [
    ("release-4x", [helm_release_secret(NS, "circleci-server", 3, "4.2.7", {"global": {"domainName": "ci.example.com"}}),
                    kots_deployment()], {}, "not a CircleCI Server 3.x release"),
    ("release-4x-now-3x-revision-asked", [
        helm_release_secret(NS, "circleci-server", 1, "3.4.8", {"domainName": "ci.example.com"}, status="superseded"),
        helm_release_secret(NS, "circleci-server", 2, "4.0.6", {"global": {"domainName": "ci.example.com"}}),
        kots_deployment()], {"revision": 1}, "at chart 4.0.6"),
    ("release-not-kots", [helm_release_secret(NS, "circleci-server", 1, "3.4.8", {"domainName": "ci.example.com"}),
                          obj("Deployment", NS, "frontend", {"app": "frontend"})], {}, "not deployed by KOTS"),
    ("no-release", [kots_deployment()], {}, "No helm release"),
    ("chart-garbage-version", [helm_release_secret(NS, "circleci-server", 1, "rm-rf-3.4.8", {"domainName": "ci.example.com"}),
                               kots_deployment()], {}, "not a CircleCI Server 3.x release"),
]


@pytest.mark.parametrize("objects, extra, needle", [case[1:] for case in CLUSTER_CASES], ids=[case[0] for case in CLUSTER_CASES])
def test_kots_export_refuses_what_is_not_a_kots_3x_release(capsys, tmp_path, monkeypatch, objects, extra, needle):
    reader = FakeReader(objects)
    monkeypatch.setattr(k8s.K8sReader, "from_params", classmethod(lambda cls, params: reader))
    dest = tmp_path / "values-4.0.yaml"
    msg = refused(kots_export, capsys, dict({"dest": str(dest), "license": LICENSE}, **extra))
    assert needle in msg
    assert not dest.exists()


# ---------------------------------------------------------------------------------------------- kots_cleanup
def with_postgres_secret(fake, password=PG_PASSWORD):
    fake.objects["Secret"]["postgresql"] = secret(NS, "postgresql", {"postgresql-password": password}, labels=dict(KOTS))
    fake.objects["Secret"]["postgresql"]["metadata"]["annotations"] = {}
    return fake


def values_file(tmp_path, text):
    path = tmp_path / "values-4.0.yaml"
    path.write_text(text)
    return str(path)


def _bomb_file(tmp_path):
    return values_file(tmp_path, BOMB)


def _fifo_file(tmp_path):
    path = tmp_path / "fifo.yaml"
    os.mkfifo(str(path))
    return str(path)


CLEANUP_CASES = [
    ("release-4x", lambda tmp_path: (namespace("4.2.7"), {}), "not a CircleCI Server 3.x release"),
    ("release-4.0-after-upgrade", lambda tmp_path: (namespace("4.0.6"), {}), "at chart 4.0.6"),
    ("no-release", lambda tmp_path: (FakeObjects({"Secret": []}), {}), "No Helm release circleci-server"),
    ("helm-record-as-secret", lambda tmp_path: (namespace(), {"secrets": ["sh.helm.release.v1.circleci-server.v3"]}),
     "a Helm release record"),
    ("secret-name-garbage", lambda tmp_path: (namespace(), {"secrets": ["../../etc"]}), "not a Secret name"),
    ("namespace-empty", lambda tmp_path: (namespace(), {"namespace": ""}), "not a Kubernetes namespace name"),
    ("namespace-missing", lambda tmp_path: (FakeObjects({}, namespaces=()), {}), "does not exist"),
    ("namespace-garbage", lambda tmp_path: (namespace(), {"namespace": "Circle Server"}), "not a Kubernetes namespace name"),
    ("kind-pod", lambda tmp_path: (namespace(), {"kinds": ["Pod"]}), "kinds holds 'Pod'"),
    ("no-values-file", lambda tmp_path: (with_postgres_secret(namespace()), {}), "values_file is not set"),
    ("password-missing", lambda tmp_path: (with_postgres_secret(namespace()),
                                           {"values_file": values_file(tmp_path, "postgresql:\n  internal: true\n")}),
     "postgresql.auth.postgresPassword (missing from Secret postgresql key postgresql-password)"),
    ("password-empty", lambda tmp_path: (with_postgres_secret(namespace()),
                                         {"values_file": values_file(tmp_path, "postgresql:\n  auth:\n    postgresPassword: ''\n")}),
     "missing from Secret postgresql"),
    ("password-different", lambda tmp_path: (with_postgres_secret(namespace()), {
        "values_file": values_file(tmp_path, "postgresql:\n  auth:\n    postgresPassword: generated-not-the-cluster\n")}),
     "different from Secret postgresql"),
    ("values-file-bomb", lambda tmp_path: (with_postgres_secret(namespace()), {"values_file": _bomb_file(tmp_path)}),
     "expands to more than"),
    ("values-file-fifo", lambda tmp_path: (with_postgres_secret(namespace()), {"values_file": _fifo_file(tmp_path)}),
     "is a FIFO"),
    ("values-file-missing", lambda tmp_path: (with_postgres_secret(namespace()), {"values_file": str(tmp_path / "none")}),
     "does not exist"),
]


@pytest.mark.parametrize("setup, needle", [case[1:] for case in CLEANUP_CASES], ids=[case[0] for case in CLEANUP_CASES])
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_kots_cleanup_refuses_before_any_write(capsys, tmp_path, monkeypatch, setup, needle, check_mode):
    fake, extra = setup(tmp_path)
    monkeypatch.setattr(k8s_objects.ObjectClient, "from_params", classmethod(lambda cls, params: fake))
    args = dict({"namespace": NS, "postgresql_internal": True, "_ansible_check_mode": check_mode}, **extra)
    msg = refused(kots_cleanup, capsys, args)
    assert needle in msg
    assert fake.writes == []


def test_kots_cleanup_passes_when_the_values_carry_the_cluster_password(capsys, tmp_path, monkeypatch):
    fake = with_postgres_secret(namespace())
    monkeypatch.setattr(k8s_objects.ObjectClient, "from_params", classmethod(lambda cls, params: fake))
    carried = values_file(tmp_path, "postgresql:\n  auth:\n    postgresPassword: %s\n" % PG_PASSWORD)
    with patch_module_args({"namespace": NS, "postgresql_internal": True, "values_file": carried}):
        with pytest.raises(SystemExit) as exit_info:
            kots_cleanup.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert exit_info.value.code == 0, result
    assert result["passwords_checked"] == ["postgresql.auth.postgresPassword"] and "Secret/postgresql" in result["deleted"]
    assert PG_PASSWORD not in out


# ------------------------------------------------------------------------------------------------ helm_adopt
ADOPT_CASES = [
    ("selector-garbage", {"label_selector": "a b c"}, "not a Kubernetes label selector"),
    ("selector-shell", {"label_selector": "$(rm -rf /)"}, "not a Kubernetes label selector"),
    ("selector-unbalanced", {"label_selector": "app in (a,b"}, "not a Kubernetes label selector"),
    ("selector-double-equals-value", {"label_selector": "a=b=c"}, "not a Kubernetes label selector"),
    ("selector-huge", {"label_selector": "a=" + "b" * 5000}, "characters long"),
    ("namespace-empty", {"namespace": ""}, "not a Kubernetes namespace name"),
    ("namespace-missing", {"namespace": "no-such-namespace"}, "does not exist"),
    ("namespace-garbage", {"namespace": "../kube-system"}, "not a Kubernetes namespace name"),
    ("kind-pod", {"kinds": ["Pod"]}, "Kind Pod cannot be adopted"),
    ("kind-replicaset", {"kinds": ["Deployment", "ReplicaSet"]}, "Kind ReplicaSet cannot be adopted"),
    ("kind-namespace", {"kinds": ["Namespace"]}, "Kind Namespace cannot be adopted"),
    ("kind-garbage", {"kinds": ["not a kind"]}, "is not a Kubernetes kind"),
    ("kind-unknown", {"kinds": ["Widget"]}, "serves no kind Widget"),
    ("kinds-empty", {"kinds": []}, "kinds is empty"),
    ("release-empty", {"release": ""}, "not a Helm release name"),
    ("release-garbage", {"release": "Circle Server"}, "not a Helm release name"),
]


@pytest.mark.parametrize("extra, needle", [case[1:] for case in ADOPT_CASES], ids=[case[0] for case in ADOPT_CASES])
def test_helm_adopt_refuses_before_any_write(capsys, monkeypatch, extra, needle):
    fake = namespace()
    monkeypatch.setattr(k8s_objects.ObjectClient, "from_params", classmethod(lambda cls, params: fake))
    msg = refused(helm_adopt, capsys, dict({"namespace": NS}, **extra))
    assert needle in msg
    assert fake.writes == [] and not [read for read in fake.reads if read[0] == "list"]
