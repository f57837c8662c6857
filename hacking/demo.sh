#!/usr/bin/env bash
# `make demo`: the collection's main job, upgrade-4.3.yml, against the local lab.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. hacking/env.sh

if [[ ! -f playbooks/upgrade-4.3.yml || ! -f tests/lab/__main__.py ]]; then
  echo "make demo: not available yet. It runs playbooks/upgrade-4.3.yml against the local lab" >&2
  echo "(tests/lab); one or both do not exist in this checkout." >&2
  exit 1
fi
exec hacking/demo-run.sh
