"""Builds a training job's source directory on local disk from the user's (untrusted) script archives.

Called by the submission path before the SageMaker adapter uploads the directory (``adapters.sagemaker``:
one archive in script mode, one object per file in command mode). :func:`build_source_dir` writes the
generated entry files (``domain.entrypoint``'s in script mode, ``domain.bootstrap``'s in command mode),
unpacks every ``ml.script`` archive next to them (script mode, as the original did) or under a
directory of their own (command mode's ``scripts/``, which is ``BAI_SCRIPTS_PATH``), and writes the
root ``requirements.txt`` that SageMaker's training toolkit or the bootstrap pip-installs, in a
:func:`private_workdir` (``adapters.tempspace``).

The archives are unpacked by ``adapters.untar`` (:func:`extract_tar_safely`, the one place an archive
touches the disk; its docstring lists what is refused and why). This module adds what only a whole
source directory can check, each refusal an :class:`UnsafeArchiveError` (``adapters.tarstream``):

* The generated entry files are reserved: no archive may create or overwrite them, and the archives
  share one budget of ``max_total_bytes``.
* An archive's root ``requirements.txt`` must be a regular file (pip installs it as one); a top-level
  directory whose ``requirements.txt`` is included must have a name ``-r`` can carry without pip
  reading it as a comment, an environment variable, an option or a continuation.
* In command mode every file becomes an S3 object under ``<job>/source/anubis_code/scripts/``, so its
  path must be a key there: UTF-8, no control characters, at most 1,024 bytes with that prefix.

The executor's own disk failing while the directory is assembled is ``OutageError("disk")``, never the
user's ERROR.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from sagemaker_executor.adapters.tarstream import UnsafeArchiveError as UnsafeArchiveError
from sagemaker_executor.adapters.tempspace import NEW_FILE_FLAGS, own_disk_failures
from sagemaker_executor.adapters.tempspace import private_workdir as private_workdir
from sagemaker_executor.adapters.untar import extract_tar_safely as extract_tar_safely

REQUIREMENTS_TXT = "requirements.txt"

# S3 keys are at most 1,024 bytes; the prefix "<job name, at most 63>/source/anubis_code/scripts/" is at
# most 92, so a member's path under the scripts keeps at most this many.
_MAX_KEY_NAME_BYTES = 1024 - 92
# Top-level directory names that can be written after "-r" in requirements.txt without pip reading
# them as a comment ("#"), an environment variable ("${...}"), an option or a continuation.
_REQUIREMENTS_DIR_NAME = re.compile(r"[A-Za-z0-9_.+@][A-Za-z0-9_.+@ -]*")


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
    with own_disk_failures(f"assembling the source dir {str(dest)!r}"):
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
    fd = os.open(path, NEW_FILE_FLAGS, 0o600)
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
