"""A training job's CloudWatch log as the executor shows it: where it is, the last lines of a failed
job (bounded, secrets masked), and the host each line came from.

Pure: ``adapters.joblogs`` reads the streams and builds a :class:`LogTail` with :func:`tail_of`;
``domain.lifecycle`` appends :func:`tail_text` to a FAILED status's message; the ``logs`` client
command labels lines with :func:`host_of`.

**Where.** SageMaker writes a training job's output to the log group ``/aws/sagemaker/TrainingJobs``,
one stream per host, named ``<TrainingJobName>/algo-<n>-<epoch seconds>`` (a host that restarts gets
a new stream with a new epoch). The SageMaker SDK's ``logs_for_job`` finds them by the prefix
``<TrainingJobName>/``; so does the executor.

**Bounds.** A FAILED status carries at most :data:`TAIL_LINES` lines of at most :data:`LINE_BYTES`
each and :data:`TAIL_BYTES` in all (JSON bytes, as ``domain.limits`` counts them), from at most
:data:`TAIL_HOSTS` hosts (those that logged last). Each host shown gets an equal share of the lines,
so a host that kept talking after another one crashed cannot push the crash out of the tail. With the
headline (the failure reason, cut to :data:`REASON_BYTES`) the message stays well under
``limits.MAX_MESSAGE_BYTES``, so nothing of the tail is ever cut by the status's own bound.

**Secrets** (:class:`Masker`). Status events are stored by the BFF and shown to anyone who can read
the action, so what the log says is masked before it is copied, as ``***``:

* the value of every variable of the job's ``Environment`` whose *name* looks secret
  (:func:`secret_name`: it contains PASSWORD, PASSWD, SECRET, TOKEN, CREDENTIAL, SIGNATURE or
  AUTHORIZATION, or has KEY, PWD, PASS, AUTH, APIKEY or PRIVATE as one of its words: ``DB_PASSWORD``,
  ``HF_TOKEN``, ``apiKey``, ``SSH_KEY``; not ``MONKEY`` or ``KEYBOARD``), wherever it appears (a value
  under :data:`MIN_SUBSTRING_SECRET` characters only as a whole word, so that ``PASS=1`` does not
  erase every digit 1);
* the value of any ``name=value``, ``name: value``, ``"name": "value"`` or ``--name value`` whose
  name looks secret by the same rule (``aws_secret_access_key = ...``, ``"SessionToken": "..."``,
  ``X-Amz-Signature=...``);
* anything shaped like an AWS access key id (``AKIA``/``ASIA``... and 16 more characters) and the
  credential after ``Bearer``/``Basic``.

The rule errs towards masking: a harmless ``key: accuracy`` reads ``key: ***``. A secret printed
without a name (a bare password on a line of its own, not from the Environment) cannot be told from
other text and is not masked.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sagemaker_executor.domain.limits import bound_text, json_size

LOG_GROUP = "/aws/sagemaker/TrainingJobs"

TAIL_LINES = 30
"""Lines of the log a FAILED status carries at most: enough for a Python traceback's end."""

TAIL_BYTES = 6_144
"""JSON bytes of those lines together at most (older lines are dropped first)."""

LINE_BYTES = 512
"""JSON bytes of one line at most; a longer line keeps its start and says how long it was."""

TAIL_HOSTS = 8
"""Hosts whose streams are read for a FAILED status at most: the ones that logged last."""

REASON_BYTES = 2_048
"""SageMaker's ``FailureReason`` in a status at most (the API documents 1,024 characters)."""

PROBLEM_BYTES = 1_024
"""Why a log could not be read (an AWS error message), in a status at most."""

MASK = "***"
MIN_SUBSTRING_SECRET = 6

_STRONG_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "SIGNATURE", "AUTHORIZATION")
_WEAK_WORDS = frozenset({"KEY", "KEYS", "PWD", "PASS", "AUTH", "APIKEY", "PRIVATE"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_HOST = re.compile(r"^(?P<host>algo-\d+)(?:-\d+)?$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# name=value, name: value, "name": "value" (a quoted value may hold spaces), --name value. A name
# starts a word and is bounded, so that a long line is scanned in linear time.
_ASSIGNMENT = re.compile(
    r"(?<![\w.\-])(?P<name>[A-Za-z_][\w.\-]{0,127})[\"']?\s*[:=]\s*"
    r"(?:(?P<quote>[\"'])(?P<quoted>[^\"'\n]*)(?P=quote)|(?P<value>[^\s\"',;}\]&?]+))"
)
_FLAG = re.compile(r"(?<![\w\-])--(?P<name>[A-Za-z][\w\-]{0,127})(?:\s+|=)(?P<value>[^\s\"',;]+)")
_AWS_KEY_ID = re.compile(
    r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"
)
_SCHEMES = re.compile(r"(?i)bearer|basic")
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s+(?P<value>[A-Za-z0-9._~+/=\-]{8,})")


@dataclass(frozen=True)
class LogEvent:
    """One event of a job's log: the host whose stream it came from, CloudWatch's timestamp, the text."""

    host: str
    timestamp_ms: int
    message: str


@dataclass(frozen=True)
class LogTail:
    """What a FAILED status says of the job's log.

    ``lines``: the last lines, oldest first; ``hosts``: the hosts they were read from (name order);
    ``host_count``: how many streams the job has in all; ``problem``: why the log could not be read
    (or read only in part), else None.
    """

    job_name: str
    lines: tuple[LogEvent, ...] = ()
    hosts: tuple[str, ...] = ()
    host_count: int = 0
    problem: str | None = None

    @classmethod
    def unreadable(cls, job_name: str, why: str) -> LogTail:
        return cls(job_name, problem=why)


def stream_prefix(job_name: str) -> str:
    """The prefix of every stream of ``job_name`` (the ``/`` keeps ``job-1`` from matching ``job-10``)."""
    return f"{job_name}/"


def host_of(stream_name: str, job_name: str) -> str:
    """``algo-2`` for the stream ``<job>/algo-2-1700000000``; the part after the prefix otherwise."""
    rest = stream_name.removeprefix(stream_prefix(job_name))
    match = _HOST.match(rest)
    return match["host"] if match else rest


def host_order(host: str) -> tuple[str, int, str]:
    """Sort key putting ``algo-2`` before ``algo-10``."""
    prefix, _, number = host.rpartition("-")
    return (prefix, int(number), host) if number.isdigit() else (host, -1, host)


def log_location(job_name: str) -> str:
    return f"CloudWatch Logs {LOG_GROUP}, streams {stream_prefix(job_name)}algo-*"


def clean(message: str) -> list[str]:
    """The lines of one log event as a reader should see them: colour codes removed, a line redrawn
    with carriage returns (a progress bar) reduced to what it showed last, control characters gone."""
    lines = []
    for raw in _ANSI.sub("", message).split("\n"):
        shown = raw.rstrip("\r").rsplit("\r", 1)[-1]
        lines.append(_CONTROL.sub("", shown).rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def share(hosts: int) -> int:
    """Lines each of ``hosts`` hosts contributes to a tail: an equal share of :data:`TAIL_LINES`."""
    return -(-TAIL_LINES // max(hosts, 1))


def tail_of(
    job_name: str,
    per_host: Mapping[str, Sequence[LogEvent]],
    host_count: int,
    masker: Masker,
    problem: str | None = None,
) -> LogTail:
    """The tail from the last events of each host read (each host's events in time order).

    Events become lines (:func:`clean`), masked (``masker``) before anything is cut, so a cut never
    keeps the start of a secret; each host keeps its last :func:`share` lines; the hosts' lines are
    interleaved by time; the last :data:`TAIL_LINES` are kept, each cut to :data:`LINE_BYTES`, then
    older ones are dropped until the rest is within :data:`TAIL_BYTES`.
    """
    streams: list[list[LogEvent]] = []
    for host, events in per_host.items():
        lines = [
            LogEvent(host, e.timestamp_ms, masker.mask(line)) for e in events for line in clean(e.message)
        ]
        streams.append(lines[-share(len(per_host)) :])
    merged = list(heapq.merge(*streams, key=lambda event: event.timestamp_ms))[-TAIL_LINES:]
    bounded = [LogEvent(e.host, e.timestamp_ms, bound_text(e.message, LINE_BYTES)) for e in merged]
    several = host_count > 1
    while bounded and json_size("\n".join(_line(e, several) for e in bounded)) > TAIL_BYTES:
        bounded.pop(0)
    hosts = tuple(sorted(per_host, key=host_order))
    return LogTail(job_name, tuple(bounded), hosts, host_count, problem)


def _line(event: LogEvent, several: bool) -> str:
    return f"[{event.host}] {event.message}" if several else event.message


def tail_text(tail: LogTail) -> str:
    """The lines a FAILED status's message carries after its headline (one line per log line).

    With several hosts each line starts with ``[algo-<n>]``. When the log could not be read, one line
    says why and where the log is.
    """
    where = log_location(tail.job_name)
    problem = bound_text(tail.problem, PROBLEM_BYTES) if tail.problem is not None else None
    if not tail.lines and problem is not None:
        return f"The job's log could not be read ({problem}); it is in {where}."
    if not tail.lines:
        return (
            f"The job wrote no log ({where}: none found): it most likely failed before its "
            "container started (the image, the role, the instances, the input data)."
        )
    several = tail.host_count > 1
    shown = ""
    if several:
        hosts = ", ".join(tail.hosts)
        shown = (
            f", hosts {hosts}"
            if len(tail.hosts) == tail.host_count
            else f", the {len(tail.hosts)} of {tail.host_count} hosts that logged last: {hosts}"
        )
    part = f", read in part: {problem}" if problem is not None else ""
    head = f"Last {len(tail.lines)} lines of the log ({where}{shown}{part}):"
    return "\n".join([head, *(_line(e, several) for e in tail.lines)])


# ------------------------------------------------------------------------------------------ secrets


def secret_name(name: str) -> bool:
    """Whether a variable or field called ``name`` probably holds a secret (module docstring)."""
    upper = name.upper()
    if any(word in upper for word in _STRONG_WORDS):
        return True
    return any(word.upper() in _WEAK_WORDS for word in _WORD.findall(name))


class Masker:
    """Masks secrets in text: the job's secret-named Environment values, secret-named assignments,
    AWS access key ids and HTTP credentials (module docstring)."""

    def __init__(self, environment: Mapping[str, str] | None = None) -> None:
        values = {
            str(value)
            for name, value in (environment or {}).items()
            if secret_name(str(name)) and isinstance(value, str) and value.strip()
        }
        # Longest first, so that a secret containing another is masked whole.
        self._values = [_value_pattern(value) for value in sorted(values, key=len, reverse=True)]

    @classmethod
    def of_job(cls, description: Mapping[str, object] | None) -> Masker:
        """For the job ``description`` (DescribeTrainingJob) describes."""
        environment = (description or {}).get("Environment")
        return cls(environment if isinstance(environment, Mapping) else None)

    def mask(self, text: str) -> str:
        for pattern in self._values:
            text = pattern.sub(MASK, text)
        text = _AWS_KEY_ID.sub(MASK, text)
        text = _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", text)
        text = _FLAG.sub(_masked_assignment, text)
        return _ASSIGNMENT.sub(_masked_assignment, text)


def _value_pattern(value: str) -> re.Pattern[str]:
    if len(value) >= MIN_SUBSTRING_SECRET:
        return re.compile(re.escape(value))
    # A whole word only: between spaces, quotes, separators or the ends of the line.
    return re.compile(rf"(?<![^\s\"'=:,;]){re.escape(value)}(?![^\s\"',;])")


def _masked_assignment(match: re.Match[str]) -> str:
    """The assignment with its value masked, when its name looks secret."""
    group = "quoted" if match.groupdict().get("quoted") is not None else "value"
    if not secret_name(match["name"]) or match[group] in ("", MASK) or _SCHEMES.fullmatch(match[group]):
        return match[0]  # not a secret's name, already masked, or "Bearer ***" (masked on its own)
    start, end = match.start(group) - match.start(), match.end(group) - match.start()
    return match[0][:start] + MASK + match[0][end:]
