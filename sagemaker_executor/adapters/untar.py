"""Unpacks a user's (untrusted) script archive into a directory on local disk: :func:`extract_tar_safely`,
the one place an archive touches the disk.

``adapters.sourcedir`` calls it once per ``ml.script`` archive while it builds a job's source directory;
the archive is read through ``adapters.tarstream`` (plain or gzip'd tar, as a stream). It is a module of
its own because every line of it is a security decision (the archive comes from any Anubis user):

* Only regular files and directories are unpacked. Every link (symbolic or hard) is refused, whatever
  its target: checking targets is where extractors keep getting it wrong (links to ``..``, a link then
  a file written through it), and a benchmark's scripts do not need them. Device nodes, FIFOs and
  unknown member types are refused too.
* Names: no NUL, not empty, not absolute, no ``..`` component anywhere, no component over 255 bytes,
  and the joined path must stay under the destination. Where Python has ``tarfile.data_filter``
  (3.11.4+) it runs as a second layer after these checks; the behaviour does not depend on it.
* Sizes: the members' declared sizes are summed and checked against the budget before any data is
  read; the bytes actually written are counted too. The decompressed tar stream itself is capped, so
  a gzip bomb hidden in a long-name or pax header cannot exhaust memory. At most ``max_members``.
* Files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and get mode 0o644, or 0o755 when the
  archive marks them executable; directories get 0o755. Ownership, setuid/setgid/sticky bits and
  times from the archive are ignored. Nothing existing is overwritten: not the generated entry
  files, not a file from an earlier archive, not a duplicate member.
* A rejected archive leaves nothing behind: everything it created is removed again, and nothing is
  ever written outside the destination. The destination is expected to be a fresh private directory.
* Whose fault a failure is: a member the file system refuses (a path longer than it allows, bytes it
  will not take as a name, ...) is a refused archive, which the user sees in an ERROR naming the
  archive and the member (names in messages are cut to 120 characters). The executor's own disk
  failing (full, over quota, read-only, not writable) is ``OutageError("disk")`` (``adapters.tempspace``):
  retried, never the user's ERROR. Any other ``OSError`` is unexpected and propagates as it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tarfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import BinaryIO

from sagemaker_executor.adapters.tarstream import (
    READ_ERRORS,
    UnsafeArchiveError,
    members,
    open_tar_stream,
    unreadable,
)
from sagemaker_executor.adapters.tempspace import DISK_ERRNOS, NEW_FILE_FLAGS, temp_space_outage
from sagemaker_executor.domain.errors import OutageError

# Tar stream bytes allowed per member beyond its data: the 512-byte header, a pax or GNU long-name
# record, and padding to the next block.
_STREAM_OVERHEAD_PER_MEMBER = 8 * 1024
_STREAM_OVERHEAD = 1024 * 1024
_MAX_NAME_COMPONENT_BYTES = 255
_COPY_CHUNK = 1024 * 1024
# The file system refusing what a member asks for (its name's length or bytes, its depth, its size):
# the archive's fault, a refused archive. Any other errno is unexpected and left to propagate.
_MEMBER_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL, errno.ENOTDIR, errno.ELOOP, errno.EMLINK, errno.EFBIG}
)


def extract_tar_safely(
    fileobj: BinaryIO,
    dest: Path,
    *,
    archive_name: str,
    max_total_bytes: int,
    max_members: int = 10000,
    reserved: Collection[str] = (),
) -> list[str]:
    """Unpack the (plain or gzip'd) tar ``fileobj`` into the existing directory ``dest``.

    Returns the unpacked members' paths relative to ``dest`` (``/``-separated, normalised), in archive
    order. ``reserved`` are top-level names the archive may not create (the generated entry files).
    Raises :class:`UnsafeArchiveError`, naming ``archive_name``, the member and the reason, after
    removing everything this call created; see the module docstring for what is refused. An
    ``OSError`` while creating a member is the archive's fault when the file system refuses the
    member itself (ENAMETOOLONG, EILSEQ, EINVAL, ...: :class:`UnsafeArchiveError`), and
    ``OutageError("disk")`` when the executor's disk fails (ENOSPC, EDQUOT, EROFS, EACCES, ...); any
    other errno propagates unchanged.
    """
    root = Path(os.path.realpath(dest))
    if not root.is_dir():
        raise NotADirectoryError(f"destination {str(dest)!r} is not a directory")
    created: list[Path] = []
    try:
        return _extract(fileobj, root, archive_name, max_total_bytes, max_members, reserved, created)
    except BaseException:
        _remove(created)
        raise


def _extract(
    fileobj: BinaryIO,
    root: Path,
    archive_name: str,
    max_total_bytes: int,
    max_members: int,
    reserved: Collection[str],
    created: list[Path],
) -> list[str]:
    extracted: list[str] = []
    declared = written = 0
    stream_limit = max_total_bytes + (max_members + 1) * _STREAM_OVERHEAD_PER_MEMBER + _STREAM_OVERHEAD
    with open_tar_stream(fileobj, archive_name, stream_limit) as tar:
        for member in members(tar, archive_name):
            if len(extracted) >= max_members:
                raise UnsafeArchiveError(archive_name, None, f"has more than {max_members} members")
            parts = _checked_parts(member, root, archive_name, reserved)
            _check_type(member, archive_name)
            _second_opinion(member, root, archive_name)
            if member.isreg():
                declared += member.size
                if declared > max_total_bytes:
                    raise UnsafeArchiveError(
                        archive_name,
                        member.name,
                        f"(declared {member.size} bytes) takes the archive's files past the limit of "
                        f"{max_total_bytes} bytes",
                    )
            relative = "/".join(parts)
            extracted.append(relative or ".")
            if not parts:
                continue  # the archive's "./" entry: dest itself
            try:
                if member.isdir():
                    _make_dirs(root, parts, created, archive_name, member.name)
                    continue
                _make_dirs(root, parts[:-1], created, archive_name, member.name)
                written += _write_file(
                    tar, member, root.joinpath(*parts), max_total_bytes - written, created, archive_name
                )
            except OSError as error:
                refusal = _refused_by_os(error, archive_name, member.name, relative, root)
                if refusal is None:
                    raise
                raise refusal from error
    return [name for name in extracted if name != "."]


def _refused_by_os(
    error: OSError, archive_name: str, member: str, relative: str, root: Path
) -> UnsafeArchiveError | OutageError | None:
    """Whose fault an OSError raised while creating ``member`` is: the archive's (a refused archive),
    the executor's temp space (an outage), or nobody known (None: let it propagate as a bug)."""
    code = errno.errorcode.get(error.errno or 0, str(error.errno))
    if error.errno in DISK_ERRNOS:
        return temp_space_outage(error, f"unpacking benchmark scripts into {str(root)!r}")
    if error.errno not in _MEMBER_ERRNOS:
        return None
    if error.errno == errno.ENAMETOOLONG:
        size = len(relative.encode("utf-8", "surrogateescape"))
        reason = f"cannot be created: its path of {size} bytes is longer than the file system allows ({code})"
    else:
        reason = f"cannot be created: the file system refuses it ({code}: {error.strerror})"
    return UnsafeArchiveError(archive_name, member, reason)


def _checked_parts(
    member: tarfile.TarInfo, root: Path, archive_name: str, reserved: Collection[str]
) -> list[str]:
    name = member.name

    def refuse(reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(archive_name, name, reason)

    if "\x00" in name:
        raise refuse("has a NUL character in its name")
    if not name:
        raise refuse("has an empty name")
    if name.startswith("/"):
        raise refuse("is an absolute path")
    components = name.split("/")
    if ".." in components:
        raise refuse("has a '..' path component")
    parts = [part for part in components if part not in ("", ".")]
    if not parts and not member.isdir():
        raise refuse("names the destination directory itself")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_COMPONENT_BYTES:
            raise refuse(f"has a path component longer than {_MAX_NAME_COMPONENT_BYTES} bytes")
    target = os.path.normpath(os.path.join(root, *parts))
    if os.path.commonpath([root, target]) != str(root):
        raise refuse("resolves outside the destination directory")
    if parts and parts[0] in reserved:
        raise refuse(f"would overwrite the generated entry file {parts[0]!r}")
    return parts


def _check_type(member: tarfile.TarInfo, archive_name: str) -> None:
    only = "only regular files and directories are accepted"
    reason = None
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        reason = (
            f"is a {kind} link (to {member.linkname!r}); links are not accepted "
            "(archive what they point to instead, e.g. with 'tar --dereference')"
        )
    elif member.ischr() or member.isblk():
        reason = f"is a {'character' if member.ischr() else 'block'} device node; {only}"
    elif member.isfifo():
        reason = f"is a FIFO; {only}"
    elif not (member.isreg() or member.isdir()):
        reason = f"has the unsupported tar type {member.type!r}; {only}"
    elif member.size < 0:
        reason = f"declares a negative size ({member.size})"
    if reason is not None:
        raise UnsafeArchiveError(archive_name, member.name, reason)


def _second_opinion(member: tarfile.TarInfo, root: Path, archive_name: str) -> None:
    """Run Python's own ``data`` filter (3.11.4+) as well; our checks above should already refuse
    everything it would."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    try:
        data_filter(member, str(root))
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(
            archive_name, member.name, f"is refused by tarfile's data filter: {exc}"
        ) from exc


def _make_dirs(root: Path, parts: Sequence[str], created: list[Path], archive_name: str, member: str) -> None:
    current = root
    for part in parts:
        current = current / part
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise UnsafeArchiveError(
                    archive_name,
                    member,
                    f"needs the directory {current.relative_to(root).as_posix()!r}, "
                    "but something else of that name already exists",
                ) from None
        else:
            created.append(current)
            os.chmod(current, 0o755)  # noqa: S103 - exactly this, whatever the umask


def _write_file(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    path: Path,
    budget: int,
    created: list[Path],
    archive_name: str,
) -> int:
    try:
        fd = os.open(path, NEW_FILE_FLAGS, 0o600)
    except FileExistsError:
        raise UnsafeArchiveError(
            archive_name,
            member.name,
            "would overwrite a file that already exists (a duplicate member, a file from an earlier "
            "archive, or a directory of that name)",
        ) from None
    except IsADirectoryError:
        raise UnsafeArchiveError(
            archive_name, member.name, "would overwrite a directory that already exists"
        ) from None
    created.append(path)
    written = 0
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o755 if member.mode & 0o111 else 0o644)
        try:
            source = tar.extractfile(member)
        except READ_ERRORS as exc:
            raise unreadable(archive_name, exc) from exc
        if source is None:  # pragma: no cover - only regular files get here
            return 0
        while True:
            try:
                chunk = source.read(_COPY_CHUNK)
            except READ_ERRORS as exc:
                raise unreadable(archive_name, exc) from exc
            if not chunk:
                break
            written += len(chunk)
            if written > budget:
                raise UnsafeArchiveError(
                    archive_name, member.name, "takes the archive's files past the size limit"
                )
            out.write(chunk)
    return written


def _remove(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                os.rmdir(path)
            else:
                os.unlink(path)
