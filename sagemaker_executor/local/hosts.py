"""Local SageMaker, run mode: one host of a training job on this machine.

Owns what the job runner (``local.runner``; ``local.runningjob`` drives each job) does per host
``algo-<n>``: its directory ``algo-<n>/`` under the job directory, holding ``ml/`` (the host's
``/opt/ml``: ``input/config/`` with the three files ``local.jobspec`` writes, ``input/data/``,
``model/``, ``output/data/``), ``work/`` (the working directory: empty, or a copy of the image's
stand-in WORKDIR), ``home/`` (``$HOME``), ``hosts`` (its ``/etc/hosts``) and ``started``; the
command line that runs its command in namespaces of its own (``launcher``: ``setpriv --pdeathsig
KILL unshare --mount --uts --pid --fork --kill-child --mount-proc sh -c SETUP``, where SETUP
bind-mounts ``ml/`` at ``/opt/ml`` and ``hosts`` at ``/etc/hosts``, sets the hostname, touches
``started`` and ``exec``s the command) and whether this machine can run it (``cannot_isolate``:
root, ``unshare`` and ``mount``); SIGTERM to its first process and SIGKILL to all of them, as
``docker stop`` does; the ``FailureReason`` of a host that exited non-zero; and ``tar_gz``, several
hosts' output directories as one archive.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sagemaker_executor.local import jobspec
from sagemaker_executor.local.jobspec import JobSpec

ML_ROOT = "/opt/ml"

# Runs as the first process of the host's namespaces. "$1" is mount(8): the job's own PATH may lack it.
_SETUP = """set -e
"$1" --bind "$2" /opt/ml
"$1" --bind "$3" /etc/hosts
printf '%s\\n' "$4" > /proc/sys/kernel/hostname
: > "$5"
shift 5
exec "$@"
"""


class Host:
    """One host of a job: its directories, its process and what its output said last."""

    def __init__(self, root: Path, index: int) -> None:
        self.index = index
        self.name = f"algo-{index}"
        self.root = root / self.name
        self.ml = self.root / "ml"
        self.work = self.root / "work"
        self.home = self.root / "home"
        self.hosts_file = self.root / "hosts"
        self.started = self.root / "started"  # written by _SETUP just before the command
        self.stream = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.reader: threading.Thread | None = None
        self.exit_code: int | None = None
        self.tail: deque[str] = deque(maxlen=5)

    def signal_first_process(self, signum: int) -> None:
        """Signals the host's first process (PID 1 of its namespace), as ``docker stop`` signals a
        container's; the setpriv/unshare process above it would ignore SIGTERM."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        except OSError:
            children = []
        try:
            if children:
                os.kill(int(children[0]), signum)
            else:  # not forked yet: the whole group
                os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the host's process group; unshare's --kill-child and the end of the PID
        namespace take every other process of the host with it."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def lay_out(self, spec: JobSpec, workdir: Path | None, hosts_text: str, config: dict[str, Any]) -> None:
        """Creates the host's directories, its hosts file and ``/opt/ml/input/config``'s files
        (``config`` and the host's own ``resourceconfig.json``); ``workdir``: the image's WORKDIR."""
        for layout in ("input/config", "input/data", "model", "output/data"):
            (self.ml / layout).mkdir(parents=True)
        if workdir is not None:  # the image's WORKDIR, as a directory of this machine
            shutil.copytree(workdir, self.work, symlinks=True)
        else:
            self.work.mkdir()
        self.home.mkdir()
        self.hosts_file.write_text(hosts_text)
        files = config | {"resourceconfig.json": jobspec.resource_config(spec, self.name)}
        for name, content in files.items():
            (self.ml / "input" / "config" / name).write_text(json.dumps(content))

    def failure_reason(self) -> str:
        """The job's ``FailureReason`` when this host has exited non-zero."""
        assert self.exit_code is not None
        if not self.started.exists():
            said = " | ".join(self.tail) or "no output"
            return (
                f"InternalServerError: local SageMaker: could not give host {self.name} a private "
                f"{ML_ROOT} (unshare and mount --bind, as root): {said}"
            )
        try:
            failure = (self.ml / "output" / "failure").read_text(errors="replace")
        except OSError:
            failure = ""
        return jobspec.algorithm_error(self.exit_code, failure)


def tar_gz(directories: Iterable[Path]) -> bytes:
    """The directories' contents in one gzipped tar, as SageMaker aggregates several hosts' output."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for directory in directories:
            for entry in sorted(directory.iterdir()):
                archive.add(entry, arcname=entry.name)
    return buffer.getvalue()


def cannot_isolate(unshare: str) -> str | None:
    """Why a job cannot get a private /opt/ml here, or None; ``unshare``: the unshare command."""
    if os.geteuid() != 0:
        return (
            f"running a training job needs root here, for a private {ML_ROOT} per host (unshare and "
            f"mount --bind); this process runs as uid {os.geteuid()}"
        )
    if shutil.which(unshare) is None or shutil.which("mount") is None:
        return f"running a training job needs {unshare} and mount, for a private {ML_ROOT} per host"
    try:
        os.makedirs(ML_ROOT, exist_ok=True)
    except OSError as error:
        return f"cannot create the mount point {ML_ROOT}: {error}"
    return None


def launcher(unshare: str) -> Sequence[str]:
    """The command line before a host's arguments (``_SETUP``'s "$2".."$5") and its command."""
    namespaces = [unshare, "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc"]
    namespaces += ["--propagation", "private"]
    setpriv = shutil.which("setpriv")
    # If this process dies, setpriv's parent-death signal kills unshare and --kill-child the rest.
    prefix = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
    mount = shutil.which("mount") or "mount"
    return [*prefix, *namespaces, "/bin/sh", "-c", _SETUP, "local-sagemaker-setup", mount]
