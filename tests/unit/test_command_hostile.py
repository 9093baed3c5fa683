"""Command mode against inputs it was not written for: what a hostile or unusual descriptor makes it run.

Each case either runs the command Kubernetes would run (``/work/shared/anubis/KUBERNETES-EXECUTOR.md``:
``$(VAR)`` expanded with no shell, so a value is one piece of an argument, never code) or is refused
with a :class:`DescriptorError`. The command is observed by running it: a probe prints each argument it
gets between markers. The shells are the ones ``test_bootstrap`` uses (dash, busybox sh); the whole
bootstrap runs in that file's private ``/opt/ml`` (its ``job`` fixture).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tomllib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sagemaker_executor.domain import bootstrap
from sagemaker_executor.domain.bootstrap import DataLink, command_text
from sagemaker_executor.domain.command import command_mode
from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.expansion import expand
from tests.builders import fetcher_event
from tests.unit.test_bootstrap import SCRIPTS, Job, job, script

__all__ = ["job"]  # the fixture, used by name

pytestmark = pytest.mark.timeout(60)

SHELL_ARGVS = [["/bin/dash"]] + (
    [[shutil.which("busybox") or "busybox", "sh"]] if shutil.which("busybox") else []
)

# Prints each argument between "[" and "]", one to a line (a value's newline stays inside its brackets).
PROBE = "printf '[%s]\\n'"


HOSTILE_TOML = """
spec_version = "0.1.0"
[info]
task_name = "hostile"
description = "command mode, odd inputs"
execution_engine = "aws.sagemaker"
[hardware]
instance_type = "ml.m5.xlarge"
strategy = "single_node"
[env]
docker_image = "python:3-alpine"
[ml]
benchmark_code = "true"
[[data.sources]]
src = "s3://b/k"
path = "/data/x"
"""


def run(command: str, environment: dict[str, str] | None = None) -> str:
    """The output of ``command`` under each shell; they must agree."""
    outputs = []
    for shell in SHELL_ARGVS:
        result = subprocess.run(
            [*shell, "-c", command],
            capture_output=True,  # bytes: text mode would read a "\r" as a line end
            timeout=10,
            check=False,
            env={"PATH": "/usr/bin:/bin", **(environment or {})},
        )
        assert result.returncode == 0, (shell, command, result.stderr)
        outputs.append(result.stdout.decode())
    assert len(set(outputs)) == 1, outputs
    return outputs[0]


def printed(*words: str) -> str:
    return "".join(f"[{word}]\n" for word in words)


# Text a TOML string can hold and a process argument can carry: no NUL, no surrogates.
VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES, quoting=st.sampled_from(["{}", "'{}'", '"{}"', "x{}y", "'a'{}\"b\"", '"-{}-"']))
def test_a_values_text_is_what_the_command_gets_wherever_the_reference_is(value: str, quoting: str) -> None:
    # On Kubernetes the word is split off first, then $(X) is replaced: the value is text in that word.
    word = quoting.format("$(X)")
    expected = {"{}": value, "'{}'": value, '"{}"': value, "x{}y": f"x{value}y"}
    expected |= {"'a'{}\"b\"": f"a{value}b", '"-{}-"': f"-{value}-"}
    command = command_text(f"{PROBE} {word}", None, {"X": value})
    assert run(command, {"X": value}) == printed(expected[quoting])


def test_a_value_with_shell_syntax_is_not_run_as_code() -> None:
    env = {"X": "a b; echo INJECTED", "Q": 'say "hi" $HOME `id` \\'}
    command = command_text(f"{PROBE} $(X) \"$(Q)\" '$(Q)' --opt=$(X)", None, env)
    assert run(command) == printed("a b; echo INJECTED", *[env["Q"]] * 2, "--opt=a b; echo INJECTED")


def test_an_empty_value_is_an_empty_argument_as_on_kubernetes() -> None:
    assert run(command_text(f"{PROBE} $(E) x", None, {"E": ""})) == printed("", "x")


@pytest.mark.parametrize(
    "code",
    [
        f"{PROBE} `echo $(X)`",
        f"{PROBE} `echo '`'` $(X)",
        f'{PROBE} $(echo ")") $(X)',
        f"{PROBE} x # $(X)",
        "cat <<EOF\n$(X)\nEOF\n",  # the value's "\nEOF" line would end the here-document
        "cat <<$(Y)\n$(X)\n",
        f"{PROBE} ${{Y:-$(X)}}",
    ],
)
def test_a_value_with_shell_syntax_where_it_cannot_be_quoted_is_refused(code: str) -> None:
    with pytest.raises(DescriptorError, match=r"\$\(X\).*env\.vars\.X"):
        command_text(code, None, {"X": "a\nEOF\nrm -rf /tmp/nothing"})


def test_a_plain_value_goes_anywhere_as_before() -> None:
    env = dict(SCRIPTS)
    code = f"{PROBE} `echo $(BAI_SCRIPTS_PATH)` # $(BAI_SCRIPTS_PATH)"
    assert run(command_text(code, None, env)) == printed(bootstrap.SCRIPTS_PATH)


def test_escaped_and_unknown_references_stay_text() -> None:
    env = {"X": "a b"}
    code = f"{PROBE} '$$(X)' '$(NOPE)' '$$$(X)'"
    assert run(command_text(code, None, env)) == printed("$(X)", "$(NOPE)", "$a b")


def test_hostile_values_through_the_whole_bootstrap(job: Job) -> None:
    env = {"X": 'it\'s "$HOME" `id`; exit 7\n$(Y)', **SCRIPTS}
    code = f"{PROBE} $(X) \"$(X)\" '$(X)'"
    result = job.run(script(command_text(code, "-- '' $(X)", env)), env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(*[env["X"]] * 3, "--", "", env["X"])


@pytest.mark.parametrize(
    ("code", "ending"),
    [
        (f"{PROBE} a # a note", "a comment"),
        (f"{PROBE} a #", "a comment"),
        (f"{PROBE} a \\", "a backslash"),
        (f"{PROBE} a \\\n", "a backslash"),
        ("cat <<EOF\nhi\nEOF", "a here-document"),
        (f"{PROBE} 'a", "an unclosed quote"),
        (f"{PROBE} a;", "an operator"),
        (f"{PROBE} a &\n", "an operator"),
        (f"{PROBE} a |", "an operator"),
    ],
)
def test_ml_args_are_refused_after_code_that_would_swallow_them(code: str, ending: str) -> None:
    # Appended, "--x 1" would be a comment's text, or an escaped space, or the here-document's end.
    with pytest.raises(DescriptorError, match=f"ml.args.*ends in {ending}"):
        command_text(code, "--x 1", {})


@pytest.mark.parametrize(
    "code",
    [
        f"{PROBE} a\\;",
        f"{PROBE} a ';'",
        f"{PROBE} a#b",
        f"{PROBE} '#' \"#\" \\#",
        f"{PROBE} x # note\n{PROBE} a",
        f"{PROBE} '\\' a\\\\",
    ],
)
def test_ml_args_follow_code_with_a_hash_or_backslash_that_is_text(code: str) -> None:
    last = run(command_text(code, "--x 1", {})).splitlines()[-2:]
    assert last == ["[--x]", "[1]"]


def test_two_datasets_at_one_path_are_refused() -> None:
    # The Anubis executor mounts one puller directory at a path named twice, so both datasets download
    # into it; links cannot merge two channels. Here the second link failed at run time, saying the
    # path "already exists in the image": now an ERROR at submission.
    links = [DataLink("/data/x", "src0"), DataLink("//data/./x/", "src1")]
    with pytest.raises(DescriptorError, match=r"data.sources\[1\].path.*also data.sources\[0\].path"):
        script("true", ("src0", "src1"), tuple(links))


def test_a_dataset_under_another_datasets_path_is_linked_whatever_their_order(job: Job) -> None:
    for channel in ("outer", "inner"):
        (job.ml / "input" / "data" / channel).mkdir()
        (job.ml / "input" / "data" / channel / "part-0").write_text(f"{channel} data\n")
    where = job.root / "data"
    links = (DataLink(f"{where}/x/sub", "inner"), DataLink(f"{where}/x", "outer"))
    code = f'read -r a < {where}/x/part-0 && read -r b < {where}/x/sub/part-0 && printf "%s|%s\\n" "$a" "$b"'
    result = job.run(script(code, ("outer", "inner"), links))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "outer data|inner data\n"


@pytest.mark.parametrize("name", [".", ".."])
def test_a_dataset_id_that_names_no_directory_of_its_own_is_refused(name: str) -> None:
    # Channel ".." would be /opt/ml/input/data/.., that is /opt/ml/input, linked at the dataset's path.
    contents = tomllib.loads(HOSTILE_TOML)
    contents["data"]["sources"][0]["id"] = name
    datasets = [{"src": "s3://b/k", "dst": "s3://d/k", "path": "/data/x", "id": name}]
    event = FetcherBenchmarkEvent.model_validate(fetcher_event(contents, datasets=datasets))
    with pytest.raises(DescriptorError, match=r"data.sources\[0\].id.*cannot name a channel's directory"):
        command_mode(parse_descriptor(contents), event, [name])


def test_a_long_benchmark_code_runs(job: Job) -> None:
    code = f": {'x' * 100_000}\nprintf '%s\\n' done"
    result = job.run(script(command_text(code, None, {})))
    assert result.returncode == 0, result.stderr[-300:]
    assert result.stdout == "done\n"


def test_a_command_exec_cannot_take_is_refused() -> None:
    # The command is one argument of "sh -c": past 128 KiB the job failed with "Argument list too long".
    fits = "x" * bootstrap.MAX_COMMAND_BYTES
    assert command_text(fits, None, {}) == fits
    with pytest.raises(DescriptorError, match=r"ml.benchmark_code.*131,072 bytes.*--script"):
        command_text("é" * (bootstrap.MAX_COMMAND_BYTES // 2 + 1), None, {})
    with pytest.raises(DescriptorError, match="131,073 bytes"):
        command_text("x" * bootstrap.MAX_COMMAND_BYTES, "a", {})


def test_windows_line_ends_are_line_ends() -> None:
    # "train.py\r" was the file the benchmark tried to open; Kubernetes' shlex.split reads "\r" as a space.
    code = f"{PROBE} a\r\n{PROBE} b 'c\rd'\r\n"
    assert run(command_text(code, "e", {})) == printed("a", "b", "c\rd", "e")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=VALUES.filter(lambda text: text.strip() != ""), env=VALUES)
def test_no_benchmark_code_escapes_the_bootstraps_command_line(code: str, env: str) -> None:
    # Whatever the code, the bootstrap's "anubis_command" holds exactly command_text's text.
    try:
        command = command_text(code + " $(X)", None, {"X": env})
    except DescriptorError:
        return
    text = script(command).replace('exec sh -c "$anubis_command" sh', 'printf %s "$anubis_command"')
    text = text.replace("anubis_link", ": anubis_link")  # nothing of /opt/ml is needed
    assert run(text) == command


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=VALUES.filter(lambda text: "EOF" not in text),
    form=st.sampled_from(["<<EOF", "<<'EOF'", '<< "EOF"', "<<-EOF", "<<\\EOF"]),
)
def test_a_value_in_a_here_document_is_its_text(value: str, form: str) -> None:
    code = f"cat {form}\n\t[$(X)]\n\tEOF\nEOF\n{PROBE} $(X)"
    body = f"[{value}]\n" if form == "<<-EOF" else f"\t[{value}]\n\tEOF\n"
    assert run(command_text(code, None, {"X": value})) == body + printed(value)


def test_simple_substitutions_before_a_reference_leave_its_quoting_known() -> None:
    # "$(date)" and the like end at their first ")" (or "`", "}"): what follows is quoted as usual.
    env = {"MSG": "hello world; echo INJECTED"}
    code = f'N=2; {PROBE} "$(echo x)" `echo y` "${{N:-1}}" ${{N}} $(MSG) "$(MSG)"'
    assert run(command_text(code, None, env)) == printed("x", "y", "2", "2", *[env["MSG"]] * 2)


_BARE = st.text(st.sampled_from("abcXYZ019_./=-,:@%+"), min_size=1, max_size=6)
_IN_SINGLE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="'"), max_size=6
)
_IN_DOUBLE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"$`\\'), max_size=6
)
_REFERENCE = st.sampled_from(["$(X)", "$(Y)"])


@st.composite
def _word(draw: st.DrawFn) -> str:
    """One shell word of literal pieces and references, quoted one way: where sh and shlex agree."""
    style = draw(st.sampled_from(["bare", "single", "double"]))
    text = {"bare": _BARE, "single": _IN_SINGLE, "double": _IN_DOUBLE}[style]
    pieces = draw(st.lists(st.one_of(text, _REFERENCE), min_size=1, max_size=4))
    inner = "".join(pieces)
    return {"bare": inner, "single": f"'{inner}'", "double": f'"{inner}"'}[style]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(_word(), min_size=1, max_size=5), x=VALUES, y=VALUES)
@example(words=["'$('", "$(X)"], x="", y="")  # found by this property: "$(" read on into the next word
def test_the_benchmark_gets_the_arguments_kubernetes_would_give_it(words: list[str], x: str, y: str) -> None:
    # Kubernetes: shlex.split(benchmark_code), then $(VAR) in each word; here: the shell reads the code.
    code = " ".join(words)
    env = {"X": x, "Y": y}
    expected = [expand(word, env) for word in shlex.split(code)]
    assert run(command_text(f"{PROBE} {code}", None, env), env) == printed(*expected)


def test_a_reference_never_reaches_past_its_word() -> None:
    # Kubernetes expands each word alone: "$(" with its ")" in a later word is "$(" as written.
    env = {"X": "a b; echo INJECTED", "Y": "y"}
    code = f"{PROBE} '$(' $(X) '$(Y' $(Y) '$(Y)'"
    expected = [expand(word, env) for word in shlex.split(code)][2:]
    assert expected == ["$(", env["X"], "$(Y", "y", "y"]
    assert run(command_text(code, None, env), env) == printed(*expected)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("'$(' $(X)", ["$(", "x"]),
        ("'$('\t$(X)", ["$(", "x"]),  # a tab ends a word as a space does
        ("'$(a $(X))'", ["$(a $(X))"]),  # a quoted blank does not: one word, "a $(X" is no name
        ("'$(a b)'$(X)", ["$(a b)x"]),  # a reference after a quoted blank is still in the word
    ],
)
def test_only_an_unquoted_blank_ends_a_reference_word(code: str, expected: list[str]) -> None:
    env = {"X": "x"}
    assert [expand(word, env) for word in shlex.split(code)] == expected  # Kubernetes' reading
    assert run(command_text(f"{PROBE} {code}", None, env), env) == printed(*expected)


def test_sm_variables_that_env_vars_set_keep_their_values(job: Job) -> None:
    # On Kubernetes the benchmark sees its env.vars; the bootstrap's SM_* overwrote them.
    env = {"SM_MODEL_DIR": "/mine", "SM_HOSTS": '["h"]', "SM_CHANNEL_TRAIN": "/t", "SM_CHANNELS": "[]"}
    names = [*env, "SM_OUTPUT_DIR", "SM_CURRENT_HOST"]
    command = "printf '[%s]\\n'" + "".join(f' "${name}"' for name in names)
    result = job.run(script(command), env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed(*env.values(), "/opt/ml/output", "algo-2")
