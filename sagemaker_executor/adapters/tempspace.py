"""The executor's own temp space (``TMP_SOURCES_DIR``, the system temp dir): private work directories
in it, how a file is created there, and its failures as ``OutageError("disk")``.

Used by ``adapters.sourcedir`` and ``adapters.untar`` (a job's source directory), ``adapters.s3`` (a
fetched script archive) and ``adapters.sagemaker`` (the packed source). It exists so that one rule
decides whose fault a failing disk is: the executor's own temp space being full, over quota,
read-only or not writable (:data:`DISK_ERRNOS`) is never the user's fault but an outage, retried until
an operator fixes it, and never a user-facing ERROR.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sagemaker_executor.domain.errors import OutageError

log = logging.getLogger(__name__)

# A new file, never one that exists and never through a symbolic link.
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# What an OSError in the temp space means. The executor's own temp space failing is not the user's
# fault: an OutageError, retried until an operator fixes it.
DISK_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
    }
)
_DISK_FIX = "free space (or inodes, or quota) in TMP_SOURCES_DIR, or make it writable by the executor"


@contextlib.contextmanager
def private_workdir(root: Path, prefix: str) -> Iterator[Path]:
    """A new private (0o700) directory named ``<prefix>...`` under ``root``, which is created if missing;
    removed with everything in it afterwards (what cannot be removed is logged, not raised).

    Raises ``OutageError("disk")`` when ``root`` cannot hold it: that is the executor's set-up
    (``TMP_SOURCES_DIR``), never the user's fault.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    except OSError as error:
        raise temp_space_outage(error, f"creating a temporary directory in {str(root)!r}") from error
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            log.warning("could not remove all of %s from the temp space", workdir)


def temp_space_outage(error: OSError, doing: str) -> OutageError:
    """The executor's own temp space failed while ``doing`` something: ``OutageError("disk")``."""
    code = errno.errorcode.get(error.errno or 0, str(error.errno))
    return OutageError("disk", f"{doing} failed: {error.strerror or error} ({code})", _DISK_FIX)


@contextlib.contextmanager
def own_disk_failures(what: str) -> Iterator[None]:
    """The executor's own disk failing while ``what`` is ``OutageError("disk")``; other errors pass."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_ERRNOS:
            raise
        raise temp_space_outage(error, what) from error
