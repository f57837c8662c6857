"""Offline stand-in for get-pip.py, placed where ansible-test caches its download.

ansible-test builds its sanity venvs by running a downloaded get-pip.py; the host it downloads
from is not reachable here. This bootstraps pip from the standard library's bundled wheel instead,
then installs what ansible-test asked for through the machine's pip configuration.
"""
import ensurepip
import os
import subprocess
import sys


def main():
    ensurepip.bootstrap(upgrade=True)
    # ensurepip points PIP_CONFIG_FILE at os.devnull, which would hide the machine's pip config
    # (its index and CA settings) from the install below.
    os.environ.pop("PIP_CONFIG_FILE", None)
    # get-pip.py's own flags; pip install does not know them.
    args = [a for a in sys.argv[1:] if a not in ("--disable-pip-version-check", "--no-setuptools", "--no-wheel")]
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)


if __name__ == "__main__":
    main()
