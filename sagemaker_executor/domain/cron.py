"""Standard 5-field cron expressions and macros, as ``info.scheduling`` may hold them.

``domain.descriptor`` validates ``info.scheduling`` with :func:`cron_problem`. Pure: no I/O, no clock.
Accepted: ``*``, numbers in each field's range, month and weekday names, lists, ranges that run
forwards, steps after ``*`` or a range (``*/1`` is fine), and the macros ``@yearly`` ... ``@hourly``.
Refused: ``?``, ``@reboot``, and anything else a scheduler might read differently.
"""

import re
from collections.abc import Mapping


class _CronProblem(ValueError):
    """One field item is wrong; the message says how."""


_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = {n: i for i, n in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {n: i for i, n in enumerate(_WEEKDAY_NAMES)}
_CRON_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),  # 0 and 7 are both Sunday
)
_CRON_TEXT = re.compile(r"[A-Za-z0-9*,/ \t-]+")
_CRON_NUMBER = re.compile(r"[0-9]{1,2}")


def _cron_value(token: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if _CRON_NUMBER.fullmatch(token):
        number = int(token)
    elif token.lower() in names:
        number = names[token.lower()]
    else:
        raise _CronProblem(f"{token!r} is not a number" + (" or a name" if names else ""))
    if not low <= number <= high:
        raise _CronProblem(f"{number} is outside {low}-{high}")
    return number


def _cron_item(item: str, low: int, high: int, names: Mapping[str, int]) -> None:
    base, slash, step = item.partition("/")
    if slash and not (_CRON_NUMBER.fullmatch(step) and 1 <= int(step) <= high - low + 1):
        raise _CronProblem(f"step {step!r} must be a number from 1 to {high - low + 1}")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    first = _cron_value(start, low, high, names)
    if dash:
        if first > _cron_value(end, low, high, names):
            raise _CronProblem(f"range {base!r} runs backwards")
    elif slash:
        raise _CronProblem(f"step in {item!r} needs '*' or a range before the '/'")


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a standard 5-field cron expression or macro; None when it is one."""
    if expression in _CRON_MACROS:
        return None
    if not _CRON_TEXT.fullmatch(expression):
        return "may contain only letters, digits, spaces and '*,/-'"
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        return (
            f"has {len(fields)} fields; a cron expression has 5 (minute hour day-of-month month "
            f"day-of-week), or use one of {', '.join(sorted(_CRON_MACROS))}"
        )
    for (name, low, high, names), text in zip(_CRON_FIELDS, fields, strict=True):
        for item in text.split(","):
            try:
                _cron_item(item, low, high, names)
            except _CronProblem as problem:
                return f"{name} field {text!r}: {problem}"
    return None
