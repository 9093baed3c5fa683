"""What an environment variable name is: the one rule for every place that checks or writes one.

``domain.descriptor`` refuses an ``env.vars`` name that breaks it; ``domain.entrypoint`` writes only
names that keep it into the ``export`` lines of the script-mode entry script, and ``domain.bootstrap``
exports ``SM_CHANNEL_<NAME>`` only for channels whose variable name keeps it. Pure.
"""

from __future__ import annotations

import re
from typing import Final

NAME_RULE: Final = "letters, digits and '_', not starting with a digit"
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_environment_variable_name(name: str) -> bool:
    """True when a POSIX shell can ``export`` ``name``: :data:`NAME_RULE`."""
    # fullmatch, not "^...$": "$" would accept a trailing newline.
    return _NAME.fullmatch(name) is not None
