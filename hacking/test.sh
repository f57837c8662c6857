#!/usr/bin/env bash
# Runs the test stages named on the command line (default: all), prints one summary line per stage,
# and exits non-zero when any stage failed. Each stage's output goes to the terminal as it runs.
#   sanity       ansible-test sanity (no ignore file)
#   units        ansible-test units
#   lint         ansible-lint, production profile
#   integration  pytest tests/integration (the lab, driven with the real clients)
#   molecule     every molecule scenario (converge, idempotence, verify)
# When integration runs with other stages, it runs beside them (two lanes: integration, and the others in order): the
# machine has two cores and integration leaves a fifth of them idle (lab-time waits, its last file), which the other
# stages fill. The others' output streams; integration's goes to .cache/test-logs/integration.log, printed (then
# followed) once the others are done. TEST_LANES=1 runs every stage one after the other.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. hacking/env.sh

ALL_STAGES=(sanity units lint integration molecule)
stages=("$@")
[[ ${#stages[@]} -gt 0 ]] || stages=("${ALL_STAGES[@]}")

# ansible-test needs the collection at .../ansible_collections/circleci/server and resolves symlinks,
# so it runs on a copy of the tracked and untracked-but-not-ignored files, beside the dependencies.
# The copy lives outside this checkout (inside it, ansible-test would list files with git and find none),
# in the temp dir, not in $HOME. ANSIBLE_TEST_TREE chooses another place (one per concurrent run).
ANSIBLE_TEST_TREE=${ANSIBLE_TEST_TREE:-${TMPDIR:-/tmp}/circleci.server-ansible-test-$(id -u)}
ansible_test_tree() {
  local tree=$ANSIBLE_TEST_TREE/ansible_collections
  rm -rf "$tree/circleci/server"
  mkdir -p "$tree/circleci/server"
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$tree/circleci/server"
  local dep
  for dep in kubernetes/core amazon/aws community/aws google/cloud community/general; do
    mkdir -p "$tree/${dep%/*}"
    ln -sfn "$root/.cache/collections/ansible_collections/$dep" "$tree/$dep"
  done
  echo "$tree/circleci/server"
}

# ansible-test keeps its venvs in ~/.ansible/test and drops ANSIBLE_HOME from the environment of what it runs (the
# unit tests' in-process modules then make ~/.ansible/tmp): its HOME is the checkout's .cache/ansible-test-home, where
# hacking/setup.sh put the offline get-pip it builds its venvs with.
ansible_test() {
  local tree=$1; shift
  (cd "$tree" && HOME=$root/.cache/ansible-test-home env -u ANSIBLE_COLLECTIONS_PATH ansible-test "$@" --local --python 3.11 --color no)
}

stage_sanity() {
  local tree; tree=$(ansible_test_tree)
  ansible_test "$tree" sanity
}

stage_units() {
  local tree; tree=$(ansible_test_tree)
  ansible_test "$tree" units
}

stage_lint() {
  ansible-lint --profile production --nocolor
}

stage_integration() {
  [[ -d tests/integration ]] || { echo "no tests/integration"; return 1; }
  # INTEGRATION_WORKERS workers (default 2, one per core); whole files stay on one worker so that module-scoped labs
  # are shared, handed out in collection order, which tests/integration/conftest.py (LONGEST_FIRST) starts with the
  # longest files.
  python -m pytest -p no:cacheprovider -n "${INTEGRATION_WORKERS:-2}" --dist loadfile --no-loadscope-reorder --durations=15 \
    tests/integration
  local rc=$?
  # pytest exit 5 = nothing collected; an empty suite must not pass silently.
  [[ $rc -eq 5 ]] && echo "tests/integration collected no test" && return 1
  return $rc
}

stage_molecule() {
  local scenarios
  scenarios=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | sort)
  [[ -n $scenarios ]] || { echo "no molecule scenario"; return 1; }
  local rc=0
  # molecule keeps "prepared" in its ephemeral state across runs; with an unmanaged driver nothing resets
  # it, and a second `make test` would skip bringing the lab up.
  molecule reset --all >/dev/null 2>&1 || true
  molecule test --all || rc=$?
  # A scenario that failed before its cleanup leaves its lab running: take every one down.
  local state_dir
  for state_dir in .cache/molecule-lab/*/; do
    [[ -f $state_dir/lab.json ]] && python -m tests.lab down --state-dir "$state_dir"
  done
  return $rc
}

# Tests run the checkout and leave the user's home alone: no circleci.server in ~/.ansible/collections, no ansible
# temp, test or SSH control folders, no kubectl or helm cache or config.
home_paths=("$HOME/.ansible/collections/ansible_collections/circleci/server" "$HOME/.ansible/tmp" "$HOME/.ansible/test"
            "$HOME/.ansible/cp" "$HOME/.kube/cache" "$HOME/.cache/helm" "$HOME/.config/helm" "$HOME/.local/share/helm")
home_state() { find "${home_paths[@]}" -maxdepth 0 -printf '%p %T@\n' 2>/dev/null; }
home_before=$(home_state)
# The machine's speed before and after (hacking/calibrate.py): the same commit's times vary with it.
calibration_before=$(python hacking/calibrate.py 2>/dev/null || echo "?")

declare -a summary
failed=0
for stage in "${stages[@]}"; do
  if ! declare -F "stage_$stage" >/dev/null; then
    echo "unknown stage '$stage': choose from ${ALL_STAGES[*]}" >&2
    exit 2
  fi
done

run_stage() {  # stage: runs it, adds its summary line
  local stage=$1 start=$SECONDS result
  echo "===== $stage ====="
  if "stage_$stage"; then result=PASS; else result=FAIL; failed=1; fi
  summary+=("$(printf '%-12s %s  (%ds)' "$stage" "$result" $((SECONDS - start)))")
}

beside=()
if [[ ${TEST_LANES:-2} != 1 && ${#stages[@]} -gt 1 && " ${stages[*]} " == *" integration "* ]]; then
  logs=$root/.cache/test-logs
  mkdir -p "$logs"
  echo "===== integration: started beside the other stages, its output after theirs ($logs/integration.log) ====="
  integration_start=$SECONDS
  ( stage_integration >"$logs/integration.log" 2>&1; echo $? >"$logs/integration.rc" ) &
  integration_pid=$!
  for stage in "${stages[@]}"; do [[ $stage == integration ]] || beside+=("$stage"); done
  for stage in "${beside[@]}"; do run_stage "$stage"; done
  echo "===== integration (its output so far, then as it runs) ====="
  tail -n +1 -f --pid="$integration_pid" "$logs/integration.log"
  wait "$integration_pid"
  if [[ $(cat "$logs/integration.rc" 2>/dev/null) == 0 ]]; then result=PASS; else result=FAIL; failed=1; fi
  summary+=("$(printf '%-12s %s  (%ds, beside the others)' integration "$result" $((SECONDS - integration_start)))")
else
  for stage in "${stages[@]}"; do run_stage "$stage"; done
fi

home_after=$(home_state)
summary+=("$(printf 'machine      %s s before, %s s after for hacking/calibrate.py (its fixed workload; lower is faster)' \
  "$calibration_before" "$(python hacking/calibrate.py 2>/dev/null || echo "?")")")
if [[ $home_after != "$home_before" ]]; then
  summary+=("home         FAIL  (this run wrote in: $(diff <(echo "$home_before") <(echo "$home_after") | sed -n 's/^> \([^ ]*\) .*/\1/p' | tr '\n' ' '))")
  failed=1
else
  summary+=("home         PASS  (nothing written to ~/.ansible/{collections,tmp,test,cp}, ~/.kube/cache, helm's homes)")
fi

echo "===== summary ====="
printf '%s\n' "${summary[@]}"
exit $failed
