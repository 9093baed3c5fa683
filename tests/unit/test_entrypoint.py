"""The generated entry files, run for real with /bin/sh and Python in a temporary directory."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sagemaker_executor.domain.entrypoint import (
    ENTRY_POINT,
    ENTRY_SCRIPT,
    render_entry_files,
)
from sagemaker_executor.domain.errors import DescriptorError, PermanentError

pytestmark = pytest.mark.timeout(30)

DUMP_ENV = f'"{sys.executable}" -c \'import json, os; json.dump(dict(os.environ), open("env.json", "w"))\''


def write_entry(code_dir: Path, benchmark_code: str, env_vars: dict[str, str] | None = None) -> None:
    code_dir.mkdir(exist_ok=True)
    for name, content in render_entry_files(benchmark_code, env_vars or {}).items():
        (code_dir / name).write_text(content)


def run_entry(code_dir: Path) -> subprocess.CompletedProcess[bytes]:
    # From another directory, as the toolkit may: the entry point must find its script by itself.
    return subprocess.run(
        [sys.executable, str(code_dir / ENTRY_POINT)],
        cwd=code_dir.parent,
        capture_output=True,
        timeout=20,
        check=False,
    )


def test_renders_exactly_the_two_entry_files() -> None:
    files = render_entry_files("python train.py", {"A": "1"})
    assert set(files) == {ENTRY_POINT, ENTRY_SCRIPT} == {"anubis_entry.py", "anubis_entry.sh"}
    script = files[ENTRY_SCRIPT]
    assert script.startswith("#!/bin/sh\n")
    assert "set -e" not in script.replace("'set -e'", "")
    assert script.endswith("export A=1\npython train.py\n")


def test_entry_point_is_python_36_syntax() -> None:
    ast.parse(render_entry_files("true", {})[ENTRY_POINT], feature_version=(3, 6))


HOSTILE_VALUES = {
    "SUBSHELL": "$(touch {sentinel}_subshell)",
    "BACKTICKS": "`touch {sentinel}_backticks`",
    "SEMICOLON": "x; rm -rf {victim}; touch {sentinel}_semicolon",
    "QUOTES": "it's \"quoted\" and 'single' '\"'\"'",
    "NEWLINES": "line1\nline2\n\ntouch {sentinel}_newline\n",
    "HOME_REF": "$HOME ${HOME} ~ *",
    "BACKSLASH": "a\\nb\\\\c\\",
    "GLOB_AND_BANG": "* ? [a] !! %s {} &| > /dev/null",
    "LEADING_DASH": "-n -e",
    "EMPTY": "",
    "UNICODE": "żółć ✓ \u2028 tab\there",
    "CR": "carriage\rreturn\r\n",
}


def test_env_values_arrive_byte_identical_and_never_run(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    victim = tmp_path / "victim"
    victim.mkdir()
    env_vars = {
        name: value.replace("{sentinel}", str(sentinel)).replace("{victim}", str(victim))
        for name, value in HOSTILE_VALUES.items()
    }
    code_dir = tmp_path / "code"
    write_entry(code_dir, DUMP_ENV, env_vars)

    result = run_entry(code_dir)

    assert result.returncode == 0, result.stderr
    environment = json.loads((code_dir / "env.json").read_text())
    for name, value in env_vars.items():
        assert environment[name] == value, name
    assert victim.is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["code", "victim"]


def test_benchmark_code_runs_as_shell_in_the_source_dir(tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    write_entry(
        code_dir, 'cd sub\nprintf "%s|%s" "$GREETING" "$(pwd)" > ../out.txt\n', {"GREETING": "hi there"}
    )
    (code_dir / "sub").mkdir()

    assert run_entry(code_dir).returncode == 0
    assert (code_dir / "out.txt").read_text() == f"hi there|{(code_dir / 'sub').resolve()}"


@pytest.mark.parametrize(
    ("benchmark_code", "status"),
    [
        ("exit 3", 3),
        ("true", 0),
        ("false", 1),
        ("echo one\nexit 42\necho never", 42),
        # No "set -e": an earlier failing line does not stop the code, the last status counts.
        ("false\ntrue", 0),
        ("true\nfalse", 1),
        ("if then fi", 2),
        ("exit 255", 255),
    ],
)
def test_exit_status_of_the_benchmark_becomes_the_entry_points(
    tmp_path: Path, benchmark_code: str, status: int
) -> None:
    write_entry(tmp_path / "code", benchmark_code)
    assert run_entry(tmp_path / "code").returncode == status


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGKILL, 137), (signal.SIGTERM, 143)])
def test_a_script_killed_by_a_signal_exits_128_plus_n(tmp_path: Path, signum: int, status: int) -> None:
    write_entry(tmp_path / "code", f"kill -{signum} $$\necho not reached")
    result = run_entry(tmp_path / "code")
    assert result.returncode == status
    assert b"not reached" not in result.stdout


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signals_reach_the_benchmark_process(tmp_path: Path, signum: int, status: int) -> None:
    # The benchmark is a grandchild (entry point -> sh -> python): it must hear the signal too.
    program = (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    open('got_%d' % signum, 'w').close()\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "bench.py").write_text(program)
    write_entry(code_dir, f'"{sys.executable}" bench.py')
    with subprocess.Popen(
        [sys.executable, str(code_dir / ENTRY_POINT)], cwd=tmp_path, stdout=subprocess.PIPE
    ) as entry:
        assert entry.stdout is not None
        assert entry.stdout.readline() == b"ready\n"
        entry.send_signal(signum)
        assert entry.wait(timeout=15) == status
    assert (code_dir / f"got_{signum}").exists()


@pytest.mark.parametrize("name", ["1A", "A-B", "A B", "", "A\n", "A=B", "$(x)", "é", "A.B", "\x00"])
def test_invalid_env_var_names_are_rejected(name: str) -> None:
    with pytest.raises(DescriptorError) as caught:
        render_entry_files("true", {"OK": "1", name: "v"})
    assert caught.value.field == f"env.vars.{name}"
    assert str(caught.value) == f"descriptor field 'env.vars.{name}': {caught.value.reason}"
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize("name", ["A", "_", "_a1", "PATH_2", "lower"])
def test_valid_env_var_names_are_accepted(name: str) -> None:
    assert f"export {name}=v\n" in render_entry_files("true", {name: "v"})[ENTRY_SCRIPT]


def test_nul_in_an_env_value_is_rejected() -> None:
    with pytest.raises(DescriptorError) as caught:
        render_entry_files("true", {"A": "x\x00y"})
    assert caught.value.field == "env.vars.A"


@pytest.mark.parametrize("code", ["", "   \n\t", "echo \x00"])
def test_blank_or_nul_benchmark_code_is_rejected(code: str) -> None:
    with pytest.raises(DescriptorError) as caught:
        render_entry_files(code, {})
    assert caught.value.field == "ml.benchmark_code"


def test_exports_come_before_the_benchmark_code_in_descriptor_order() -> None:
    script = render_entry_files("run", {"B": "2", "A": "1"})[ENTRY_SCRIPT]
    assert script.index("export B=2") < script.index("export A=1") < script.index("\nrun\n")


def test_entry_point_does_not_depend_on_the_exec_bit(tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    write_entry(code_dir, "exit 7")
    os.chmod(code_dir / ENTRY_SCRIPT, 0o644)
    assert run_entry(code_dir).returncode == 7
