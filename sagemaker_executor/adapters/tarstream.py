"""Reads a user's (untrusted) script archive as a tar stream, and names what is wrong with it.

``adapters.untar`` unpacks through :func:`open_tar_stream` and :func:`members`; every refusal of an
archive, there or in ``adapters.sourcedir``, is an :class:`UnsafeArchiveError` naming the archive and
the member (each cut to 120 characters by :func:`shown_name`, so a hostile name cannot flood a log
line or an ERROR record).

The archive is read as a stream (plain or gzip'd tar, told apart by gzip's magic bytes), so the caller's
``fileobj`` only needs ``read()``: strictly forward reads, no seeking, no re-reading of a gzip stream.
The decompressed stream itself is capped at ``limit`` bytes, so that a gzip bomb hidden in a long-name
or pax header cannot exhaust memory before a member's declared size is ever checked.
"""

from __future__ import annotations

import contextlib
import gzip
import tarfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from sagemaker_executor.domain.errors import ScriptRejected

_GZIP_MAGIC = b"\x1f\x8b"
# Errors that mean "this is not a readable (gzip'd) tar stream".
READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
_SHOWN_NAME_CHARS = 120  # an archive or member name in a message; longer ones keep their start and end


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


@contextlib.contextmanager
def open_tar_stream(fileobj: BinaryIO, archive_name: str, limit: int) -> Iterator[tarfile.TarFile]:
    """``fileobj`` (plain or gzip'd tar) opened in stream mode, its decompressed bytes capped at
    ``limit``; :class:`UnsafeArchiveError` if it is not a readable tar. Does not close ``fileobj``."""
    head = _read_exactly(fileobj, len(_GZIP_MAGIC))
    source: _Readable = _Prefixed(head, fileobj)
    if head == _GZIP_MAGIC:
        source = gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[call-overload]
    capped = _CappedStream(source, limit, archive_name)
    try:
        # Stream mode ("r|"): strictly forward reads, so no seeking and no re-reading of a gzip stream.
        tar = tarfile.open(fileobj=capped, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115
    except READ_ERRORS as exc:
        raise unreadable(archive_name, exc) from exc
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


def members(tar: tarfile.TarFile, archive_name: str) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar`` in archive order; a read error is :class:`UnsafeArchiveError`."""
    while True:
        try:
            member = tar.next()
        except READ_ERRORS as exc:
            raise unreadable(archive_name, exc) from exc
        if member is None:
            return
        yield member


def unreadable(archive_name: str, exc: BaseException) -> UnsafeArchiveError:
    return UnsafeArchiveError(archive_name, None, f"is not a readable tar or tar.gz archive: {exc}")
