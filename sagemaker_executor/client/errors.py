"""The client's exit codes and its one error type: what went wrong, what to fix, and the code to exit with.

Every module of ``sagemaker_executor.client`` raises :class:`ClientError` for a mistake a person can act
on (a file, the descriptor, a setting, a broker, AWS); ``cli`` prints its message as one line and exits
with its code (the traceback only with ``--debug``). The codes are documented in the README and in each
client command's ``--help``; a test keeps the three in step.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum


class ExitCode(IntEnum):
    """What a client command's exit status means. The docstring of each is its line in ``--help``."""

    OK = 0
    FAILED = 1
    USAGE = 2
    BROKERS_UNREACHABLE = 3
    TOPIC_MISSING = 5
    AWS = 6
    NO_SUCH_FILE = 10
    INVALID_DESCRIPTOR = 11
    NOT_FOR_THIS_EXECUTOR = 12
    NOT_FOUND = 13
    TIMED_OUT = 14
    INTERNAL = 70
    INTERRUPTED = 130


# One line each, for --help and the README (tests/unit/test_client_cli.py compares them).
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done: published; with --follow, the benchmark finished (or, --until created, its job "
    "was created); cancel: the job is stopping or had ended",
    ExitCode.FAILED: "the executor refused the benchmark (ERROR), its job failed or was cancelled "
    "(logs --follow too), or the cancel failed",
    ExitCode.USAGE: "wrong arguments or settings",
    ExitCode.BROKERS_UNREACHABLE: "no Kafka broker answered (KAFKA_BOOTSTRAP_SERVERS)",
    ExitCode.TOPIC_MISSING: "a topic does not exist on the brokers (CONSUMER_TOPIC, STATUS_TOPIC, ...)",
    ExitCode.AWS: "AWS refused or could not be asked (--script, logs): no credentials, no access, no bucket",
    ExitCode.NO_SUCH_FILE: "the descriptor or the --script path cannot be read",
    ExitCode.INVALID_DESCRIPTOR: "the descriptor is not valid TOML or the executor would refuse it",
    ExitCode.NOT_FOR_THIS_EXECUTOR: "the descriptor is for another execution engine or a cron schedule",
    ExitCode.NOT_FOUND: "no such action: no status event for it, no job for cancel to stop, or (logs) no "
    "job of this client's or no log yet",
    ExitCode.TIMED_OUT: "--timeout passed before the end (the benchmark goes on)",
    ExitCode.INTERNAL: "a bug: run again with --debug and report the traceback",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); a submitted benchmark goes on",
}


def exit_codes_help() -> str:
    """The exit codes as an argparse epilog: one ``CODE  meaning`` line each."""
    lines = [
        textwrap.fill(meaning, 100, initial_indent=f"  {int(code):>3}  ", subsequent_indent=" " * 7)
        for code, meaning in EXIT_CODE_MEANINGS.items()
    ]
    return "exit codes:\n" + "\n".join(lines)


class ClientError(Exception):
    """A mistake the user can fix, or a dependency that cannot be reached: one line, one exit code.

    ``message`` says what is wrong and what to do about it; ``code`` is the exit status.
    """

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
