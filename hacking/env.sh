# Sourced by the Makefile's recipes and by hand (`. hacking/env.sh`): the environment in which the
# collection, its tests and the lab run.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CIRCLECI_SERVER_ROOT=$_root
export PATH=$_root/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$_root/.cache/collections
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
# Ansible's, molecule's and ansible-lint's own state (local tmp, molecule's ephemeral directories, galaxy
# cache) in the checkout's ignored .cache/, not in ~/.ansible.
export ANSIBLE_HOME=${CIRCLECI_SERVER_ANSIBLE_HOME:-$_root/.cache/ansible-home}
# The "remote" temp dir of local and lab connections: its default, ~/.ansible/tmp, ignores ANSIBLE_HOME. A host
# reached over SSH (the services box) names its own ansible_remote_tmp.
export ANSIBLE_REMOTE_TMP=$ANSIBLE_HOME/tmp-remote
# kubectl's discovery/http cache and helm's cache, config and data: also in .cache/, not in ~/.kube and ~/.cache.
# A test that needs a clean helm config sets its own.
export KUBECACHEDIR=$_root/.cache/kube-cache
export HELM_CACHE_HOME=$_root/.cache/helm/cache HELM_CONFIG_HOME=$_root/.cache/helm/config HELM_DATA_HOME=$_root/.cache/helm/data
# Interpreter discovery on these machines can find a broken pyenv shim; name the venv's python.
export ANSIBLE_PYTHON_INTERPRETER=$_root/.venv/bin/python
export ANSIBLE_LOCALHOST_WARNING=false
export ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-1}
export PYTHONDONTWRITEBYTECODE=1
# Every Ansible task is a new Python that compiles its module_utils from the AnsiballZ zip, twice: a fifth of a
# playbook's CPU here. hacking/python_startup/ caches that bytecode by source hash (its docstring says how).
export CIRCLECI_ZIPIMPORT_CACHE=$_root/.cache/zipimport-bytecode
# And the controller parses every module and module_util it sends into an AST to list its imports, in every run:
# hacking/python_startup/ansiballz_scan_cache.py keeps that list by source hash.
export CIRCLECI_ANSIBALLZ_SCAN_CACHE=$_root/.cache/ansiballz-scan
export PYTHONPATH=$_root/hacking/python_startup${PYTHONPATH:+:$PYTHONPATH}
unset _root
