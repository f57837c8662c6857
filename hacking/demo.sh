#!/usr/bin/env bash
# `make demo`: the collection's main job, upgrade-4.3.yml, against the lab's aws-4.2 scenario:
# the plan (--check --diff), the upgrade, then a re-run that must change nothing. Prints each wall time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. hacking/env.sh

scenario=${DEMO_SCENARIO:-aws-4.2}
state_dir=$root/.cache/lab-demo
trap 'python -m tests.lab down --state-dir "$state_dir" >/dev/null 2>&1 || true' EXIT

python -m tests.lab down --state-dir "$state_dir" >/dev/null 2>&1 || true
echo "== bringing up the lab ($scenario)"
python -m tests.lab up "$scenario" --state-dir "$state_dir" >/dev/null
if [[ -f $state_dir/aws.env ]]; then
  set -a; . "$state_dir/aws.env"; set +a
fi

run_playbook() {
  local label=$1; shift
  local start=$SECONDS
  echo "== $label: ansible-playbook playbooks/upgrade-4.3.yml $*"
  if ! ansible-playbook -i "$state_dir/inventory.yml" playbooks/upgrade-4.3.yml "$@" > "$state_dir/$label.log" 2>&1; then
    tail -30 "$state_dir/$label.log" >&2
    echo "make demo: $label failed; the whole log is $state_dir/$label.log" >&2
    exit 1
  fi
  grep -E -A1 '^TASK' "$state_dir/$label.log" | grep -B1 -E '^changed:' | grep '^TASK' || true
  grep -A1 'PLAY RECAP' "$state_dir/$label.log" | tail -1
  timings+=("$(printf '%-8s %4ds' "$label" $((SECONDS - start)))")
}

declare -a timings
run_playbook plan --check --diff
echo "== writes during the plan (the lab's request log): $(python -c "import json,sys; from tests.lab.admin import LabClient; print(len(LabClient(json.load(open(sys.argv[1]))['endpoints']['admin']).requests()))" "$state_dir/lab.json")"
run_playbook upgrade --diff
run_playbook rerun

echo "== summary of the upgrade"
sed -n '/Show the summary/,/PLAY RECAP/p' "$state_dir/upgrade.log" | head -40
echo "== wall times"
printf '%s\n' "${timings[@]}"
