"""Builds a training job's source directory on local disk from the user's (untrusted) script archives.

Called by the submission path before the SageMaker adapter uploads the directory (``adapters.sagemaker``:
one archive in script mode, one object per file in command mode). :func:`build_source_dir` writes the
generated entry files (``domain.entrypoint``'s in script mode, ``domain.bootstrap``'s in command mode),
unpacks every ``ml.script`` archive next to them (script mode, as the original did) or under a
directory of their own (command mode's ``scripts/``, which is ``BAI_SCRIPTS_PATH``), and writes the
root ``requirements.txt`` that SageMaker's training toolkit or the bootstrap pip-installs, in a
:func:`private_workdir`. :func:`extract_tar_safely` is the one place an archive
touches the disk.

Security decisions (the archive comes from any Anubis user):

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
  failing (full, over quota, read-only, not writable) is ``OutageError("disk")``: retried, never the
  user's ERROR. Any other ``OSError`` is unexpected and propagates as it is.

The archive is read as a stream (plain or gzip'd tar), so ``fileobj`` only needs ``read()``.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import os
import re
import shlex
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from sagemaker_executor.domain.errors import OutageError, ScriptRejected

log = logging.getLogger(__name__)

REQUIREMENTS_TXT = "requirements.txt"

_GZIP_MAGIC = b"\x1f\x8b"
# Tar stream bytes allowed per member beyond its data: the 512-byte header, a pax or GNU long-name
# record, and padding to the next block.
_STREAM_OVERHEAD_PER_MEMBER = 8 * 1024
_STREAM_OVERHEAD = 1024 * 1024
_MAX_NAME_COMPONENT_BYTES = 255
_COPY_CHUNK = 1024 * 1024
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# Errors that mean "this is not a readable (gzip'd) tar stream".
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
# What an OSError while unpacking means. The executor's own temp space failing is not the user's fault:
# an OutageError, retried until an operator fixes it.
_DISK_ERRNOS = frozenset(
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
# The file system refusing what a member asks for (its name's length or bytes, its depth, its size):
# the archive's fault, a refused archive. Any other errno is unexpected and left to propagate.
_MEMBER_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL, errno.ENOTDIR, errno.ELOOP, errno.EMLINK, errno.EFBIG}
)
_DISK_FIX = "free space (or inodes, or quota) in TMP_SOURCES_DIR, or make it writable by the executor"
# S3 keys are at most 1,024 bytes; the prefix "<job name, at most 63>/source/anubis_code/scripts/" is at
# most 92, so a member's path under the scripts keeps at most this many.
_MAX_KEY_NAME_BYTES = 1024 - 92
_SHOWN_NAME_CHARS = 120  # an archive or member name in a message; longer ones keep their start and end
# Top-level directory names that can be written after "-r" in requirements.txt without pip reading
# them as a comment ("#"), an environment variable ("${...}"), an option or a continuation.
_REQUIREMENTS_DIR_NAME = re.compile(r"[A-Za-z0-9_.+@][A-Za-z0-9_.+@ -]*")


class UnsafeArchiveError(ScriptRejected, ValueError):
    """A script archive that was refused (unsafe, too large, or not a readable tar); permanent."""

    def __init__(self, archive_name: str, member: str | None, reason: str) -> None:
        where = f"script archive {shown_name(archive_name)}"
        if member is not None:
            where += f": member {shown_name(member)}"
        super().__init__(f"{where} {reason}")
        self.archive_name = archive_name
        self.member = member
        self.reason = reason


def shown_name(name: str) -> str:
    """``repr(name)``, cut in the middle to at most :data:`_SHOWN_NAME_CHARS` characters (ASCII-safe
    for lone surrogates, since ``repr`` escapes them)."""
    text = repr(name)
    if len(text) <= _SHOWN_NAME_CHARS:
        return text
    keep = (_SHOWN_NAME_CHARS - 3) // 2
    return f"{text[:keep]}...{text[-keep:]}"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Prefixed:
    """``head`` followed by the rest of ``tail``: lets us sniff the gzip magic of a non-seekable stream."""

    def __init__(self, head: bytes, tail: _Readable) -> None:
        self._head = head
        self._tail = tail

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._tail.read(size)
        if size < 0:
            data, self._head = self._head + self._tail.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


class _CappedStream:
    """The decompressed tar stream, refused once it grows past ``limit`` bytes."""

    def __init__(self, inner: _Readable, limit: int, archive_name: str) -> None:
        self._inner = inner
        self._limit = limit
        self._archive_name = archive_name
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        allowed = self._limit - self._position
        want = allowed + 1 if size < 0 else min(size, allowed + 1)
        data = self._inner.read(want)
        if len(data) > allowed:
            raise UnsafeArchiveError(
                self._archive_name, None, f"unpacks to more than {self._limit} bytes of tar data"
            )
        self._position += len(data)
        return data


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
    with _open_tar_stream(fileobj, archive_name, stream_limit) as tar:
        for member in _members(tar, archive_name):
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
    if error.errno in _DISK_ERRNOS:
        return temp_space_outage(error, f"unpacking benchmark scripts into {str(root)!r}")
    if error.errno not in _MEMBER_ERRNOS:
        return None
    if error.errno == errno.ENAMETOOLONG:
        size = len(relative.encode("utf-8", "surrogateescape"))
        reason = f"cannot be created: its path of {size} bytes is longer than the file system allows ({code})"
    else:
        reason = f"cannot be created: the file system refuses it ({code}: {error.strerror})"
    return UnsafeArchiveError(archive_name, member, reason)


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
def _open_tar_stream(fileobj: BinaryIO, archive_name: str, limit: int) -> Iterator[tarfile.TarFile]:
    head = _read_exactly(fileobj, len(_GZIP_MAGIC))
    source: _Readable = _Prefixed(head, fileobj)
    if head == _GZIP_MAGIC:
        source = gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[call-overload]
    capped = _CappedStream(source, limit, archive_name)
    try:
        # Stream mode ("r|"): strictly forward reads, so no seeking and no re-reading of a gzip stream.
        tar = tarfile.open(fileobj=capped, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115
    except _READ_ERRORS as exc:
        raise _unreadable(archive_name, exc) from exc
    try:
        with tar:
            yield tar
    finally:
        if isinstance(source, gzip.GzipFile):
            source.close()  # does not close the caller's fileobj


def _read_exactly(fileobj: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = fileobj.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _members(tar: tarfile.TarFile, archive_name: str) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except _READ_ERRORS as exc:
            raise _unreadable(archive_name, exc) from exc
        if member is None:
            return
        yield member


def _unreadable(archive_name: str, exc: BaseException) -> UnsafeArchiveError:
    return UnsafeArchiveError(archive_name, None, f"is not a readable tar or tar.gz archive: {exc}")


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
        fd = os.open(path, _WRITE_FLAGS, 0o600)
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
        except _READ_ERRORS as exc:
            raise _unreadable(archive_name, exc) from exc
        if source is None:  # pragma: no cover - only regular files get here
            return 0
        while True:
            try:
                chunk = source.read(_COPY_CHUNK)
            except _READ_ERRORS as exc:
                raise _unreadable(archive_name, exc) from exc
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


def build_source_dir(
    dest: Path,
    archives: Iterable[tuple[str, BinaryIO]],
    entry_files: Mapping[str, str],
    requirements: Sequence[str],
    max_total_bytes: int,
    scripts_dir: str = "",
) -> None:
    """Fill ``dest`` (missing or empty) with the entry files, the unpacked archives and ``requirements.txt``.

    ``archives`` are ``(name, readable)`` pairs, unpacked in order into ``dest / scripts_dir`` (a plain
    directory name; ``""``: ``dest`` itself), sharing one budget of ``max_total_bytes``. The root
    ``requirements.txt`` (in ``dest``) gets, in this order: each archive's own root
    ``requirements.txt`` (taken out of the scripts; with a ``scripts_dir``, put back there, the others
    under free names beside it, and included with ``-r``, so that pip reads their relative ``-r`` and
    ``-c`` lines from the scripts), ``-r [<scripts_dir>/]<dir>/requirements.txt`` for
    every top-level directory of the scripts that has one (the anubis client tars a directory under its
    own name), then ``requirements`` (the descriptor's extra lines, which ``domain.requirements``
    checked when the descriptor was parsed), as they are. It is written only if any of these exists.

    Raises :class:`UnsafeArchiveError` for a refused archive (including a member the file system
    refuses); ``OutageError("disk")`` when the executor's own disk fails (no space, read-only, no
    permission); ``ValueError`` if ``dest`` is not empty or an entry file name is not a plain name.
    """
    with _own_disk_failures(f"assembling the source dir {str(dest)!r}"):
        root, reserved = _prepare(dest, entry_files, scripts_dir)
        root_requirements, owners = _unpack_all(archives, root, max_total_bytes, reserved, bool(scripts_dir))
        nested = [
            _include_line(entry.name, owners.get(entry.name, "?"), scripts_dir)
            for entry in sorted(root.iterdir(), key=lambda path: path.name)
            if _is_real_dir(entry) and _is_regular_file(entry / REQUIREMENTS_TXT)
        ]
        if scripts_dir:
            # Put back under the scripts, where pip resolves their relative "-r base.txt" lines.
            nested = _put_back(root, root_requirements, scripts_dir) + nested
            root_requirements = []
        merged = _requirements_txt(root_requirements, nested, requirements)
        if merged is not None:
            _write_new_file(dest / REQUIREMENTS_TXT, merged, 0o644)


@contextlib.contextmanager
def _own_disk_failures(what: str) -> Iterator[None]:
    """The executor's own disk failing while ``what`` is ``OutageError("disk")``; other errors pass."""
    try:
        yield
    except OSError as error:
        if error.errno not in _DISK_ERRNOS:
            raise
        raise temp_space_outage(error, what) from error


def _prepare(dest: Path, entry_files: Mapping[str, str], scripts_dir: str) -> tuple[Path, frozenset[str]]:
    """``dest`` with the entry files in it; where the archives go and the names they must not take."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"source directory {str(dest)!r} is not empty")
    for name, content in entry_files.items():
        _write_entry_file(dest, name, content)
    if not scripts_dir:
        return dest, frozenset(entry_files)
    if scripts_dir in entry_files:
        raise ValueError(f"scripts dir {scripts_dir!r} is also an entry file")
    return _write_entry_dir(dest, scripts_dir), frozenset()


def _unpack_all(
    archives: Iterable[tuple[str, BinaryIO]],
    root: Path,
    max_total_bytes: int,
    reserved: frozenset[str],
    as_keys: bool = False,
) -> tuple[list[bytes], dict[str, str]]:
    """Each archive into ``root`` in turn, sharing the budget: their root ``requirements.txt``
    contents, and which archive created each top-level name (for error messages). ``as_keys``: each
    file becomes an S3 object (command mode), so its name must be one (:func:`_check_key`)."""
    root_requirements: list[bytes] = []
    owners: dict[str, str] = {}
    budget = max_total_bytes
    for archive_name, fileobj in archives:
        names = extract_tar_safely(
            fileobj, root, archive_name=archive_name, max_total_bytes=budget, reserved=reserved
        )
        for name in names:
            if as_keys:
                _check_key(name, archive_name)
            owners.setdefault(name.split("/", 1)[0], archive_name)
            info = os.lstat(root / name)
            if stat.S_ISREG(info.st_mode):
                budget -= info.st_size
        if REQUIREMENTS_TXT in names:
            # Taken out now, so the next archive may bring its own; merged into the final file below.
            root_requirements.append(_take_root_requirements(root, archive_name))
    return root_requirements, owners


def _check_key(name: str, archive_name: str) -> None:
    """Refuses a member that cannot be an S3 key under ``<job>/source/anubis_code/scripts/``: not UTF-8
    (tar names are bytes; boto3 raised UnicodeEncodeError), with a control character (S3's guidance:
    characters to avoid), or past S3's 1,024 bytes with that prefix."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise UnsafeArchiveError(
            archive_name, name, "has a name that is not UTF-8, which the S3 key of its file must be"
        ) from None
    if any(ord(char) < 0x20 or char == "\x7f" for char in name):
        # S3's listings are XML 1.0, which cannot carry most of them: SageMaker lists the channel's keys.
        raise UnsafeArchiveError(
            archive_name, name, "has a control character in its name, which S3 keys should not hold"
        )
    if size > _MAX_KEY_NAME_BYTES:
        raise UnsafeArchiveError(
            archive_name,
            name,
            f"has a path of {size} bytes; with the code channel's prefix it must fit S3's 1,024-byte keys "
            f"(at most {_MAX_KEY_NAME_BYTES} bytes)",
        )


def _write_entry_file(dest: Path, name: str, content: str) -> None:
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise ValueError(f"entry file name {name!r} is not a plain file name")
    _write_new_file(dest / name, content.encode("utf-8"), 0o755)


def _write_entry_dir(dest: Path, name: str) -> Path:
    if "/" in name or "\x00" in name or name in (".", ".."):
        raise ValueError(f"scripts dir {name!r} is not a plain directory name")
    (dest / name).mkdir(mode=0o755)
    return dest / name


def _write_new_file(path: Path, content: bytes, mode: int) -> None:
    fd = os.open(path, _WRITE_FLAGS, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)
        out.write(content)


def _take_root_requirements(dest: Path, archive_name: str) -> bytes:
    path = dest / REQUIREMENTS_TXT
    if not _is_regular_file(path):
        raise UnsafeArchiveError(
            archive_name, REQUIREMENTS_TXT, "is not a regular file, but pip installs it as one"
        )
    content = path.read_bytes()
    path.unlink()
    return content


def _put_back(root: Path, contents: Sequence[bytes], scripts_dir: str) -> list[str]:
    """Each archive's root ``requirements.txt`` written back under ``root`` (the first as it was, the
    others beside it under a free name); the ``-r`` lines of the merged file that include them."""
    lines = []
    for index, content in enumerate(contents):
        name = REQUIREMENTS_TXT if index == 0 else f"requirements.{index + 1}.txt"
        while os.path.lexists(root / name):
            name = "_" + name
        _write_new_file(root / name, content, 0o644)
        lines.append(f"-r {shlex.quote(f'{scripts_dir}/{name}')}")
    return lines


def _include_line(dir_name: str, archive_name: str, scripts_dir: str) -> str:
    if not _REQUIREMENTS_DIR_NAME.fullmatch(dir_name):
        raise UnsafeArchiveError(
            archive_name,
            f"{dir_name}/{REQUIREMENTS_TXT}",
            "is in a directory whose name cannot be referenced from requirements.txt; "
            "use letters, digits, spaces and '_.+@-' (not starting with '-')",
        )
    path = "/".join(part for part in (scripts_dir, dir_name, REQUIREMENTS_TXT) if part)
    return f"-r {shlex.quote(path)}"


def _requirements_txt(root: Sequence[bytes], nested: Sequence[str], extra: Sequence[str]) -> bytes | None:
    if not (root or nested or extra):
        return None
    chunks: list[bytes] = []
    for content in root:
        chunks.append(content)
        if content and not content.endswith(b"\n"):
            chunks.append(b"\n")
        # A comment line ends a dangling "\" continuation, so our lines stay lines of their own.
        chunks.append(b"# (end of an archive's requirements.txt)\n")
    if nested:
        chunks.append(b"# requirements.txt of the script directories (added by sagemaker-executor)\n")
        chunks.extend(f"{line}\n".encode() for line in nested)
    if extra:
        chunks.append(b"# custom_params.requirements (added by sagemaker-executor)\n")
        chunks.extend(f"{line}\n".encode() for line in extra)
    return b"".join(chunks)


def _is_real_dir(path: Path) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
