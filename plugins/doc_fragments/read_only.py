# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The attributes of every module that only reads (the *_info modules and the checks).
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode returns the same result.
  diff_mode:
    support: none
    description: The module never changes anything, so there is nothing to show.
"""
