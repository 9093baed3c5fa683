"""Where each ``$(VAR)`` of command mode's benchmark code stands for the shell; its value quoted there.

``domain.bootstrap`` runs ``benchmark_code`` under ``sh -c`` after Kubernetes' ``$(VAR)`` expansion
(``domain.expansion``), which substitutes values with no shell. For the shell to read each value as
that text and never as code, the value is quoted for where its reference stands. :func:`shell_expansion`
scans the code once: for each defined ``$(NAME)``, by the reference's index, one of ``unquoted``,
``single`` or ``double`` (quotes), ``here-document`` or ``quoted here-document`` (a ``<<EOF`` or
``<<'EOF'`` body), or ``unsure``; and what at the end of the code would take in words appended to it
(a here-document, a comment, a backslash, an unclosed quote, an operator), or ``None``.
:func:`_shell_renderer` turns that into the renderer ``domain.expansion.expand`` calls, and the
command is expanded with it, word by word as Kubernetes does (the scan also finds the words:
``shlex.split`` ends one at each unquoted blank). The quoting
rules are POSIX ``sh``'s (Shell Command Language, 2.2 Quoting, 2.7.4 Here-Document); a reference in a
comment, a here-document whose end is unsure, backquotes, or after a command substitution or a
parameter expansion the scanner does not follow is ``unsure``, where only a value with no shell syntax
(:data:`_PLAIN`) is put as it is and any other raises
:class:`~sagemaker_executor.domain.errors.DescriptorError`. Pure: builds text.
"""

from __future__ import annotations

import bisect
import re
import shlex
from collections.abc import Callable, Mapping

from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.expansion import expand

# A value the shell reads as the same text wherever it is put (no quoting, globbing, splitting).
_PLAIN = re.compile(r"[A-Za-z0-9_./:=,+@%-]*")
_UNQUOTED, _SINGLE, _DOUBLE, _UNSURE = "unquoted", "single", "double", "unsure"
_HEREDOC, _HEREDOC_LITERAL = "here-document", "quoted here-document"  # "<<EOF" and "<<'EOF'" bodies
# A here-document's delimiter word as the scanner takes it: no blanks, operators, "$" or "`" in it.
# Command substitutions and parameter expansions whose end is plain to see: nothing nested or quoted.
_SIMPLE_SUBSTITUTION = re.compile(r"\$\([^()'\"`$\\#]*\)|`[^'\"`$\\#]*`|\$\{[^{}'\"`$\\]*\}")
_HEREDOC_WORD = re.compile(r"[^\s;&|<>()$`]+")


def _heredoc_word(code: str, start: int) -> tuple[str, bool, bool, int] | None:
    """After ``<<`` at ``start``: the delimiter, whether quoted, whether ``<<-``, and where the word
    ends; ``None`` for a word the scanner does not follow (it then treats the rest as unsure)."""
    strip = code.startswith("-", start)
    position = start + strip
    while position < len(code) and code[position] in " \t":
        position += 1
    match = _HEREDOC_WORD.match(code, position)
    if match is None or match.group().count("'") % 2 or match.group().count('"') % 2:
        return None
    word = match.group()
    delimiter = word.replace("'", "").replace('"', "").replace("\\", "")
    return delimiter, delimiter != word, strip, match.end()


def _heredoc_bodies(
    code: str,
    start: int,
    heredocs: list[tuple[str, bool, bool]],
    variables: Mapping[str, str],
    contexts: dict[int, str],
    unsure: bool,
    blanks: list[int],
) -> int:
    """Records the references in the bodies of ``heredocs`` from ``start``, and their blanks (word ends
    for ``shlex.split``, which knows no here-documents) in ``blanks``; where the bodies end."""
    position = start
    for delimiter, quoted, strip in heredocs:
        body_unsure = unsure
        while position < len(code):
            end = code.find("\n", position)
            end = len(code) if end < 0 else end
            line = code[position:end]
            blanks.extend(position + i for i, char in enumerate(line) if char in " \t")
            if end < len(code):
                blanks.append(end)
            if (line.lstrip("\t") if strip else line) == delimiter:
                position = end + 1
                break
            index = position
            while index < end:
                if code.startswith("$$", index):
                    body_unsure = body_unsure or (not quoted and code.startswith("(", index + 2))
                    index += 2
                    continue
                if code.startswith("$(", index):
                    closer = code.find(")", index + 2)
                    name = code[index + 2 : closer] if closer >= 0 else ""
                    if name in variables:
                        value = variables[name]
                        ends_early = "\n" in value and delimiter in value  # a line of it may end the body
                        kind = _HEREDOC_LITERAL if quoted else _HEREDOC
                        contexts[index] = _UNSURE if body_unsure or ends_early else kind
                        index = closer + 1
                        continue
                    body_unsure = body_unsure or not quoted
                elif code[index] == "`" and not quoted:
                    body_unsure = True
                elif code[index] == "\\" and not quoted:
                    index += 1
                index += 1
            position = end + 1
    return min(position, len(code))


class _QuotingScanner:
    """The walk over ``code``, one character (or construct) per step: :attr:`contexts`, the quoting at
    each defined ``$(NAME)`` by the reference's index (from a comment, a here-document, backquotes, a
    command substitution or a parameter expansion on it :data:`_UNSURE`: to the end of the line for a
    comment, to the end of the code otherwise); :attr:`ending`, what at the end of ``code`` would take
    in words appended to it (``None``: nothing); :attr:`blanks`, the word ends."""

    def __init__(self, code: str, variables: Mapping[str, str]) -> None:
        self.code = code
        self.variables = variables
        self.contexts: dict[int, str] = {}
        self.state = _UNQUOTED
        self.sticky = False
        self.ending: str | None = None
        self.heredocs: list[tuple[str, bool, bool]] = []  # opened on this line, bodies start at its end
        self.blanks: list[int] = []  # unquoted blanks, in order: where shlex.split ends a word
        self.index = 0

    def scan(self) -> None:
        while self.index < len(self.code):
            self.index = self._step(self.code[self.index])
        self._finish()

    def _step(self, char: str) -> int:
        """Reads the construct at ``self.index`` (first character ``char``); where the next one starts."""
        code, index = self.code, self.index
        following = code[index + 1] if index + 1 < len(code) else ""
        if self.state == _UNQUOTED and char in " \t\n":
            self.blanks.append(index)
        if char == "$" and following in ("(", "$"):
            return self._dollar(following)
        if self.state == _SINGLE:
            if char == "'":
                self.state = _UNQUOTED
        elif char == "\\":
            return index + 2
        elif char == "`" or (char == "$" and following == "{"):
            simple = _SIMPLE_SUBSTITUTION.match(code, index)
            if simple is not None:  # "`date`", "${HOME}", "${N:-1}": they end where they seem to
                return simple.end()
            self.sticky = True
        elif self.state == _DOUBLE:
            if char == '"':
                self.state = _UNQUOTED
        elif char in "'\"":
            self.state = _SINGLE if char == "'" else _DOUBLE
        elif char == "<" and following == "<":
            return self._heredoc_start()
        elif char == "\n" and self.heredocs:
            next_index = _heredoc_bodies(
                code, index + 1, self.heredocs, self.variables, self.contexts, self.sticky, self.blanks
            )
            self.heredocs = []
            return next_index
        elif char == "#" and (index == 0 or code[index - 1] in " \t\n;&|()"):
            return self._comment()
        return index + 1

    def _dollar(self, following: str) -> int:
        """``$(`` (a reference, or a command substitution) or ``$$`` (Kubernetes' escape)."""
        code, index = self.code, self.index
        if following == "$":
            # Kubernetes' escape: the shell reads one "$"; "$$(" becomes a command substitution
            self.sticky = self.sticky or (self.state != _SINGLE and code.startswith("(", index + 2))
            return index + 2
        closer = code.find(")", index + 2)
        if closer >= 0 and code[index + 2 : closer] in self.variables:
            self.contexts[index] = _UNSURE if self.sticky else self.state
            return closer + 1
        simple = _SIMPLE_SUBSTITUTION.match(code, index)
        if simple is not None and self.state != _SINGLE:  # "$(date)": its end is the first ")"
            return simple.end()
        self.sticky = self.sticky or self.state != _SINGLE  # a command substitution: its own quoting
        return index + 1

    def _heredoc_start(self) -> int:
        self.ending = "a here-document"
        word = _heredoc_word(self.code, self.index + 2)
        if word is None:
            self.sticky = True
            return self.index + 1
        self.heredocs.append(word[:3])
        return word[3]

    def _comment(self) -> int:
        code, index = self.code, self.index
        end = code.find("\n", index)
        end = len(code) if end < 0 else end
        for position in range(index, end):
            if code.startswith("$(", position):
                self.contexts[position] = _UNSURE
        if end == len(code):
            self.ending = self.ending or "a comment"
        return end

    def _finish(self) -> None:
        if self.index > len(self.code):
            self.ending = self.ending or "a backslash"
        elif self.state != _UNQUOTED:
            self.ending = self.ending or "an unclosed quote"
        else:
            # "run;" or "run &": appended, the arguments would be a command of their own.
            last = re.search(r"(\\*)([;&|])[ \t\n]*\Z", self.code)
            if last is not None and len(last.group(1)) % 2 == 0:
                self.ending = self.ending or f"an operator ({last.group(2)!r})"


def shell_expansion(code: str, variables: Mapping[str, str]) -> tuple[str, str | None]:
    """``code`` with its ``$(NAME)`` references expanded as Kubernetes expands a command's words, each
    value quoted where it stands (:func:`_shell_renderer`), and what at the end of ``code`` would take in
    words appended to it (``None``: nothing). Raises :class:`DescriptorError` as the renderer does."""
    scanner = _QuotingScanner(code, variables)
    scanner.scan()
    blanks = scanner.blanks

    def word_end(index: int) -> int:
        after = bisect.bisect_right(blanks, index)
        return blanks[after] if after < len(blanks) else len(code)

    return expand(code, variables, _shell_renderer(scanner.contexts), word_end), scanner.ending


def _shell_renderer(contexts: Mapping[int, str]) -> Callable[[str, str, int], str]:
    """How each ``$(NAME)`` of a code whose quoting the scan found (``contexts``) becomes shell
    text: its value, quoted where it is, so that the shell reads exactly the value, as the command gets
    it on Kubernetes (which expands with no shell)."""

    def render(name: str, value: str, index: int) -> str:
        context = contexts.get(index, _UNSURE)
        if context == _UNQUOTED:
            return shlex.quote(value)
        if context == _SINGLE:
            return value.replace("'", "'\"'\"'")
        if context == _DOUBLE:
            return re.sub(r'([\\$`"])', r"\\\1", value)
        if context == _HEREDOC:
            return re.sub(r"([\\$`])", r"\\\1", value)
        if context == _HEREDOC_LITERAL:
            return value
        if _PLAIN.fullmatch(value):
            return value
        raise DescriptorError(
            "ml.benchmark_code",
            f"$({name}) is in a comment, a here-document, backquotes or a command substitution, where "
            f"its value (env.vars.{name}: {value!r}) cannot be put for a shell to read it as written: "
            f'use "${name}" there (the variable is in the benchmark\'s environment)',
        )

    return render
