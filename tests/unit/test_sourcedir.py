"""Source dir building from hostile and ordinary script archives, checked on a sandboxed disk."""

from __future__ import annotations

import errno
import gzip
import io
import os
import re
import stat
import tarfile
from pathlib import Path
from typing import Literal

import pytest

from sagemaker_executor.adapters.sourcedir import (
    UnsafeArchiveError,
    build_source_dir,
    extract_tar_safely,
    private_workdir,
)
from sagemaker_executor.domain.entrypoint import (
    ENTRY_POINT,
    ENTRY_SCRIPT,
    render_entry_files,
)
from sagemaker_executor.domain.errors import OutageError, PermanentError

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
Member = tuple[tarfile.TarInfo, bytes]


def info(
    name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, mode: int = 0o644, link: str = ""
) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = size
    member.mode = mode
    member.linkname = link
    return member


def file(name: str, data: bytes = b"data", mode: int = 0o644) -> Member:
    return info(name, size=len(data), mode=mode), data


def directory(name: str, mode: int = 0o755) -> Member:
    return info(name, tarfile.DIRTYPE, mode=mode), b""


def tar_bytes(*members: Member, fmt: Literal[0, 1, 2] = tarfile.GNU_FORMAT) -> bytes:
    """Headers written as given, data as given: lets a test lie about sizes, unlike TarFile.addfile."""
    out = bytearray()
    for member, data in members:
        out += member.tobuf(format=fmt, encoding="utf-8", errors="surrogateescape")
        out += data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    out += b"\0" * (2 * tarfile.BLOCKSIZE)
    return bytes(out)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (links not followed) with its type bits and size."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            tree[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_size)
    return tree


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp/sandbox holds dest plus a file a link might try to reach; the whole tree is snapshotted."""
    box = tmp_path / "sandbox"
    (box / "dest").mkdir(parents=True)
    (box / "outside.txt").write_text("precious")
    return box


def _hostile(box: Path) -> dict[str, tuple[list[Member], dict[str, int], str]]:
    """name -> (members, keyword arguments for extract_tar_safely, expected reason)."""
    outside = box / "outside.txt"
    limit = {"max_total_bytes": MiB}
    symlink, hardlink = "is a symbolic link", "is a hard link"
    return {
        "absolute path": ([file(str(box / "abs.txt"))], limit, "is an absolute path"),
        "dotdot": ([file("../escaped.txt")], limit, "'..'"),
        "nested dotdot": ([file("a/../../x")], limit, "'..'"),
        "inner dotdot": ([file("a/../b")], limit, "'..'"),
        "symlink to /etc/passwd": (
            [(info("passwd", tarfile.SYMTYPE, link="/etc/passwd"), b"")],
            limit,
            symlink,
        ),
        "symlink to ..": ([(info("up", tarfile.SYMTYPE, link=".."), b"")], limit, symlink),
        "file through symlink": (
            [(info("link", tarfile.SYMTYPE, link=str(box)), b""), file("link/through.txt")],
            limit,
            symlink,
        ),
        "file through relative symlink": (
            [(info("link", tarfile.SYMTYPE, link="../"), b""), file("link/through.txt")],
            limit,
            symlink,
        ),
        "hardlink outside": ([(info("hl", tarfile.LNKTYPE, link=str(outside)), b"")], limit, hardlink),
        "hardlink dotdot": ([(info("hl", tarfile.LNKTYPE, link="../outside.txt"), b"")], limit, hardlink),
        "char device": ([(info("null", tarfile.CHRTYPE), b"")], limit, "character device"),
        "block device": ([(info("sda", tarfile.BLKTYPE), b"")], limit, "block device"),
        "fifo": ([(info("pipe", tarfile.FIFOTYPE), b"")], limit, "is a FIFO"),
        "unknown type": ([(info("odd", b"Z"), b"")], limit, "unsupported tar type"),
        "huge declared size": ([(info("big", size=10**12), b"")], limit, "past the limit"),
        "sizes add up past the limit": (
            [file("a", b"a" * 600_000), file("b", b"b" * 600_000)],
            limit,
            "member 'b' (declared 600000 bytes) takes the archive's files past the limit of 1048576 bytes",
        ),
        "too many members": ([file(f"f{i}") for i in range(6)], {**limit, "max_members": 5}, "more than 5"),
        "empty name": ([file("")], limit, "empty name"),
        "file named '.'": ([file("./")], limit, "destination directory itself"),
        # The name is set by the test through a pax header: ustar cannot carry a NUL.
        "NUL in name": ([(info("ok"), b"")], limit, "NUL"),
        "duplicate member": ([file("twice"), file("twice")], limit, "would overwrite a file"),
        "file then dir of the same name": ([file("x"), file("x/y")], limit, "needs the directory 'x'"),
        "component too long": ([file("a" * 256)], limit, "longer than 255 bytes"),
    }


HOSTILE = list(_hostile(Path("/sandbox")))


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_hostile_archives_are_refused_and_leave_no_trace(sandbox: Path, case: str, compress: bool) -> None:
    members, kwargs, reason = _hostile(sandbox)[case]
    # Good members first: a refusal must also take back what was already written.
    members = [directory("ok"), file("ok/first.txt"), file("first.py", mode=0o755), *members]
    fmt: Literal[0, 1, 2] = tarfile.GNU_FORMAT
    if case == "NUL in name":
        members[-1][0].pax_headers = {"path": "bad\x00name"}
        fmt = tarfile.PAX_FORMAT
    data = tar_bytes(*members, fmt=fmt)
    before = snapshot(sandbox)

    with pytest.raises(UnsafeArchiveError) as caught:
        extract_tar_safely(
            io.BytesIO(gzip.compress(data) if compress else data),
            sandbox / "dest",
            archive_name="evil.tar",
            **kwargs,  # type: ignore[arg-type]
        )

    assert snapshot(sandbox) == before
    assert (sandbox / "outside.txt").read_text() == "precious"
    assert str(caught.value).startswith("script archive 'evil.tar'")
    assert reason in str(caught.value)
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([file("/etc/cron.d/x")], "member '/etc/cron.d/x' is an absolute path"),
        ([file("a/../../x")], "member 'a/../../x' has a '..' path component"),
        (
            [(info("p", tarfile.SYMTYPE, link="/etc/passwd"), b"")],
            "member 'p' is a symbolic link (to '/etc/passwd')",
        ),
        ([(info("h", tarfile.LNKTYPE, link="x"), b"")], "member 'h' is a hard link (to 'x')"),
        ([(info("c", tarfile.CHRTYPE), b"")], "member 'c' is a character device node"),
        ([(info("f", tarfile.FIFOTYPE), b"")], "member 'f' is a FIFO"),
        ([(info("big", size=10**12), b"")], "member 'big' (declared 1000000000000 bytes)"),
        ([file(f"f{i}") for i in range(11)], "has more than 10 members"),
    ],
)
def test_refusals_name_the_archive_the_member_and_the_reason(
    tmp_path: Path, members: list[Member], message: str
) -> None:
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_tar_safely(
            io.BytesIO(tar_bytes(*members)),
            tmp_path,
            archive_name="s.tar",
            max_total_bytes=MiB,
            max_members=10,
        )
    assert str(caught.value).startswith("script archive 's.tar'")
    assert message in str(caught.value)


def test_gzip_bomb_file_is_refused_before_its_data_is_read(sandbox: Path) -> None:
    data = gzip.compress(tar_bytes(file("zeros", b"\0" * (8 * MiB))), compresslevel=1)
    assert len(data) < 100_000
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError, match="past the limit"):
        extract_tar_safely(
            io.BytesIO(data), sandbox / "dest", archive_name="bomb.tar.gz", max_total_bytes=MiB
        )
    assert snapshot(sandbox) == before


def test_gzip_bomb_in_a_long_name_header_is_capped(sandbox: Path) -> None:
    # tarfile reads a GNU long-name record into memory whole; the decompressed stream is capped.
    longname = info("././@LongLink", tarfile.GNUTYPE_LONGNAME, size=16 * MiB)
    data = gzip.compress(tar_bytes((longname, b"a" * (16 * MiB)), file("x")), compresslevel=1)
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError, match="unpacks to more than"):
        extract_tar_safely(
            io.BytesIO(data), sandbox / "dest", archive_name="bomb.tgz", max_total_bytes=1024, max_members=10
        )
    assert snapshot(sandbox) == before


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a tar archive at all" * 100,
        gzip.compress(b"x" * 5000),
        gzip.compress(tar_bytes(file("a")))[:-30],
    ],
    ids=["empty", "garbage", "gzip of garbage", "truncated gzip"],
)
def test_unreadable_archives_are_refused(sandbox: Path, data: bytes) -> None:
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError, match="not a readable tar"):
        extract_tar_safely(io.BytesIO(data), sandbox / "dest", archive_name="bad.tar", max_total_bytes=MiB)
    assert snapshot(sandbox) == before


def test_modes_are_clamped_and_ownership_is_not_trusted(tmp_path: Path) -> None:
    setuid = info("suid", size=1, mode=0o4777)
    setuid.uid, setuid.gid, setuid.uname = 12345, 12345, "evil"
    members = [
        (setuid, b"x"),
        file("sgid", mode=0o2640),
        file("plain", mode=0o600),
        directory("wide", mode=0o7777),
        directory("narrow", mode=0o000),
        file("narrow/inside"),
    ]
    names = extract_tar_safely(
        io.BytesIO(tar_bytes(*members)), tmp_path, archive_name="m.tar", max_total_bytes=MiB
    )
    assert names == ["suid", "sgid", "plain", "wide", "narrow", "narrow/inside"]

    def mode(name: str) -> int:
        return stat.S_IMODE(os.lstat(tmp_path / name).st_mode)

    assert (mode("suid"), mode("sgid"), mode("plain")) == (0o755, 0o644, 0o644)
    assert (mode("wide"), mode("narrow"), mode("narrow/inside")) == (0o755, 0o755, 0o644)
    assert os.lstat(tmp_path / "suid").st_uid == os.getuid()


def test_a_non_seekable_stream_is_enough(tmp_path: Path) -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

    data = gzip.compress(tar_bytes(directory("d"), file("d/a.txt", b"hello")))
    names = extract_tar_safely(
        ReadOnly(data),  # type: ignore[arg-type]
        tmp_path,
        archive_name="stream.tgz",
        max_total_bytes=MiB,
    )
    assert names == ["d", "d/a.txt"]
    assert (tmp_path / "d/a.txt").read_bytes() == b"hello"


def test_dot_entries_and_slashes_are_normalised(tmp_path: Path) -> None:
    data = tar_bytes(directory("./"), directory("./bench/"), file("./bench//run.sh", b"echo", mode=0o700))
    names = extract_tar_safely(io.BytesIO(data), tmp_path, archive_name="a.tar", max_total_bytes=MiB)
    assert names == ["bench", "bench/run.sh"]
    assert (tmp_path / "bench/run.sh").read_bytes() == b"echo"


def test_the_exact_limit_is_allowed(tmp_path: Path) -> None:
    data = tar_bytes(file("a", b"a" * 600), file("b", b"b" * 400))
    extract_tar_safely(io.BytesIO(data), tmp_path, archive_name="a.tar", max_total_bytes=1000, max_members=2)
    assert (tmp_path / "b").stat().st_size == 400


# --- what the OS refuses: the archive's fault or the executor's disk ------------------------------


def nested_dirs(total_bytes: int, component: int = 100) -> str:
    """A member path of ``total_bytes`` bytes made of directories, each component legal on its own."""
    parts: list[str] = []
    size = 0
    while size < total_bytes:
        parts.append(f"{len(parts):03d}" + "d" * (component - 3))
        size += component + 1
    return "/".join(parts)[:total_bytes].rstrip("/")


def test_a_member_path_longer_than_the_os_allows_is_a_refused_archive(sandbox: Path) -> None:
    """Issue 7, "Why" 8: 4,400 bytes of nested directories used to escape as an OSError."""
    deep = nested_dirs(4400)
    data = tar_bytes(file("ok.py"), directory(deep), file(deep + "/run.py"), fmt=tarfile.PAX_FORMAT)
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_tar_safely(io.BytesIO(data), sandbox / "dest", archive_name="deep.tar", max_total_bytes=MiB)
    message = str(caught.value)
    assert message.startswith("script archive 'deep.tar': member '000ddd")
    assert "is longer than the file system allows (ENAMETOOLONG)" in message
    assert "..." in message and len(message) < 300  # the 4,400-byte name is cut in the middle
    assert caught.value.member == deep
    assert snapshot(sandbox) == before


def test_a_300_byte_path_component_is_refused_with_a_short_message(sandbox: Path) -> None:
    data = tar_bytes(file("bench/" + "c" * 300 + "/run.py"), fmt=tarfile.PAX_FORMAT)
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_tar_safely(io.BytesIO(data), sandbox / "dest", archive_name="c.tar", max_total_bytes=MiB)
    assert "has a path component longer than 255 bytes" in str(caught.value)
    assert len(str(caught.value)) < 250
    assert snapshot(sandbox / "dest") == {}


def refusing(monkeypatch: pytest.MonkeyPatch, code: int, name: str = "victim") -> None:
    """Make the OS refuse to create any file or directory whose name contains ``name`` with ``code``:
    how a full, read-only or non-UTF-8 file system answers (none of which a test can mount here)."""
    real_mkdir, real_open = os.mkdir, os.open

    def check(path: object) -> None:
        if name in os.fsdecode(path):  # type: ignore[arg-type]
            raise OSError(code, os.strerror(code), os.fsdecode(path))  # type: ignore[arg-type]

    def mkdir(path, mode=0o777, *args, **kwargs):
        check(path)
        return real_mkdir(path, mode, *args, **kwargs)

    def open_(path, flags, mode=0o777, *args, **kwargs):
        check(path)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


VICTIMS = {"file": [file("ok.py"), file("victim.py")], "directory": [file("ok.py"), directory("a/victim")]}


@pytest.mark.parametrize("kind", list(VICTIMS))
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_the_executors_disk_failing_is_an_outage_not_the_users_error(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, code: int, kind: str
) -> None:
    data = tar_bytes(*VICTIMS[kind])
    before = snapshot(sandbox)
    refusing(monkeypatch, code)
    with pytest.raises(OutageError) as caught:
        extract_tar_safely(io.BytesIO(data), sandbox / "dest", archive_name="s.tar", max_total_bytes=MiB)
    assert caught.value.dependency == "disk" and caught.value.fix
    assert errno.errorcode[code] in str(caught.value)
    assert not isinstance(caught.value, PermanentError)
    monkeypatch.undo()
    assert snapshot(sandbox) == before


@pytest.mark.parametrize("kind", list(VICTIMS))
@pytest.mark.parametrize("code", [errno.EILSEQ, errno.EINVAL, errno.ENAMETOOLONG])
def test_a_member_the_file_system_refuses_is_a_refused_archive(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, code: int, kind: str
) -> None:
    data = tar_bytes(*VICTIMS[kind])
    before = snapshot(sandbox)
    refusing(monkeypatch, code)
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_tar_safely(io.BytesIO(data), sandbox / "dest", archive_name="s.tar", max_total_bytes=MiB)
    assert str(caught.value).startswith("script archive 's.tar': member ")
    assert "victim" in str(caught.value) and errno.errorcode[code] in str(caught.value)
    monkeypatch.undo()
    assert snapshot(sandbox) == before


def test_an_unknown_os_error_is_left_to_propagate_as_a_bug(sandbox: Path, monkeypatch) -> None:
    before = snapshot(sandbox)
    refusing(monkeypatch, errno.EBUSY)
    with pytest.raises(OSError) as caught:
        extract_tar_safely(
            io.BytesIO(tar_bytes(*VICTIMS["file"])),
            sandbox / "dest",
            archive_name="s.tar",
            max_total_bytes=MiB,
        )
    assert caught.value.errno == errno.EBUSY
    monkeypatch.undo()
    assert snapshot(sandbox) == before


def test_no_space_for_the_entry_files_is_an_outage(tmp_path: Path, monkeypatch) -> None:
    refusing(monkeypatch, errno.ENOSPC, name=ENTRY_SCRIPT)
    with pytest.raises(OutageError, match="ENOSPC"):
        build_source_dir(tmp_path / "s", [], ENTRY, [], MiB)


def test_private_workdir_is_removed_after_use_and_a_bad_root_is_an_outage(tmp_path: Path) -> None:
    with private_workdir(tmp_path / "new" / "root", "job-") as workdir:
        assert workdir.parent == tmp_path / "new" / "root" and workdir.name.startswith("job-")
        (workdir / "source").mkdir()
        (workdir / "source" / "f").write_text("x")
    assert not workdir.exists()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OutageError) as caught, private_workdir(tmp_path / "a-file" / "root", "job-"):
        pass
    assert caught.value.dependency == "disk" and "TMP_SOURCES_DIR" in caught.value.fix


# --- build_source_dir ---------------------------------------------------------------------------


def client_tar(root: Path, *, compress: bool = False) -> io.BytesIO:
    """What the anubis client sends: the directory tarred with its basename as the root entry."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        tar.add(root, arcname=root.name)
    buffer.seek(0)
    return buffer


def make_bench_dir(parent: Path, name: str, requirements: str | None) -> Path:
    root = parent / name
    (root / "utils").mkdir(parents=True)
    (root / "train.py").write_text("print('training')\n")
    (root / "run.sh").write_text("#!/bin/sh\npython train.py\n")
    (root / "run.sh").chmod(0o755)
    (root / "utils/helpers.py").write_text("X = 1\n")
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    return root


ENTRY = render_entry_files("python mybench/train.py", {"A": "1"})


def test_client_tarball_builds_the_expected_source_dir(tmp_path: Path) -> None:
    bench = make_bench_dir(tmp_path / "client", "mybench", "numpy==1.26.4\n")
    dest = tmp_path / "source"

    build_source_dir(dest, [("abc.tar", client_tar(bench, compress=True))], ENTRY, ["boto3>=1"], MiB)

    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        ENTRY_POINT,
        ENTRY_SCRIPT,
        "mybench",
        "mybench/requirements.txt",
        "mybench/run.sh",
        "mybench/train.py",
        "mybench/utils",
        "mybench/utils/helpers.py",
        "requirements.txt",
    ]
    for name, content in ENTRY.items():
        assert (dest / name).read_text() == content
        assert stat.S_IMODE((dest / name).stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "mybench/run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "mybench/train.py").stat().st_mode) == 0o644
    lines = (dest / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["-r mybench/requirements.txt", "boto3>=1"]
    assert pip_requirements(dest) == ["numpy==1.26.4", "boto3>=1"]


def test_root_requirements_of_every_archive_are_kept(tmp_path: Path) -> None:
    # Hand-made archives with files at the root; the first one ends in a dangling continuation.
    first = tar_bytes(file("requirements.txt", b"torch==2.1 \\"), file("a.py"))
    second = tar_bytes(file("requirements.txt", b"scipy\n"), file("b.py"))
    third = tar_bytes(directory("lib"), file("lib/requirements.txt", b"pandas\n"))
    dest = tmp_path / "source"

    build_source_dir(
        dest,
        [("1.tar", io.BytesIO(first)), ("2.tar", io.BytesIO(second)), ("3.tar", io.BytesIO(third))],
        ENTRY,
        ["requests"],
        MiB,
    )

    text = (dest / "requirements.txt").read_text()
    assert text.startswith("torch==2.1 \\\n#")
    assert pip_requirements(dest) == ["torch==2.1", "scipy", "pandas", "requests"]
    assert (dest / "a.py").exists()
    assert (dest / "b.py").exists()


def test_command_mode_unpacks_under_scripts_and_pip_reads_the_root_file_from_any_directory(
    tmp_path: Path,
) -> None:
    # Command mode (domain.bootstrap): the scripts under scripts/ ($BAI_SCRIPTS_PATH), the bootstrap and
    # one requirements.txt at the root, which the bootstrap installs from the image's WORKDIR.
    bench = make_bench_dir(tmp_path / "client", "mybench", "numpy==1.26.4\n")
    root_level = tar_bytes(file("requirements.txt", b"scipy\n"), file("top.py"))
    dest = tmp_path / "source"

    build_source_dir(
        dest,
        [("abc.tar", client_tar(bench)), ("top.tar", io.BytesIO(root_level))],
        {"bootstrap.sh": "#!/bin/sh\n"},
        ["boto3>=1"],
        MiB,
        scripts_dir="scripts",
    )

    assert sorted(str(p.relative_to(dest)) for p in dest.iterdir()) == [
        "bootstrap.sh",
        "requirements.txt",
        "scripts",
    ]
    assert (dest / "scripts/mybench/train.py").exists() and (dest / "scripts/top.py").exists()
    # Left where the archive put it (pip reads its relative "-r" lines from there), included by the root.
    assert (dest / "scripts/requirements.txt").read_bytes() == b"scipy\n"
    lines = (dest / "requirements.txt").read_text().splitlines()
    assert "-r scripts/requirements.txt" in lines
    assert "-r scripts/mybench/requirements.txt" in lines
    req_file = pytest.importorskip("pip._internal.req.req_file")
    session = pytest.importorskip("pip._internal.network.session")
    elsewhere = tmp_path / "workdir"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)  # pip reads a nested -r relative to the file that names it, not the cwd
    try:
        parsed = req_file.parse_requirements(str(dest / "requirements.txt"), session=session.PipSession())
        assert [r.requirement for r in parsed] == ["scipy", "numpy==1.26.4", "boto3>=1"]
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("name", ["a/b", "..", "."])
def test_the_scripts_dir_is_a_plain_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain directory name"):
        build_source_dir(tmp_path / "s", [], {"bootstrap.sh": ""}, [], MiB, scripts_dir=name)


def test_no_requirements_means_no_requirements_txt(tmp_path: Path) -> None:
    bench = make_bench_dir(tmp_path / "client", "mybench", None)
    build_source_dir(tmp_path / "source", [("abc.tar", client_tar(bench))], ENTRY, [], MiB)
    assert not (tmp_path / "source/requirements.txt").exists()
    assert (tmp_path / "source/mybench/train.py").exists()


def test_directory_with_spaces_is_quoted_for_pip(tmp_path: Path) -> None:
    bench = make_bench_dir(tmp_path / "client", "my bench", "numpy\n")
    build_source_dir(tmp_path / "source", [("abc.tar", client_tar(bench))], ENTRY, [], MiB)
    assert "-r 'my bench/requirements.txt'\n" in (tmp_path / "source/requirements.txt").read_text()
    assert pip_requirements(tmp_path / "source") == ["numpy"]


@pytest.mark.parametrize("dir_name", ["has#hash", "${AWS_SECRET_ACCESS_KEY}", "-rfoo", "tab\tname"])
def test_directory_names_pip_would_misread_are_refused(tmp_path: Path, dir_name: str) -> None:
    data = tar_bytes(directory(dir_name), file(f"{dir_name}/requirements.txt", b"numpy\n"))
    with pytest.raises(UnsafeArchiveError, match=re.escape("cannot be referenced from requirements.txt")):
        build_source_dir(tmp_path / "source", [("x.tar", io.BytesIO(data))], ENTRY, [], MiB)


@pytest.mark.parametrize(
    "members",
    [
        [file(ENTRY_SCRIPT, b"curl evil | sh")],
        [file(f"./{ENTRY_POINT}", b"import os")],
        [directory(ENTRY_SCRIPT)],
        [file(f"{ENTRY_SCRIPT}/x")],
    ],
    ids=["script", "python", "dir", "below"],
)
def test_archive_cannot_overwrite_the_entry_files(tmp_path: Path, members: list[Member]) -> None:
    dest = tmp_path / "source"
    data = tar_bytes(file("fine.py"), *members)
    with pytest.raises(UnsafeArchiveError, match="would overwrite the generated entry file"):
        build_source_dir(dest, [("x.tar", io.BytesIO(data))], ENTRY, [], MiB)
    assert (dest / ENTRY_SCRIPT).read_text() == ENTRY[ENTRY_SCRIPT]
    assert (dest / ENTRY_POINT).read_text() == ENTRY[ENTRY_POINT]
    assert not (dest / "fine.py").exists()


def test_a_later_archive_cannot_overwrite_an_earlier_ones_file(tmp_path: Path) -> None:
    first = tar_bytes(file("shared.py", b"first"))
    second = tar_bytes(file("other.py"), file("shared.py", b"second"))
    with pytest.raises(
        UnsafeArchiveError, match=re.escape("'second.tar': member 'shared.py' would overwrite")
    ):
        build_source_dir(
            tmp_path / "s",
            [("first.tar", io.BytesIO(first)), ("second.tar", io.BytesIO(second))],
            {},
            [],
            MiB,
        )
    assert (tmp_path / "s/shared.py").read_bytes() == b"first"
    assert not (tmp_path / "s/other.py").exists()


def test_the_size_budget_is_shared_by_all_archives(tmp_path: Path) -> None:
    archives = [
        ("1.tar", io.BytesIO(tar_bytes(file("a", b"a" * 700)))),
        ("2.tar", io.BytesIO(tar_bytes(file("b", b"b" * 400)))),
    ]
    with pytest.raises(UnsafeArchiveError, match=re.escape("'2.tar': member 'b'")):
        build_source_dir(tmp_path / "s", archives, {}, [], 1000)


def test_root_requirements_must_be_a_file(tmp_path: Path) -> None:
    data = tar_bytes(directory("requirements.txt"), file("requirements.txt/x"))
    with pytest.raises(UnsafeArchiveError, match=re.escape("'requirements.txt' is not a regular file")):
        build_source_dir(tmp_path / "s", [("x.tar", io.BytesIO(data))], {}, [], MiB)


def test_destination_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "left-over").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        build_source_dir(tmp_path, [], ENTRY, [], MiB)


def pip_requirements(source_dir: Path) -> list[str]:
    """The requirement specifiers pip reads from source_dir/requirements.txt, as the toolkit runs it."""
    req_file = pytest.importorskip("pip._internal.req.req_file")
    session = pytest.importorskip("pip._internal.network.session")
    cwd = os.getcwd()
    os.chdir(source_dir)
    try:
        parsed = req_file.parse_requirements("requirements.txt", session=session.PipSession())
        return [requirement.requirement for requirement in parsed]
    finally:
        os.chdir(cwd)


def test_command_mode_an_archives_requirements_include_their_neighbours(tmp_path: Path) -> None:
    # An archive's root requirements.txt with "-r base.txt": moved to the code channel's root, pip
    # looked for base.txt there ("Could not open requirements file") and the job failed.
    first = tar_bytes(file("requirements.txt", b"-r base.txt\n"), file("base.txt", b"six\n"))
    second = tar_bytes(file("requirements.txt", b"-c pins.txt\nattrs\n"), file("pins.txt", b"attrs<99\n"))
    dest = tmp_path / "source"
    archives = [("a.tar", io.BytesIO(first)), ("b.tar", io.BytesIO(second))]
    build_source_dir(dest, archives, {"bootstrap.sh": ""}, ["boto3>=1"], MiB, scripts_dir="scripts")
    req_file = pytest.importorskip("pip._internal.req.req_file")
    session = pytest.importorskip("pip._internal.network.session")
    parsed = req_file.parse_requirements(str(dest / "requirements.txt"), session=session.PipSession())
    assert [(r.requirement, r.constraint) for r in parsed] == [
        ("six", False),
        ("attrs<99", True),
        ("attrs", False),
        ("boto3>=1", False),
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("caf\udce9.py", "not UTF-8"),
        ("a\nb.py", "control character"),
        ("d/\x01", "control character"),
        ("/".join(["d" * 200] * 5) + "/f.py", "S3's 1,024-byte keys"),
    ],
)
def test_command_mode_refuses_a_member_whose_name_is_no_s3_key(
    tmp_path: Path, name: str, reason: str
) -> None:
    # Command mode uploads each file as an object: a non-UTF-8 name made boto3 raise UnicodeEncodeError
    # (a crash, not an ERROR), and S3 refuses keys past 1,024 bytes.
    archive = io.BytesIO(tar_bytes(file(name)))
    with pytest.raises(UnsafeArchiveError, match=reason):
        build_source_dir(
            tmp_path / "s", [("a.tar", archive)], {"bootstrap.sh": ""}, [], MiB, scripts_dir="scripts"
        )
    # Script mode packs one archive, which takes any name.
    build_source_dir(tmp_path / "t", [("a.tar", io.BytesIO(tar_bytes(file(name))))], {}, [], MiB)
