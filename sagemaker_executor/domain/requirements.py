"""What one extra pip requirement line (``custom_params.requirements[i]``) may be: the one rule.

``domain.sections`` applies it when the descriptor is parsed, the only time it is checked; the
source dir builder (``adapters.sourcedir``) later writes the lines into ``requirements.txt`` as they
are. Each line is one requirement specifier: it starts with a letter or digit (a project name or a
URL), holds no control character or line break (which would start another line), no pip option
(a token starting with ``-``: ``-r``, ``--index-url``, ``-e``...) and no trailing ``\\`` (a pip line
continuation). Pure.
"""

from __future__ import annotations

import unicodedata
from typing import Final

REQUIREMENTS_FIELD: Final = "custom_params.requirements"
# What str.splitlines() splits on beyond the control characters: a line break for pip too.
_LINE_SEPARATORS: Final = frozenset("\u2028\u2029")


def requirement_line_problem(line: str) -> str | None:
    """Why ``line`` cannot be one requirement specifier line, or None when it can."""
    if not line[:1].isascii() or not line[:1].isalnum():
        return "must start with a letter or digit (a project name or URL)"
    if any(unicodedata.category(c) == "Cc" or c in _LINE_SEPARATORS for c in line):
        return "must be a single line without control characters"
    if any(token.startswith("-") for token in line.split()):
        return "must not contain pip options (tokens starting with '-')"
    if line.rstrip().endswith("\\"):
        return "must not end with '\\' (a pip line continuation)"
    return None
