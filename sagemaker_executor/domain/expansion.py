"""Kubernetes' ``$(VAR)`` expansion of a container's command and arguments, as one pure function.

Command mode (``domain.bootstrap``) runs ``ml.benchmark_code`` as Anubis's Kubernetes executor does,
and there Kubernetes expands ``$(VAR)`` references in the container's ``command`` and ``args`` from
the container's environment before anything runs (``/work/shared/anubis/KUBERNETES-EXECUTOR.md``, row
"``ml.benchmark_code``, strategy ``single_node``"). Anubis's own sample
``hello-world/descriptor-script-mode.toml`` relies on it:
``benchmark_code = "$(BAI_SCRIPTS_PATH)/src/entrypoint.sh"``. A shell would read that as command
substitution, so the translation expands it first, with :func:`expand`.

The rules are Kubernetes' own (``third_party/forked/golang/expansion/expand.go``, ``Expand`` and
``MappingFuncFor``; API reference, ``Container.command``: "Variable references $(VAR_NAME) are expanded
using the container's environment. If a variable cannot be resolved, the reference in the input string
will be unchanged. Double $$ are reduced to a single $, which allows for escaping the $(VAR_NAME)
syntax: i.e. "$$(VAR_NAME)" will produce the string literal "$(VAR_NAME)". Escaped references will
never be expanded, regardless of whether the variable exists or not."):

* ``$(NAME)`` with ``NAME`` defined: its value; the name is everything up to the first ``)``;
* ``$(NAME)`` with ``NAME`` not defined (``$()`` included): left as written;
* ``$$``: one ``$`` (so ``$$(NAME)`` is the literal ``$(NAME)``, and ``$$$(A)`` is ``$`` + A's value);
* ``$(`` with no closing ``)``, ``$`` before any other character, and a ``$`` at the end: as written.

Kubernetes expands each word of the command on its own (Anubis's executor makes the words with
``shlex.split``), so a reference never reaches past its word: ``'$(' $(X)`` is the word ``$(``, as
written, and then X's value. :func:`expand` reads one text; ``word_end`` tells it where the word
holding an index ends, for a text that is a whole command line (``domain.quoting`` knows the words).

A value is inserted as text and never expanded again. Called by ``domain.translation``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

_OPERATOR = "$"
_OPENER = "("
_CLOSER = ")"


def expand(
    text: str,
    variables: Mapping[str, str],
    render: Callable[[str, str, int], str] | None = None,
    word_end: Callable[[int], int] | None = None,
) -> str:
    """``text`` with its ``$(NAME)`` references expanded from ``variables``, as Kubernetes does.

    ``render(name, value, index)``, when given, is what replaces the reference at ``text[index]`` to a
    defined ``name`` (``domain.quoting`` quotes the value for the shell that reads the result).
    ``word_end(index)``, when given, is where the word holding ``text[index]`` ends: a ``)`` past it
    does not close the reference (without it, ``text`` is one word).
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == _OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            if following == _OPERATOR:  # "$$": an escaped operator
                out.append(_OPERATOR)
                cursor += 1
            elif following == _OPENER:
                closer = text.find(_CLOSER, cursor + 2, len(text) if word_end is None else word_end(cursor))
                if closer < 0:  # an incomplete reference stays as written
                    out.append(_OPERATOR + _OPENER)
                    cursor += 1
                else:
                    name = text[cursor + 2 : closer]
                    value = variables.get(name)
                    if value is None:
                        out.append(f"$({name})")
                    else:
                        out.append(value if render is None else render(name, value, cursor))
                    cursor = closer
            else:  # an operator that begins no expression
                out.append(_OPERATOR + following)
                cursor += 1
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)
