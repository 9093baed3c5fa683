"""Hostile and malformed submissions, generated deterministically from a seeded ``random.Random``, and
how to judge the executor's answer to each.

Every message says what it expects: ``dead-letter`` (nobody to answer: not a JSON object with an
``action_id`` and a ``client_id``, or no descriptor to route by), ``error`` (an ERROR status and no
job), ``answered`` (hostile but valid, e.g. shell metacharacters: SUCCEEDED with its job, or ERROR),
``valid`` (PENDING, SUCCEEDED, the executor event and one job, exactly as usual). Script tarballs with
path tricks are uploaded to the local scripts bucket once and referenced by many messages; the canary
token names every file a trick would write, so :class:`Sandbox` can tell if one escaped.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import random
import tarfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.builders import fetcher_event, minimal_contents
from tests.faults.observe import Seen
from tests.integration.conftest import SCRIPTS_BUCKET, Pipeline

HUGE = 900_000  # bytes; the producer's and the broker's limit is 1 MiB per record
MAX_SCRIPT_BYTES = 8_000_000  # the executor's MAX_SCRIPT_BYTES here, so "oversize" stays cheap


@dataclass
class Message:
    kind: str
    value: bytes | None
    key: str | None
    expect: str
    action_id: str | None = None  # set when the record names an action and a client
    job_name: str | None = None


# --- the sandbox ------------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """The test's own directory tree, /tmp's top level and the working directory, before and after."""

    root: Path
    token: str

    def canary(self, suffix: str) -> Path:
        return self.root / f"{self.token}-{suffix}"

    def snapshot(self) -> dict[str, set[str]]:
        return {
            "tree": {str(p.relative_to(self.root)) for p in self.root.rglob("*")},
            "tmp": set(os.listdir("/tmp")),
            "cwd": set(os.listdir(os.getcwd())),
        }

    def escaped(
        self, before: dict[str, set[str]], after: dict[str, set[str]], exclude: Iterable[Path]
    ) -> list[str]:
        """New files outside the service's temp space: anywhere in the test's tree but the executor's
        TMP_SOURCES_DIR, its TMPDIR and its logs; anything in /tmp or the working directory that
        carries the canary token (other processes on the machine may use /tmp, so only ours count)."""
        skip = [str(Path(e).relative_to(self.root)) for e in exclude]
        found = [
            f"{self.root}/{rel}"
            for rel in sorted(after["tree"] - before["tree"])
            if not any(rel == s or rel.startswith(s + "/") for s in skip)
            and not (rel.startswith("executor-") and rel.endswith(".log"))
        ]
        found += [f"/tmp/{n}" for n in sorted(after["tmp"] - before["tmp"]) if self.token in n]
        found += [f"{os.getcwd()}/{n}" for n in sorted(after["cwd"] - before["cwd"])]
        found += [str(p) for p in Path("/tmp").glob(f"{self.token}*")]
        return sorted(set(found))


# --- script tarballs --------------------------------------------------------------------------------------


def _tar(members: list[tuple[str, Any]], *, compress: bool = False, pax: bool = False) -> bytes:
    """A tar; a member's value is bytes (a file), or ("sym"|"hard", target), ("chr"|"blk", (major, minor)),
    ("fifo",), or ("zeros", size)."""
    buffer = io.BytesIO()
    fmt = tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, bytes):
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            elif content[0] == "zeros":
                info.size = content[1]
                archive.addfile(info, io.BytesIO(bytes(content[1])))
            elif content[0] in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                archive.addfile(info)
            elif content[0] in ("chr", "blk"):
                info.type = tarfile.CHRTYPE if content[0] == "chr" else tarfile.BLKTYPE
                info.devmajor, info.devminor = content[1]
                archive.addfile(info)
            elif content[0] == "fifo":
                info.type = tarfile.FIFOTYPE
                archive.addfile(info)
    data = buffer.getvalue()
    return gzip.compress(data, compresslevel=9) if compress else data


def upload_tar(p: Pipeline, members: dict[str, bytes], name: str) -> str:
    return _put(p, f"anubis0/{name}.tar", _tar(list(members.items())))


def _put(p: Pipeline, key: str, body: bytes) -> str:
    p.session.client("s3", endpoint_url=p.aws_url).put_object(Bucket=SCRIPTS_BUCKET, Key=key, Body=body)
    return f"s3://{SCRIPTS_BUCKET}/{key}"


def upload_scripts(p: Pipeline, sandbox: Sandbox, token: str) -> dict[str, tuple[str, str]]:
    """Upload every tarball once: name -> (S3 URI, expectation)."""
    dotdot_tmp = "../" * 12 + f"tmp/{token}-dotdot"
    tricks: dict[str, tuple[bytes, str]] = {
        "absolute-tmp": (_tar([(f"/tmp/{token}-abs", b"x")]), "error"),
        "absolute-sandbox": (_tar([(str(sandbox.canary("abs")), b"x")]), "error"),
        "dotdot-tmp": (_tar([("ok.py", b"1"), (dotdot_tmp, b"x")]), "error"),
        # sources/<job>-xxxx/source/../../../ is the test's own directory
        "dotdot-sandbox": (_tar([("ok.py", b"1"), (f"../../../{token}-dotdot", b"x")]), "error"),
        "dotdot-inner": (_tar([(f"a/../../{token}-inner", b"x")]), "error"),
        "symlink-escape": (
            _tar([("link", ("sym", str(sandbox.root))), (f"link/{token}-sym", b"x")]),
            "error",
        ),
        "symlink-relative": (_tar([("up", ("sym", "../../..")), (f"up/{token}-symrel", b"x")]), "error"),
        "symlink-dangling": (_tar([("passwd", ("sym", "/etc/passwd"))]), "error"),
        "hardlink": (_tar([("passwd", ("hard", "/etc/passwd"))]), "error"),
        "char-device": (_tar([("null", ("chr", (1, 3)))]), "error"),
        "block-device": (_tar([("sda", ("blk", (8, 0)))]), "error"),
        "fifo": (_tar([("pipe", ("fifo",))]), "error"),
        "oversize-gzip-bomb": (
            _tar([("zeros.bin", ("zeros", MAX_SCRIPT_BYTES + 1_000_000))], compress=True),
            "error",
        ),
        "too-many-members": (_tar([(f"f{i}", b"") for i in range(10_001)], compress=True), "error"),
        "pax-path-dotdot": (_tar([("../" * 3 + "p" * 120 + token, b"x")], pax=True), "error"),
        "not-a-tarball": (b"this is not a tar archive at all\n" * 10, "error"),
        "truncated": (_tar([("run.py", b"print(1)\n" * 200)])[:700], "error"),
        # Names that would hurt a shell or GNU tar's option parser, but are plain relative files.
        "shell-names": (
            _tar(
                [
                    ("bench/$(touch " + token + "-name).py", b"1"),
                    ("bench/--checkpoint-action=exec=sh x.sh", b""),
                    ("bench/-rf", b""),
                    ("bench/a;b`c`.txt", b""),
                ]
            ),
            "answered",
        ),
        "good": (
            _tar([("bench/bench.py", b"print('ok')\n"), ("bench/requirements.txt", b"numpy\n")]),
            "valid",
        ),
    }
    uploaded = {
        name: (_put(p, f"anubis0/{token}-{name}.tar", body), expect)
        for name, (body, expect) in tricks.items()
    }
    uploaded["missing-object"] = (f"s3://{SCRIPTS_BUCKET}/anubis0/{token}-nowhere.tar", "error")
    uploaded["other-bucket"] = (f"s3://{token}-no-such-bucket/x.tar", "error")
    uploaded["not-s3"] = (f"file:///etc/passwd#{token}", "error")
    return uploaded


# --- generation -------------------------------------------------------------------------------------------


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[leaf] = value


def _drop(tree: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree[part]
    tree.pop(leaf, None)


ENVELOPE_WRONG: list[tuple[str, Any]] = [
    ("message_id", 5),
    ("client_version", None),
    ("client_username", ["alice"]),
    ("authenticated", "yes"),
    ("tstamp", "1600086400774"),
    ("tstamp", 1.5),
    ("visited", "fetcher"),
    ("visited", [{"svc": 5, "tstamp": 1}]),
    ("type", []),
    ("parent_action_id", 7),
    ("payload.datasets", "s3://bucket/data"),
    ("payload.datasets", [{"src": 5, "path": "x"}]),
    ("payload.datasets", [{"src": "s3://a", "path": "x", "size_info": {"total_size": "big"}}]),
    ("payload.scripts", "s3://scripts/x.tar"),
    ("payload.scripts", [{"dst": 5}]),
    ("payload.toml.doc", 5),
    ("payload.toml.sha1", None),
]

DESCRIPTOR_WRONG: list[tuple[str, Any]] = [
    ("spec_version", 1.0),
    ("hardware.instance_type", 5),
    ("hardware.instance_type", "c5.xlarge"),
    ("hardware.distributed", {"num_instances": "4"}),
    ("hardware.distributed", {"num_instances": 0}),
    ("hardware.distributed", {"num_instances": True}),
    ("hardware.strategy", ["single_node"]),
    ("hardware.strategy", "inference"),
    ("env.docker_image", None),
    ("env.docker_image", 42),
    ("env.vars", [1, 2]),
    ("env.vars", {"1BAD": "x"}),
    ("env.vars", {"A": 5}),
    ("env.vars", {"A;rm -rf /": "x"}),
    ("ml.benchmark_code", 5),
    ("ml.framework", "caffe"),
    ("ml.framework", 3),
    ("ml", "python bench.py"),
    ("custom_params", "x"),
    ("custom_params.hyper_params", "lr=1"),
    ("custom_params.hyper_params", {"sagemaker_program": "evil.py"}),
    ("custom_params.max_run_seconds", "3600"),
    ("custom_params.max_run_seconds", -1),
    ("custom_params.requirements", ["-e git+https://evil/x"]),
    ("custom_params.requirements", "numpy"),
    ("custom_params.tags", {"k": 5}),
    ("custom_params.sagemaker_job_name", 12),
    ("custom_params.sagemaker_job_name", "a;touch x"),
    ("custom_params.python_version", 3),
    ("output.metrics", "x"),
    ("output.metrics", [{"name": 5, "pattern": "x"}]),
    ("info.labels", 7),
    ("info.labels", {"Bad Label!": "x"}),
    ("info.description", 5),
    ("data", {"sources": "x"}),
    ("hardware", None),
    ("unknown_section", {"a": 1}),
]


def _wrong(rng: random.Random, token: str) -> tuple[dict[str, Any], str]:
    event = fetcher_event(minimal_contents())
    if rng.random() < 0.35:
        path, value = rng.choice(ENVELOPE_WRONG)
        _set(event, path, copy.deepcopy(value))
        return event, f"wrong-type envelope {path}"
    path, value = rng.choice(DESCRIPTOR_WRONG)
    contents = event["payload"]["toml"]["contents"]
    if value is None and path.count(".") == 0:
        contents.pop(path, None)
    else:
        _set(contents, path, copy.deepcopy(value))
    return event, f"wrong-type descriptor {path}"


def _shell(rng: random.Random, sandbox: Sandbox) -> dict[str, Any]:
    tmp, box = f"/tmp/{sandbox.token}", sandbox.canary("shell")
    payloads = [
        f"$(touch {tmp}-subst)",
        f"`touch {box}-ticks`",
        f"x; touch {tmp}-semi",
        f"x && touch {box}-and",
        f"x | tee {tmp}-pipe",
        f"x\ntouch {box}-newline",
        f"'; touch {tmp}-quote; '",
        f'"; touch {box}-dquote; "',
        f"${{IFS}}touch${{IFS}}{tmp}-ifs",
        f"x > {box}-redirect",
    ]
    pick = rng.choice(payloads)
    variant = rng.randrange(5)
    if variant == 0:
        contents = minimal_contents(env={"docker_image": "img:1", "vars": {"HOSTILE": pick, "OK": "1"}})
    elif variant == 1:
        contents = minimal_contents(ml={"benchmark_code": f"python bench.py {pick}"})
    elif variant == 2:
        contents = minimal_contents(custom_params={"hyper_params": {"lr": pick}})
    elif variant == 3:
        contents = minimal_contents(info={"description": pick, "execution_engine": "aws.sagemaker"})
    else:
        contents = minimal_contents(custom_params={"requirements": [f"numpy {pick}"]})
    return fetcher_event(contents)


def _huge(rng: random.Random, index: int) -> Message:
    letters = "".join(rng.choice("abcdefghij") for _ in range(64))
    filler = (letters * (HUGE // len(letters) + 1))[:HUGE]
    variant = index % 6
    if variant == 0:
        return Message("huge random bytes", rng.randbytes(HUGE), "someone", "dead-letter")
    if variant == 1:
        return Message("huge non-JSON text", filler.encode(), "someone", "dead-letter")
    if variant == 2:
        nested = (
            '{"action_id": "a", "client_id": "c", "payload": ' + "[" * (HUGE // 2) + "]" * (HUGE // 2) + "}"
        )
        return Message("huge nesting", nested.encode(), "someone", "dead-letter")
    if variant == 3:
        event = fetcher_event(minimal_contents(unknown_huge={"x": filler}))
        return _named("huge unknown descriptor key", event, "error")
    if variant == 4:
        event = fetcher_event(
            minimal_contents(info={"description": filler, "execution_engine": "aws.sagemaker"})
        )
        return _named("huge description", event, "answered")
    event = fetcher_event(minimal_contents(env={"docker_image": "img:1", "vars": {"BIG": filler}}))
    return _named("huge env value", event, "answered")


def _named(kind: str, event: dict[str, Any], expect: str) -> Message:
    name = None
    contents = event.get("payload", {}).get("toml", {}).get("contents")
    if isinstance(contents, dict) and isinstance(contents.get("custom_params"), dict):
        custom = contents["custom_params"].get("sagemaker_job_name")
        name = custom if isinstance(custom, str) else None
    return Message(
        kind,
        json.dumps(event).encode(),
        str(event.get("client_id")),
        expect,
        action_id=event["action_id"],
        job_name=name or event["action_id"],
    )


def _unroutable(rng: random.Random) -> Message:
    variant = rng.randrange(14)
    event = fetcher_event(minimal_contents())
    if variant == 0:
        return Message("random bytes", rng.randbytes(rng.randint(1, 4000)), None, "dead-letter")
    if variant == 1:
        text = rng.choice(["{", "{'action_id': 'x'}", "<xml/>", "NaN", "[1, 2", "\x00\x01", "", " ", "{}}"])
        return Message("non-JSON", text.encode(), "someone", "dead-letter")
    if variant == 2:
        value = rng.choice([[1, 2], 42, "a string", None, True, [event], 1e308])
        return Message("JSON non-object", json.dumps(value).encode(), "someone", "dead-letter")
    if variant == 3:
        return Message("tombstone", None, event["client_id"], "dead-letter")
    if variant in (4, 5, 6, 7):
        name = rng.choice(["action_id", "client_id"])
        how = rng.choice(["missing", "empty", "number", "null", "list"])
        if how == "missing":
            event.pop(name)
        else:
            event[name] = {"empty": "", "number": 5, "null": None, "list": [event["action_id"]]}[how]
        return Message(f"{how} {name}", json.dumps(event).encode(), "someone", "dead-letter")
    if variant == 8:
        event["payload"] = rng.choice(["x", None, [], 5])
    elif variant == 9:
        event["payload"].pop("toml")
    elif variant == 10:
        event["payload"]["toml"] = rng.choice(["x", None, [1]])
    elif variant == 11:
        event["payload"]["toml"]["contents"] = rng.choice(["spec_version = '0.1.0'", [], None, 7])
    elif variant == 12:
        event["payload"]["toml"].pop("contents")
    else:
        event.pop("payload")
    return Message("no descriptor", json.dumps(event).encode(), event["client_id"], "dead-letter")


def generate(
    rng: random.Random,
    bad: int,
    valid: int,
    scripts: dict[str, tuple[str, str]],
    sandbox: Sandbox,
) -> list[Message]:
    """``bad`` hostile messages and ``valid`` ordinary ones, interleaved in a seeded order."""
    huge = max(6, bad // 50)
    tricks = [name for name, (_, expect) in scripts.items() if expect != "valid"]
    messages: list[Message] = [_huge(rng, i) for i in range(huge)]
    for i in range(bad - huge):
        family = i % 4
        if family == 0:
            messages.append(_unroutable(rng))
        elif family == 1:
            event, kind = _wrong(rng, sandbox.token)
            messages.append(_named(kind, event, "error"))
        elif family == 2:
            messages.append(_named("shell metacharacters", _shell(rng, sandbox), "answered"))
        else:
            name = tricks[(i // 4) % len(tricks)]
            uri, expect = scripts[name]
            event = fetcher_event(
                minimal_contents(ml={"benchmark_code": "python bench/bench.py"}), scripts=[uri]
            )
            messages.append(_named(f"tarball {name}", event, expect))
    good_uri = scripts["good"][0]
    for i in range(valid):
        event = fetcher_event(
            minimal_contents(ml={"benchmark_code": f"python bench/bench.py --n {i}"}),
            scripts=[good_uri] if i % 2 else None,
        )
        messages.append(_named("valid", event, "valid"))
    rng.shuffle(messages)
    return messages


def publish(p: Pipeline, messages: list[Message]) -> list[int]:
    """Send every message to the input topic; their offsets, in order."""
    futures = [
        p.producer.send(p.topics.fetcher, key=m.key.encode() if m.key else None, value=m.value)
        for m in messages
    ]
    return [f.get(timeout=60).offset for f in futures]


# --- judging ----------------------------------------------------------------------------------------------


@dataclass
class Verdicts:
    unanswered: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    hostile_succeeded: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)


def _outcome(m: Message, offset: int, seen: Seen) -> str | None:
    statuses = seen.statuses.get(m.action_id, []) if m.action_id else []
    if "SUCCEEDED" in statuses and seen.executor_job_ids.get(m.action_id or ""):
        return "succeeded"
    if "ERROR" in statuses:
        return "error"
    if offset in seen.dead_letters:
        return "dead-letter"
    return None


def unanswered(messages: list[Message], offsets: list[int], seen: Seen) -> list[Message]:
    return [m for m, o in zip(messages, offsets, strict=True) if _outcome(m, o, seen) is None]


def judge(messages: list[Message], offsets: list[int], seen: Seen, created: list[str]) -> Verdicts:
    allowed = {
        "dead-letter": {"dead-letter"},
        "error": {"error"},
        "answered": {"error", "succeeded"},
        "valid": {"succeeded"},
    }
    v = Verdicts()
    for m, offset in zip(messages, offsets, strict=True):
        outcome = _outcome(m, offset, seen)
        family = m.kind.split(" ")[0] if m.kind.startswith(("wrong-type", "tarball")) else m.kind
        family = " ".join(m.kind.split(" ")[:2]) if m.kind.startswith("wrong-type") else family
        row = v.by_kind.setdefault(family if not m.kind.startswith("tarball") else m.kind, {})
        row["sent"] = row.get("sent", 0) + 1
        row[outcome or "unanswered"] = row.get(outcome or "unanswered", 0) + 1
        where = f"{m.kind} @{offset} ({m.action_id})"
        if outcome is None:
            v.unanswered.append(where)
            continue
        if outcome not in allowed[m.expect]:
            v.unexpected.append(f"{where}: expected {m.expect}, got {outcome}")
        jobs = created.count(m.job_name) if m.job_name else 0
        if outcome == "succeeded":
            v.hostile_succeeded += m.expect == "answered"
            if jobs != 1:
                v.unexpected.append(f"{where}: SUCCEEDED with {jobs} jobs")
        elif jobs:
            v.unexpected.append(f"{where}: {outcome} but {jobs} job(s) created")
        if m.expect == "dead-letter" and m.action_id is None and offset not in seen.dead_letters:
            v.unexpected.append(f"{where}: no dead-letter record")
    return v


def new_id() -> str:
    return str(uuid.uuid4())
