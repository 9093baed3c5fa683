"""Command mode's bootstrap: the ``sh`` script that runs ``ml.benchmark_code`` in any image.

Owns the command-mode contract for descriptors with no ``ml.framework``: the job runs the benchmark as
Anubis's Kubernetes executor does (``/work/shared/anubis/KUBERNETES-EXECUTOR.md``), in an image that
needs nothing but a POSIX ``sh`` with ``mkdir`` and ``ln`` (no SageMaker training toolkit, no Python,
no ``tar``, no ``sed``). Pure: :func:`command_text` and :func:`render_bootstrap` build text;
``domain.translation`` calls them and the source dir builder puts :data:`BOOTSTRAP` at the root of
the code channel, with the unpacked ``--script`` tarballs under :data:`SCRIPTS_DIR` beside it.

The job's ``ContainerEntrypoint`` is :func:`container_entrypoint`: ``sh`` and the bootstrap's path in
the code channel (:data:`CODE_CHANNEL`), so neither a long ``benchmark_code`` nor the bootstrap
meets the request's 256-character limit on each entrypoint string (botocore's model,
``ContainerEntrypoint``); both travel in that file. What the bootstrap does, row by row:

* **working directory**: it never changes directory, so the benchmark runs in the image's own
  ``WORKDIR``, as on Kubernetes;
* **environment**: ``env.vars`` and ``BAI_SCRIPTS_PATH`` (= :data:`SCRIPTS_PATH`) are the job's
  ``Environment``, set by SageMaker, not by the bootstrap;
* **command**: :func:`command_text`: ``benchmark_code`` after Kubernetes' ``$(VAR)`` expansion
  (``domain.expansion``) from those variables, each value quoted for where it stands (unquoted, in
  single or in double quotes; ``domain.quoting`` finds where) so that the shell reads it as the text
  Kubernetes gives the command, never as code; a value with shell syntax where no quoting is sure (a
  comment, a here-document, backquotes, after a command substitution) is refused; then each
  ``ml.args`` word, expanded the same way and shell-quoted, appended as Kubernetes appends
  ``shlex.split(ml.args)`` to the command. It runs under ``sh -c`` (``exec``'d, so the benchmark's
  exit status is the job's and its stdout/stderr are the job's log), as the original SageMaker
  executor's entry script and the Kubernetes Horovod path did: ``a && b`` and ``exit 3`` mean what a
  user expects;
* **scripts**: the tarballs, unpacked safely by the executor, are files of the code channel under
  :data:`SCRIPTS_PATH` (a directory submitted as ``src`` is at ``$BAI_SCRIPTS_PATH/src/``), made
  mode 777 at start as the Kubernetes executor leaves them, so ``$(BAI_SCRIPTS_PATH)/src/run.sh``
  runs (this uses the image's ``chmod``; without one, the bootstrap warns and goes on);
* **datasets**: each ``data.sources[].path`` becomes a symbolic link to its channel's directory
  ``/opt/ml/input/data/<channel>``, where the Kubernetes executor mounts the dataset; a path that
  already exists in the image is a failure with a message (a link inside it would be silently wrong);
* **requirements**: when the code channel holds :data:`REQUIREMENTS_FILE`, it is installed with the first
  of ``pip``, ``pip3``, ``python3 -m pip``, ``python -m pip`` the image has, and the job fails with a
  message saying so when it has none, or with pip's status when pip fails;
* **SageMaker's variables**: the ``SM_*`` variables the SageMaker training toolkit sets
  (``sagemaker-training``, ``environment.py``) for hosts, current host, network interface, channels,
  model, input and output dirs. The channel names are the request's, so the executor writes
  ``SM_CHANNELS`` and ``SM_CHANNEL_<NAME>`` into the bootstrap at request time (a name that is no
  shell identifier, such as ``a-b``, gets no ``SM_CHANNEL_`` variable); ``SM_HOSTS``,
  ``SM_CURRENT_HOST`` and ``SM_NETWORK_INTERFACE_NAME`` are read at start from
  ``/opt/ml/input/config/resourceconfig.json`` with ``sh``'s own pattern removal (the first
  ``"hosts"`` list in the file: the cluster's hosts; its only instance group's in a homogeneous one).
  One that ``env.vars`` sets keeps that value: on Kubernetes the benchmark sees its ``env.vars``.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.expansion import expand
from sagemaker_executor.domain.quoting import shell_expansion
from sagemaker_executor.domain.shell import checked_benchmark_code, is_environment_variable_name, split_args

ML_ROOT = "/opt/ml"
CODE_CHANNEL = "anubis_code"
BOOTSTRAP = "bootstrap.sh"
SCRIPTS_DIR = "scripts"
REQUIREMENTS_FILE = "requirements.txt"
CHANNEL_ROOT = f"{ML_ROOT}/input/data"
CODE_PATH = f"{CHANNEL_ROOT}/{CODE_CHANNEL}"
SCRIPTS_PATH = f"{CODE_PATH}/{SCRIPTS_DIR}"
SCRIPTS_PATH_VARIABLE = "BAI_SCRIPTS_PATH"
RESOURCE_CONFIG = f"{ML_ROOT}/input/config/resourceconfig.json"


# sagemaker-training's environment.py: the fixed directories of the /opt/ml layout.
_TOOLKIT_DIRS = {
    "SM_MODEL_DIR": f"{ML_ROOT}/model",
    "SM_INPUT_DIR": f"{ML_ROOT}/input",
    "SM_INPUT_CONFIG_DIR": f"{ML_ROOT}/input/config",
    "SM_INPUT_DATA_CONFIG_DIR": f"{ML_ROOT}/input/config",
    "SM_OUTPUT_DIR": f"{ML_ROOT}/output",
    "SM_OUTPUT_DATA_DIR": f"{ML_ROOT}/output/data",
    "SM_OUTPUT_INTERMEDIATE_DIR": f"{ML_ROOT}/output/intermediate",
}

_HEAD = """\
#!/bin/sh
# Generated by sagemaker-executor: command mode (domain/bootstrap.py). Needs a POSIX sh, mkdir, ln.
# Its own variables are named anubis_* and not exported: the benchmark sees the job's environment.
anubis_fail() {
    echo "sagemaker-executor: $1" >&2
    exit "${2:-1}"
}
"""

# Pattern removal only: no sed, no JSON parser in the image. "${x#*pattern}" drops the shortest
# prefix, so each key's first occurrence is read.
_RESOURCE_CONFIG = """\
anubis_json=
if [ -r {config} ]; then
    while IFS= read -r anubis_line || [ -n "$anubis_line" ]; do
        anubis_json="$anubis_json$anubis_line"
    done < {config}
fi
case $anubis_json in *'"current_host"'*)
    anubis_rest=${{anubis_json#*'"current_host"'}}
    anubis_rest=${{anubis_rest#*'"'}}
    [ -n "${{SM_CURRENT_HOST+set}}" ] || export SM_CURRENT_HOST="${{anubis_rest%%'"'*}}"
esac
case $anubis_json in *'"network_interface_name"'*)
    anubis_rest=${{anubis_json#*'"network_interface_name"'}}
    anubis_rest=${{anubis_rest#*'"'}}
    [ -n "${{SM_NETWORK_INTERFACE_NAME+set}}" ] || export SM_NETWORK_INTERFACE_NAME="${{anubis_rest%%'"'*}}"
esac
case $anubis_json in *'"hosts"'*)
    anubis_rest=${{anubis_json#*'"hosts"'}}
    anubis_rest=${{anubis_rest#*'['}}
    [ -n "${{SM_HOSTS+set}}" ] || export SM_HOSTS="[${{anubis_rest%%']'*}}]"
esac
"""

# The Kubernetes executor's init container leaves the scripts at mode 777; S3 keeps no file modes.
_MODES = """\
if [ -d {path} ]; then
    chmod -R 777 {path} 2>/dev/null ||
        echo "sagemaker-executor: could not make the scripts under {path} executable (chmod -R 777)" >&2
fi
"""

_LINK = """\
anubis_link() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        anubis_fail "cannot put the dataset of channel '$3' at $1 (data.sources[].path): \\
it already exists in the image"
    fi
    mkdir -p "$2" && ln -s "$anubis_channel_root/$3" "$1" ||
        anubis_fail "cannot link $1 (data.sources[].path) to the dataset of channel '$3'"
}
"""

_PIP = """\
if [ -f {path} ]; then
if command -v pip >/dev/null 2>&1; then
    anubis_pip=pip
elif command -v pip3 >/dev/null 2>&1; then
    anubis_pip=pip3
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    anubis_pip="python3 -m pip"
elif command -v python >/dev/null 2>&1 && python -m pip --version >/dev/null 2>&1; then
    anubis_pip="python -m pip"
else
    anubis_fail "the benchmark has requirements to install (ml.script's requirements.txt, \\
custom_params.requirements), but the image has no pip (pip, pip3, python3 -m pip, python -m pip): \\
use an image with pip, or install them in the image"
fi
$anubis_pip install -r {path}
anubis_status=$?
if [ "$anubis_status" -ne 0 ]; then
    anubis_fail "installing the benchmark's requirements with $anubis_pip failed \\
(exit status $anubis_status)" "$anubis_status"
fi
fi
"""


@dataclass(frozen=True)
class DataLink:
    """A dataset's descriptor ``data.sources[].path`` and the input channel that holds it."""

    path: str
    channel: str


def container_entrypoint() -> list[str]:
    """The job's ``AlgorithmSpecification.ContainerEntrypoint`` in command mode."""
    return ["sh", f"{CODE_PATH}/{BOOTSTRAP}"]


def command_text(benchmark_code: str, args: str | None, variables: Mapping[str, str]) -> str:
    """The shell command the bootstrap runs: ``benchmark_code`` and ``ml.args``, expanded as Kubernetes does.

    ``variables`` is the container's environment as the descriptor defines it (``env.vars`` and
    ``BAI_SCRIPTS_PATH``): only those are expanded, as on Kubernetes, where the image's own variables
    are not known either. Raises :class:`DescriptorError` for a blank command, a NUL character (no
    shell can read it) and ``ml.args`` that ``shlex.split`` cannot split (unbalanced quotes).
    """
    # Windows line ends: the shell would read each line's last word with a "\r" ("train.py\r"), where
    # Kubernetes' shlex.split reads it as the space it is meant to be.
    code = checked_benchmark_code(benchmark_code).replace("\r\n", "\n").rstrip("\n")
    command, ending = shell_expansion(code, variables)
    words = split_args(args) if args else []
    if not words:
        return _fitting(command)
    if ending is not None:
        raise DescriptorError(
            "ml.args",
            f"cannot be appended to ml.benchmark_code, which ends in {ending}: the shell would not read "
            "them as the command's arguments; put them in ml.benchmark_code",
        )
    return _fitting(command + " " + " ".join(shlex.quote(expand(word, variables)) for word in words))


# Linux's limit on one argument of exec (MAX_ARG_STRLEN, 32 pages of 4 KiB), its NUL included: the
# command is the argument of "sh -c", which exec refused past it ("Argument list too long").
MAX_COMMAND_BYTES = 32 * 4096 - 1


def _fitting(command: str) -> str:
    """``command``, when ``exec`` takes it as one argument; :class:`DescriptorError` otherwise."""
    size = len(command.encode("utf-8", "surrogatepass"))
    if size > MAX_COMMAND_BYTES:
        raise DescriptorError(
            "ml.benchmark_code",
            f"is {size:,} bytes with ml.args and the $(VAR) values; the command runs as one argument of "
            f"'sh -c', which Linux takes up to {MAX_COMMAND_BYTES:,} bytes: put the code in a --script "
            "and run that",
        )
    return command


def _unless_set(name: str, quoted: str) -> str:
    """Exports ``name`` unless the job's environment has it: env.vars win, as on Kubernetes."""
    return f'[ -n "${{{name}+set}}" ] || export {name}={quoted}'


def render_bootstrap(
    command: str,
    channels: Sequence[str],
    data_links: Sequence[DataLink] = (),
    requirements: bool = False,
    scripts: bool = False,
) -> str:
    """The text of :data:`BOOTSTRAP` for ``command`` (from :func:`command_text`).

    ``channels`` are every input channel of the request (the code channel included, as the toolkit's
    ``SM_CHANNELS`` would list it); ``requirements`` says whether the code channel may hold
    :data:`REQUIREMENTS_FILE` (from the scripts, known only once they are unpacked, or from
    ``custom_params.requirements``): the bootstrap installs it when it is there. A data
    link's path is normalised; a relative one is refused (:class:`DescriptorError`), as Kubernetes
    refuses a relative mount path. ``scripts``: the code channel holds the unpacked ``--script``
    tarballs under :data:`SCRIPTS_DIR`, which the bootstrap makes mode 777 first, as the Kubernetes
    executor leaves them (S3 keeps no modes; without ``chmod`` in the image it says so and goes on).
    """
    lines = [_HEAD.rstrip("\n"), f"anubis_channel_root={shlex.quote(CHANNEL_ROOT)}"]
    lines.append("# The SageMaker training toolkit's variables (sagemaker-training, environment.py).")
    for name, value in _TOOLKIT_DIRS.items():
        lines.append(_unless_set(name, shlex.quote(value)))
    lines.append(_unless_set("SM_CHANNELS", shlex.quote(json.dumps(sorted(channels)))))
    for channel in sorted(channels):
        variable = "SM_CHANNEL_" + channel.upper()
        if is_environment_variable_name(variable):
            lines.append(_unless_set(variable, shlex.quote(f"{CHANNEL_ROOT}/{channel}")))
    lines.append(_RESOURCE_CONFIG.format(config=shlex.quote(RESOURCE_CONFIG)).rstrip("\n"))
    if scripts:
        lines.append(_MODES.format(path=shlex.quote(SCRIPTS_PATH)).rstrip("\n"))
    if data_links:
        lines.append("# Each dataset also where the Kubernetes executor mounts it: data.sources[].path.")
        lines.append(_LINK.rstrip("\n"))
        lines.extend(_link_lines(data_links))
    if requirements:
        path = shlex.quote(f"{CODE_PATH}/{REQUIREMENTS_FILE}")
        lines.append(_PIP.format(path=path).rstrip("\n"))
    lines.append("# The benchmark: under sh -c, in the image's working directory; its status is the job's.")
    lines.append(f"anubis_command={shlex.quote(command)}")
    lines.append('exec sh -c "$anubis_command" sh')
    return "\n".join(lines) + "\n"


def _link_lines(data_links: Sequence[DataLink]) -> list[str]:
    """One ``anubis_link`` line per dataset, parents first; :class:`DescriptorError` for a relative
    path, the root, or two datasets at one path."""
    linked: dict[str, int] = {}
    for index, link in enumerate(data_links):
        if not link.path.startswith("/"):
            raise DescriptorError(
                f"data.sources[{index}].path", f"must be an absolute path, got {link.path!r}"
            )
        path = "/" + posixpath.normpath(link.path).lstrip("/")  # "//x" is "/x" on Linux
        if path == "/":
            raise DescriptorError(f"data.sources[{index}].path", "must not be the root directory")
        if path in linked:
            raise DescriptorError(
                f"data.sources[{index}].path",
                f"{path!r} is also data.sources[{linked[path]}].path: two datasets cannot be at one path",
            )
        linked[path] = index
    # A parent before the paths under it: linking "/data" after "/data/x" made "/data" a directory
    # first, and the link then failed as a path that "already exists in the image".
    lines = []
    for path in sorted(linked, key=lambda each: each.split("/")):
        parent = posixpath.dirname(path)
        channel = data_links[linked[path]].channel
        lines.append(f"anubis_link {shlex.quote(path)} {shlex.quote(parent)} {shlex.quote(channel)}")
    return lines
