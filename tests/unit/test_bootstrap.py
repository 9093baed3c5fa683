"""Command mode's bootstrap (``domain.bootstrap``), run for real: one test per row of the contract.

Each test writes a job's ``/opt/ml`` layout into a temporary directory, bind-mounts it at ``/opt/ml``
in a private mount namespace (``unshare -m``, as root: FACTS.md), and runs the generated bootstrap as
SageMaker would run ``ContainerEntrypoint``: ``sh /opt/ml/input/data/anubis_code/bootstrap.sh`` in the
image's working directory, with the job's ``Environment`` and nothing else. ``PATH`` holds only
``sh``, ``mkdir`` and ``ln`` (and a fake ``pip`` where a test says so): what the contract says an
image needs. Each shell this machine has (Debian's ``dash``; ``busybox sh`` when installed) runs every
test. The benchmark reports what it saw on its stdout, which is the job's log. The rows are
``/work/shared/anubis/KUBERNETES-EXECUTOR.md``'s and issue 10's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sagemaker_executor.domain import bootstrap
from sagemaker_executor.domain.bootstrap import DataLink, command_text, render_bootstrap
from sagemaker_executor.domain.command import command_mode
from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from tests.builders import fetcher_event
from tests.conftest import SAMPLES

pytestmark = pytest.mark.timeout(30)

SHELLS = [
    pytest.param(["/bin/dash"], id="dash"),
    pytest.param(
        [shutil.which("busybox") or "busybox", "sh"],
        id="busybox",
        marks=pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed"),
    ),
]

# SageMaker writes resourceconfig.json; pretty-printed here, with the instance group after the hosts.
RESOURCE_CONFIG = {
    "current_host": "algo-2",
    "current_instance_type": "ml.m5.xlarge",
    "current_group_name": "homogeneousCluster",
    "hosts": ["algo-1", "algo-2"],
    "instance_groups": [
        {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.xlarge", "hosts": ["algo-2"]}
    ],
    "network_interface_name": "eth0",
}
SCRIPTS = {bootstrap.SCRIPTS_PATH_VARIABLE: bootstrap.SCRIPTS_PATH}
HELLO_WORLD = SAMPLES / "descriptors" / "sample-benchmarks" / "hello-world"


@dataclass
class Job:
    """A job's machine: its ``/opt/ml`` (``ml``), the image's working directory, the image's ``PATH``."""

    root: Path
    shell: list[str]

    @property
    def ml(self) -> Path:
        return self.root / "ml"

    @property
    def workdir(self) -> Path:
        return self.root / "workdir"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def code(self, relative: str, text: str, executable: bool = False) -> Path:
        path = self.ml / "input" / "data" / bootstrap.CODE_CHANNEL / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if executable:
            path.chmod(0o755)
        return path

    def tool(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def run(self, text: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Runs ``text`` as the bootstrap, as SageMaker runs ``ContainerEntrypoint``."""
        self.code(bootstrap.BOOTSTRAP, text)
        env = {"PATH": str(self.bin), **(environment or {})}
        entrypoint = bootstrap.container_entrypoint()
        assert entrypoint[0] == "sh"
        inside = (
            'mount -t tmpfs anubis-test /opt && mkdir /opt/ml && mount --bind "$1" /opt/ml && cd "$2" '
            '&& shift 2 && exec env -i "$@"'
        )
        argv = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", inside, "sh"]
        argv += [str(self.ml), str(self.workdir)]
        argv += [f"{name}={value}" for name, value in env.items()]
        argv += [str(self.bin / "sh"), *entrypoint[1:]]
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


@pytest.fixture(params=SHELLS)
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private /opt/ml")
    job = Job(tmp_path, request.param)
    for directory in ("input/config", "model", "output/data", "input/data/train"):
        (job.ml / directory).mkdir(parents=True)
    (job.ml / "input" / "config" / "resourceconfig.json").write_text(json.dumps(RESOURCE_CONFIG, indent=4))
    (job.ml / "input" / "data" / "train" / "part-0").write_text("the training data\n")
    job.workdir.mkdir()
    job.bin.mkdir()
    if len(job.shell) == 1:
        (job.bin / "sh").symlink_to(job.shell[0])
        for name in ("mkdir", "ln"):
            (job.bin / name).symlink_to(shutil.which(name) or f"/bin/{name}")
    else:  # busybox: one binary that is every tool, named by argv[0]
        for name in ("sh", "mkdir", "ln"):
            (job.bin / name).symlink_to(job.shell[0])
    return job


def script(
    command: str,
    channels: tuple[str, ...] = ("train",),
    data_links: tuple[DataLink, ...] = (),
    requirements: bool = False,
    scripts: bool = False,
) -> str:
    """The bootstrap of a job with the code channel and ``channels``."""
    return render_bootstrap(command, (bootstrap.CODE_CHANNEL, *channels), data_links, requirements, scripts)


def test_the_benchmark_runs_in_the_images_working_directory(job: Job) -> None:
    result = job.run(script('printf "%s\\n" "$PWD"'))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{job.workdir}\n"


def test_the_jobs_environment_reaches_the_benchmark_and_nothing_of_the_bootstraps_own(job: Job) -> None:
    env = {"GREETING": "hello world", "QUOTED": "it's $HOME `x`", **SCRIPTS}
    command = 'printf "%s|%s|%s|%s\\n" "$GREETING" "$QUOTED" "$BAI_SCRIPTS_PATH" "${anubis_command-unset}"'
    result = job.run(script(command), env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hello world|it's $HOME `x`|{bootstrap.SCRIPTS_PATH}|unset\n"


def test_var_references_are_expanded_as_kubernetes_does_before_the_shell_reads_them(job: Job) -> None:
    env = {"MSG": "hi there", **SCRIPTS}
    code = "printf '%s|%s|%s\\n' \"$(MSG)\" '$$(MSG)' '$(NOPE)'"
    result = job.run(script(command_text(code, None, env)), env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi there|$(MSG)|$(NOPE)\n"


def test_the_scripts_are_under_bai_scripts_path_and_ml_args_follow_the_command(job: Job) -> None:
    # As Anubis's hello-world/descriptor-script-mode.toml:
    # benchmark_code = "$(BAI_SCRIPTS_PATH)/src/entrypoint.sh"
    job.code("scripts/src/entrypoint.sh", '#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n', executable=True)
    env = dict(SCRIPTS)
    command = command_text(
        "$(BAI_SCRIPTS_PATH)/src/entrypoint.sh", "--epochs 2 'a b' $(BAI_SCRIPTS_PATH)", env
    )
    result = job.run(script(command), env)
    assert result.returncode == 0, result.stderr
    entry = f"{bootstrap.SCRIPTS_PATH}/src/entrypoint.sh"
    assert result.stdout.splitlines() == [entry, "--epochs", "2", "a b", bootstrap.SCRIPTS_PATH]


def test_the_scripts_are_executable_as_the_kubernetes_executor_leaves_them(job: Job) -> None:
    # As downloaded from S3: no execute bit.
    job.code("scripts/src/entrypoint.sh", "#!/bin/sh\necho ran entrypoint\n")
    (job.bin / "chmod").symlink_to(
        job.shell[0] if len(job.shell) > 1 else shutil.which("chmod") or "/bin/chmod"
    )
    env = dict(SCRIPTS)
    result = job.run(
        script(command_text("$(BAI_SCRIPTS_PATH)/src/entrypoint.sh", None, env), scripts=True), env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran entrypoint\n"


def test_without_chmod_the_bootstrap_warns_and_runs_the_benchmark(job: Job) -> None:
    job.code("scripts/src/entrypoint.sh", "echo ran entrypoint\n")
    env = dict(SCRIPTS)
    command = command_text("sh $(BAI_SCRIPTS_PATH)/src/entrypoint.sh", None, env)
    result = job.run(script(command, scripts=True), env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran entrypoint\n"
    assert "could not make the scripts under" in result.stderr


def test_each_dataset_is_also_at_its_data_sources_path(job: Job) -> None:
    where = job.root / "data" / "mnist"
    text = script(
        f'read -r line < {where}/part-0 && printf "%s\\n" "$line"',
        data_links=(DataLink(str(where) + "/", "train"),),
    )
    result = job.run(text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the training data\n"
    assert os.readlink(where) == "/opt/ml/input/data/train"


def test_a_data_sources_path_that_exists_in_the_image_fails_the_job_with_a_message(job: Job) -> None:
    where = job.root / "data"
    where.mkdir()
    result = job.run(script("echo ran", data_links=(DataLink(str(where), "train"),)))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"cannot put the dataset of channel 'train' at {where}" in result.stderr


def test_a_relative_data_sources_path_is_refused() -> None:
    with pytest.raises(DescriptorError, match=r"data.sources\[0\].path"):
        render_bootstrap("true", ["train"], [DataLink("data/mnist", "train")])


def test_the_training_toolkits_sm_variables_are_set(job: Job) -> None:
    names = [
        "SM_HOSTS",
        "SM_CURRENT_HOST",
        "SM_NETWORK_INTERFACE_NAME",
        "SM_CHANNELS",
        "SM_CHANNEL_TRAIN",
        "SM_CHANNEL_ANUBIS_CODE",
        "SM_MODEL_DIR",
        "SM_OUTPUT_DIR",
        "SM_OUTPUT_DATA_DIR",
        "SM_INPUT_DIR",
        "SM_INPUT_CONFIG_DIR",
    ]
    command = "printf '%s\\n' " + " ".join(f'"{name}=${name}"' for name in names)
    result = job.run(script(command, channels=("train", "a-b")))
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert json.loads(seen["SM_HOSTS"]) == ["algo-1", "algo-2"]  # the cluster's, not the instance group's
    assert seen["SM_CURRENT_HOST"] == "algo-2"
    assert seen["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert seen["SM_CHANNELS"] == '["a-b", "anubis_code", "train"]'  # the toolkit's json.dumps(sorted(...))
    assert seen["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert seen["SM_CHANNEL_ANUBIS_CODE"] == "/opt/ml/input/data/anubis_code"
    assert seen["SM_MODEL_DIR"] == "/opt/ml/model"
    assert seen["SM_OUTPUT_DIR"] == "/opt/ml/output"
    assert seen["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert seen["SM_INPUT_DIR"] == "/opt/ml/input"
    assert seen["SM_INPUT_CONFIG_DIR"] == "/opt/ml/input/config"


def test_the_benchmarks_exit_status_and_output_are_the_jobs(job: Job) -> None:
    code = "echo to-stdout && echo to-stderr >&2 && false || echo after-false\nexit 3\necho never"
    result = job.run(script(command_text(code, None, {})))
    assert result.returncode == 3
    assert result.stdout == "to-stdout\nafter-false\n"
    assert result.stderr == "to-stderr\n"


def test_requirements_are_installed_with_pip_before_the_benchmark(job: Job) -> None:
    job.code(bootstrap.REQUIREMENTS_FILE, "requests==2.0\n")
    job.tool("pip", '#!/bin/sh\necho "pip $*"\n')
    result = job.run(script("echo benchmark", requirements=True))
    assert result.returncode == 0, result.stderr
    requirements = f"{bootstrap.CODE_PATH}/{bootstrap.REQUIREMENTS_FILE}"
    assert result.stdout == f"pip install -r {requirements}\nbenchmark\n"


def test_without_a_requirements_file_pip_is_not_needed(job: Job) -> None:
    result = job.run(script("echo benchmark", requirements=True))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "benchmark\n"


def test_a_failing_pip_fails_the_job_with_its_status(job: Job) -> None:
    job.code(bootstrap.REQUIREMENTS_FILE, "no-such-package\n")
    job.tool("pip", "#!/bin/sh\nexit 7\n")
    result = job.run(script("echo benchmark", requirements=True))
    assert result.returncode == 7
    assert result.stdout == ""
    assert "installing the benchmark's requirements with pip failed (exit status 7)" in result.stderr


def test_requirements_without_pip_fail_the_job_with_a_clear_message(job: Job) -> None:
    job.code(bootstrap.REQUIREMENTS_FILE, "requests==2.0\n")
    result = job.run(script("echo benchmark", requirements=True))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "the image has no pip (pip, pip3, python3 -m pip, python -m pip)" in result.stderr


def test_the_entrypoint_is_sh_and_the_bootstrap_in_the_code_channel() -> None:
    assert bootstrap.container_entrypoint() == ["sh", "/opt/ml/input/data/anubis_code/bootstrap.sh"]


@pytest.mark.parametrize(
    ("args", "field"), [("'unbalanced", "ml.args"), ("a\x00b", "ml.args")], ids=["quotes", "nul"]
)
def test_ml_args_that_cannot_be_split_are_refused(args: str, field: str) -> None:
    with pytest.raises(DescriptorError, match=field):
        command_text("run", args, {})


def test_a_blank_command_is_refused() -> None:
    with pytest.raises(DescriptorError, match=r"ml\.benchmark_code"):
        command_text(" \n", None, {})


def _anubis_sample(name: str, scripts: list[str] | None = None) -> tuple[Any, str]:
    """The plan (``domain.command``) for one of Anubis's hello-world samples, and its bootstrap."""
    contents = tomllib.loads((HELLO_WORLD / name).read_text())
    contents["info"]["execution_engine"] = "aws.sagemaker"
    event = FetcherBenchmarkEvent.model_validate(fetcher_event(contents, scripts=scripts))
    mode = command_mode(parse_descriptor(contents), event, ["src0"])
    assert mode.bootstrap is not None
    return mode, mode.bootstrap


def test_anubis_script_mode_sample_runs_its_script_from_bai_scripts_path(job: Job) -> None:
    # sample-benchmarks/hello-world/descriptor-script-mode.toml: python:3-alpine, no toolkit;
    # benchmark_code = "$(BAI_SCRIPTS_PATH)/src/entrypoint.sh"; metrics read from the log.
    mode, text = _anubis_sample("descriptor-script-mode.toml", ["s3://scripts-exchange/anubis/abc/src.tar"])
    job.code(
        "scripts/src/entrypoint.sh", '#!/bin/sh\necho "Epoch 1: train loss 0.25 accuracy=0.75"\nexit 0\n'
    )
    (job.bin / "chmod").symlink_to(
        job.shell[0] if len(job.shell) > 1 else shutil.which("chmod") or "/bin/chmod"
    )
    result = job.run(text, mode.environment)
    assert result.returncode == 0, result.stderr
    contents = tomllib.loads((HELLO_WORLD / "descriptor-script-mode.toml").read_text())
    seen = {}
    for metric in contents["output"]["metrics"]:  # as SageMaker applies MetricDefinitions to the log
        match = re.search(metric["pattern"], result.stdout)
        seen[metric["name"]] = match[1] if match else None
    assert seen == {"epoch": "1", "train_loss": "0.25", "accuracy": "0.75"}


def test_anubis_hello_world_sample_runs_in_the_images_working_directory(job: Job) -> None:
    # sample-benchmarks/hello-world/descriptor.toml: benchmark_code = "python3 hello-world.py", a file
    # of the image's own working directory.
    mode, text = _anubis_sample("descriptor.toml")
    (job.workdir / "hello-world.py").write_text("import os\nprint('hello from', os.getcwd())\n")
    (job.bin / "python3").symlink_to(Path(sys.executable).resolve())  # the interpreter, not a shim
    result = job.run(text, mode.environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hello from {job.workdir}\n"
