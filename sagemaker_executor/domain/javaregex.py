"""Java's regular expressions, as SageMaker's model writes its patterns, for the ``regex`` package.

botocore's SageMaker model (``domain.constraints``) states each ``pattern`` as a Java regular
expression (``java.util.regex.Pattern``) that must match the *whole* value (Java's ``matches()``).
:func:`java_regex` compiles one for ``regex`` (which reads ``\\p{L}`` classes; ``re`` does not), to be
used with ``fullmatch``, so ``$`` never accepts a trailing newline, with Java's meaning of ``.`` (no
line terminator: ``\\n``, ``\\r``, U+0085, U+2028, U+2029), of ``\\d``, ``\\w``, ``\\s`` and the POSIX
``\\p{Alnum}`` classes (ASCII only, as without ``UNICODE_CHARACTER_CLASS``), and of surrogate-pair
escapes; it raises ``regex.error`` for a pattern it cannot read. :func:`refused_characters` names the
characters of a value that a pattern allows nowhere, for a user's message (``domain.violation``).
Pure; compiled patterns are cached.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import regex

# Java's line terminators, which its "." does not match (java.util.regex.Pattern, without DOTALL).
_JAVA_DOT: Final = "[^\\n\\r\\u0085\\u2028\\u2029]"
_JAVA_CLASSES: Final = {  # Java's shorthand classes are ASCII-only unless UNICODE_CHARACTER_CLASS
    "d": "0-9",
    "w": "a-zA-Z_0-9",
    "s": " \\t\\n\\x0B\\f\\r",
}
_JAVA_POSIX: Final = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}


def java_regex(pattern: str) -> Any:
    """``pattern`` (Java's ``java.util.regex`` syntax) compiled for the ``regex`` package, to be used with
    ``fullmatch``. Raises ``regex.error`` for a pattern it cannot read."""
    return _compiled(pattern)


@functools.cache
def _compiled(pattern: str) -> Any:
    return regex.compile(_translate(pattern), regex.V1)


def _translate(pattern: str) -> str:
    """Java -> ``regex`` (V1, whose nested sets mean what Java's ``[a[b]]`` means)."""
    out: list[str] = []
    depth = 0  # inside how many character classes
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped, i = _escape(pattern, i, depth > 0)
            out.append(escaped)
            continue
        if char == "[":
            depth += 1
            out.append(char)  # a "^" after it is copied as any other character
        elif char == "]" and depth:
            depth -= 1
            out.append(char)
        elif char == "." and not depth:
            out.append(_JAVA_DOT)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """One escape sequence at ``pattern[i]`` (a backslash); returns its translation and where it ends."""
    code = pattern[i + 1]
    if code in "dws":
        body = _JAVA_CLASSES[code]
        return (body if in_class else f"[{body}]"), i + 2
    if code in "DWS":
        return f"[^{_JAVA_CLASSES[code.lower()]}]", i + 2
    if code in "pP" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 2)
        if end < 0:
            raise regex.error("missing } of \\p{...}", pattern, i)
        name = pattern[i + 3 : end]
        posix = _JAVA_POSIX.get(name)  # \p{IsAlnum} is Unicode's Alnum in Java, not POSIX's: as it is
        if posix is None:
            return pattern[i : end + 1], end + 1
        if code == "P":
            return f"[^{posix}]", end + 1
        return (posix if in_class else f"[{posix}]"), end + 1
    if code == "u" and regex.fullmatch(r"[dD][89abAB][0-9a-fA-F]{2}", pattern[i + 2 : i + 6] or ""):
        low = pattern[i + 6 : i + 12]
        if regex.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", low):
            point = 0x10000 + ((int(pattern[i + 2 : i + 6], 16) - 0xD800) << 10) + int(low[2:], 16) - 0xDC00
            return f"\\U{point:08X}", i + 12
    return pattern[i : i + 2], i + 2


def refused_characters(pattern: str, value: Any) -> list[str]:
    """The characters of ``value`` that the pattern allows nowhere (none of its classes or literals
    matches them), in order and at most five: ``'_'`` in ``my_job`` for a job name."""
    if not isinstance(value, str):
        return []
    alphabet = _alphabet(pattern)
    if alphabet is None:
        return []
    refused: list[str] = []
    for char in value:
        if char not in refused and not alphabet.fullmatch(char):
            refused.append(char)
    return refused[:5]


@functools.cache
def _alphabet(pattern: str) -> Any:
    """One character any of ``pattern``'s classes, escapes, ``.`` or literals matches; None if the
    pattern cannot be read that way."""
    atoms: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            depth, end = 0, i
            while end < len(pattern):
                if pattern[end] == "\\":
                    end += 2
                    continue
                depth += {"[": 1, "]": -1}.get(pattern[end], 0)
                end += 1
                if depth == 0:
                    break
            atoms.append(pattern[i:end])
            i = end
        elif char == "\\":
            end = pattern.index("}", i) + 1 if pattern.startswith(("p{", "P{"), i + 1) else i + 2
            atoms.append(pattern[i:end])
            i = end
        elif char == "{" and regex.match(r"\{\d*(,\d*)?\}", pattern[i:]):
            i = pattern.index("}", i) + 1
        elif char == "(" and pattern.startswith("?", i + 1):
            prefix = regex.match(r"[:=!]|<[=!]|", pattern[i + 2 :])
            assert prefix is not None  # the empty alternative always matches
            i += 2 + len(prefix[0])
        elif char in "()|*+?^$":
            i += 1
        else:
            atoms.append(regex.escape(char) if char != "." else ".")
            i += 1
    if not atoms:
        return None
    try:
        return java_regex("(?:" + "|".join(atoms) + ")")
    except regex.error:
        return None
