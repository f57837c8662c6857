# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A command with a time limit: ``AnsibleModule.run_command`` has none, and helm against an API server that
accepts connections and never answers waits forever.

``run(argv, timeout)`` returns ``(rc, stdout, stderr)`` as text, or raises ``CommandTimeout`` after killing the
command's whole process group. Plain Python with no Ansible import.
"""

from __future__ import annotations

import os
import signal
import subprocess


class CommandTimeout(Exception):
    """A command that did not finish within its time limit (and was killed)."""


def run(argv, timeout, stdin=None, env=None):
    """Run ``argv`` (a list, no shell) with ``stdin`` text; kill it and raise ``CommandTimeout`` after ``timeout`` s."""
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        start_new_session=True, text=True, errors="replace")
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.communicate()
        raise CommandTimeout("%s did not finish within %g s" % (os.path.basename(argv[0]), timeout)) from None
    return process.returncode, out, err
