"""Command mode's quoting where mutation testing found it unchecked: here-documents, comments, ``$$``.

Each case runs what :func:`command_text` makes of a ``benchmark_code`` under dash and busybox sh (the
``run`` of ``test_command_hostile``) and checks what the benchmark prints, or that the descriptor is
refused where the scanner cannot know how the shell will read a value. POSIX sh's rules (2.7.4
Here-Document): a body runs to the line that is exactly the delimiter (``<<-``: after its leading
tabs only); in a ``<<EOF`` body ``\\``, ``$`` and a backquote are special, in a ``<<'EOF'`` body nothing is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sagemaker_executor.domain.bootstrap import DataLink, command_text, render_bootstrap
from sagemaker_executor.domain.errors import DescriptorError
from tests.unit.test_command_hostile import PROBE, printed, run

pytestmark = pytest.mark.timeout(30)

# Shell syntax of every kind: quotes, a parameter, a command substitution, a backslash, a statement.
NASTY = 'it\'s "$HOME" `id` $(id) a\\b; echo INJECTED'
ENV = {"X": NASTY}


def refused(code: str, variables: dict[str, str] | None = None) -> None:
    """``code`` is refused, naming ``$(X)`` and its value: it cannot be put there for the shell."""
    with pytest.raises(DescriptorError, match=r"\$\(X\) is in a comment, a here-document.*env\.vars\.X"):
        command_text(code, None, variables or ENV)


# --- where a here-document's body ends ---


def test_a_dash_here_document_ends_at_its_delimiter_after_tabs_only() -> None:
    # "  EOF" (spaces) and "\tXEOF" are body lines; "\tEOF" ends it; the last line is a command again.
    code = f"cat <<-EOF\n  EOF\n\tXEOF\n\t[$(X)]\n\tEOF\n{PROBE} $(X)"
    assert run(command_text(code, None, ENV)) == f"  EOF\nXEOF\n[{NASTY}]\n" + printed(NASTY)


def test_a_plain_here_document_is_not_ended_by_its_delimiter_after_a_tab() -> None:
    code = f"cat <<EOF\n\tEOF\n[$(X)]\nEOF\n{PROBE} $(X)"
    assert run(command_text(code, None, ENV)) == f"\tEOF\n[{NASTY}]\n" + printed(NASTY)


def test_two_here_documents_on_a_line_take_their_bodies_in_turn() -> None:
    # The second delimiter is the first's last letter: its body starts after the first's end line.
    code = "cat <<XA; cat <<A\nx\nXA\n[$(X)]\nA"
    assert run(command_text(code, None, ENV)) == f"x\n[{NASTY}]\n"


def test_the_code_after_a_here_document_is_read_from_its_first_character() -> None:
    code = 'cat <<EOF\nx\n$(X)\nEOF\n"printf" \'[%s]\\n\' "$(X)"'
    assert run(command_text(code, None, ENV)) == f"x\n{NASTY}\n" + printed(NASTY)


def test_a_here_document_without_its_end_line_runs_to_the_end_of_the_code() -> None:
    # Both shells end the body with the code, with no line end of its own.
    assert run(command_text("cat <<EOF\n[$(X)]", None, ENV)) == f"[{NASTY}]"


def test_a_value_with_the_delimiter_but_no_line_of_it_stays_in_the_body() -> None:
    value = "EOF; $HOME EOF"
    assert run(command_text("cat <<EOF\n[$(X)]\nEOF", None, {"X": value})) == f"[{value}]\n"


# --- references in a body ---


def test_every_reference_of_a_body_line_is_its_value() -> None:
    # At even and odd offsets, next to each other, after a parenthesis.
    code = "cat <<EOF\n$(X) a$(X) ab$(X) [$(X)$(X)] (a)$(X)\nEOF"
    line = f"{NASTY} a{NASTY} ab{NASTY} [{NASTY}{NASTY}] (a){NASTY}\n"
    assert run(command_text(code, None, ENV)) == line
    assert run(command_text(code.replace("<<EOF", "<<'EOF'"), None, ENV)) == line


def test_kubernetes_escapes_in_bodies_are_one_dollar() -> None:
    # "$$" is Kubernetes' escape: the shell reads one "$" (in a <<EOF body, then a parameter).
    quoted = "cat <<'EOF'\n$$(X) $$$(X) [$(X)]\nEOF"
    assert run(command_text(quoted, None, ENV)) == f"$(X) ${NASTY} [{NASTY}]\n"
    # "$" then the value: a value starting with a name would be read with the "$" as a parameter.
    env = {"X": NASTY, "V": "/ $HOME;"}
    unquoted = "cat <<EOF\n$$HOME $$$(V) [$(X)]\nEOF"
    assert run(command_text(unquoted, None, env), {"HOME": "/h"}) == f"/h $/ $HOME; [{NASTY}]\n"


def test_a_quoted_bodys_substitutions_and_backslashes_are_text() -> None:
    code = "cat <<'EOF'\n$(date) `date` \\$(X) [$(X)]\nEOF"
    assert run(command_text(code, None, ENV)) == f"$(date) `date` \\{NASTY} [{NASTY}]\n"


def test_an_escaped_backslash_before_a_reference_in_a_body_leaves_the_value_text() -> None:
    assert run(command_text("cat <<EOF\n\\\\$(X)\nEOF", None, ENV)) == f"\\{NASTY}\n"


def test_an_unclosed_reference_in_a_quoted_body_is_text() -> None:
    assert run(command_text("cat <<'EOF'\n[$(X)] $(XY", None, ENV)) == f"[{NASTY}] $(XY"


def test_a_body_after_a_function_definition_is_scanned_from_its_own_start() -> None:
    code = "f() { cat; }; f <<'EOF'\n[$(X)]\nEOF"
    assert run(command_text(code, None, ENV)) == f"[{NASTY}]\n"


@pytest.mark.parametrize(
    "code",
    [
        # A command substitution in a <<EOF body: the value would be in its quotes, not the body's.
        "cat <<EOF\n$(date) [$(X)]\nEOF",
        "cat <<EOF\n$$(printf '%s' '[$(X)]')\nEOF",  # written with Kubernetes' escape
        "cat <<EOF\n$$(X)\n[$(X)]\nEOF",  # the shell runs a command "X" there
        "cat <<EOF\n`printf '%s' '[$(X)]'`\nEOF",
        # "\$" is a "$" of text: the value's own "$(" would follow a backslash that is not there.
        "cat <<EOF\n\\$(X)\nEOF",
        # The scanner lost track before the here-document started: a backquote it does not follow.
        ': $(echo ")"); cat <<EOF\n[$(X)]\nEOF',
        # A delimiter with a blank in its quotes: the scanner does not follow it.
        "cat <<'E F'\n[$(X)]\nE F",
        'cat <<"E F"\n[$(X)]\nE F',
    ],
)
def test_a_value_with_shell_syntax_in_a_body_the_scanner_cannot_follow_is_refused(code: str) -> None:
    refused(code)
    # A plain value goes there as it is.
    assert "plain/value" in run(command_text(code, None, {"X": "plain/value"}))


def test_a_delimiter_starting_with_x_is_all_of_its_word() -> None:
    assert run(command_text("cat <<XEOF\nEOF\n[$(X)]\nXEOF", None, ENV)) == f"EOF\n[{NASTY}]\n"


def test_ml_args_after_a_here_document_operator_with_no_word_are_refused() -> None:
    with pytest.raises(DescriptorError, match=r"ml.args.*ends in a here-document"):
        command_text("cat <<  ", "--x 1", {})


# --- "$$" outside bodies ---


def test_an_escaped_parameter_leaves_the_quoting_after_it_known() -> None:
    env = {"HOME": "/h", **ENV}
    code = f'{PROBE} "$$HOME" $$HOME $(X) "$(X)"'
    assert run(command_text(code, None, ENV), env) == printed("/h", "/h", NASTY, NASTY)
    # The same in a subshell: its "(" is no command substitution.
    code = "(\n$$P '[%s]\\n' \"$$HOME\" $(X)\n)"
    assert run(command_text(code, None, ENV), {"P": "printf", **env}) == printed("/h", NASTY)


@pytest.mark.parametrize("code", [f"{PROBE} $$(printf '%s' \"$(X)\")", f'{PROBE} "$$(printf %s $(X))"'])
def test_a_value_after_an_escaped_command_substitution_with_shell_syntax_is_refused(code: str) -> None:
    refused(code)
    assert run(command_text(code, None, {"X": "plain"})) == printed("plain")


# --- comments ---


def test_a_comment_makes_only_its_own_references_unsure() -> None:
    code = f': first\n{PROBE} $(X) # a note $(P)\n{PROBE} "$(X)"\n: last # $(P)'
    assert run(command_text(code, None, {"P": "plain", **ENV})) == printed(NASTY, NASTY)


# --- dataset links ---


@pytest.mark.parametrize("path", ["/", "//", "/.", "/data/.."])
def test_a_dataset_at_the_root_directory_is_refused(path: str) -> None:
    with pytest.raises(DescriptorError) as refusal:
        render_bootstrap("true", ["code", "train"], [DataLink(path, "train")])
    assert (refusal.value.field, refusal.value.reason) == (
        "data.sources[0].path",
        "must not be the root directory",
    )


def test_a_relative_dataset_path_is_refused_with_the_path() -> None:
    with pytest.raises(DescriptorError) as refusal:
        render_bootstrap(
            "true", ["code", "train"], [DataLink("/x", "train"), DataLink("data/mnist", "train")]
        )
    assert refusal.value.field == "data.sources[1].path"
    assert refusal.value.reason == "must be an absolute path, got 'data/mnist'"


def test_a_dataset_is_linked_at_its_path_as_written(tmp_path: Path) -> None:
    # mkdir and ln print what they are asked to do: the link is at /Xdata, under "/".
    for tool in ("mkdir", "ln"):
        (tmp_path / tool).write_text(f'#!/bin/sh\necho {tool} "$@"\n')
        (tmp_path / tool).chmod(0o755)
    text = render_bootstrap("true", ["code", "train"], [DataLink("//Xdata/./x", "train")])
    result = subprocess.run(
        ["/bin/dash", "-c", text],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "mkdir -p /Xdata\nln -s /opt/ml/input/data/train /Xdata/x\n"


def test_a_reference_in_a_body_ends_with_its_word_as_outside_one() -> None:
    # As outside a body, "$(printf %s $(X))" gets X's value: Kubernetes' shlex.split knows no
    # here-documents, so a body's blanks end words too, and the "$(" of "$(printf" does not read on to
    # the ")" of "$(X)" (which the shell would then run as a command "X").
    code = "cat <<EOF\n[$(printf %s $(X))]\nEOF"
    assert run(command_text(code, None, {"X": "plain"})) == "[plain]\n"
