"""Entry point: ``sagemaker-executor [run]``, ``submit``, ``cancel``, ``status`` and ``logs``.

This module only parses the arguments and dispatches. ``run`` (the default, so an existing
deployment's image swap needs no arguments) loads the configuration (``config``), sets up logging and
hands over to the composition root (``app.run``), which connects the adapters, creates missing topics
and runs the consumer loop until SIGTERM or SIGINT. ``submit``, ``cancel`` and ``status`` are a small
client for the same topics (``sagemaker_executor.client``) that works against the embedded broker of
``make demo`` as well as a real cluster; they take only the settings that say where the topics are.
``logs`` asks AWS only (SageMaker and CloudWatch Logs, with the user's own identity). All four turn
every error into one line and an exit code (``client.errors``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from sagemaker_executor import __version__
from sagemaker_executor.config import ConfigError, Settings, add_arguments, load_settings
from sagemaker_executor.logs import add_secret, configure_logging
from sagemaker_executor.startup import ExitCode

log = logging.getLogger("sagemaker_executor")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagemaker-executor",
        description="Anubis executor: runs benchmark descriptors as Amazon SageMaker training jobs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="run the Kafka service (the default)")
    add_arguments(run)
    _add_submit(commands)
    _add_cancel(commands)
    _add_status(commands)
    _add_logs(commands)
    return parser


_Commands = argparse._SubParsersAction  # the type of add_subparsers()'s result


def _add_submit(commands: _Commands[argparse.ArgumentParser]) -> None:
    submit = _client_command(
        commands,
        "submit",
        "submit a descriptor, as the anubis client and fetcher would",
        "Check a benchmark descriptor here, as the executor would, then ship --script and publish it. "
        "Prints the action id; --follow shows the benchmark until its job has finished.",
    )
    submit.add_argument("descriptor", type=Path, help="the benchmark descriptor (TOML) to run on SageMaker")
    submit.add_argument(
        "--script",
        type=Path,
        metavar="PATH",
        help="a file or directory to ship as the benchmark's scripts (tarred as the anubis client does, "
        "uploaded to the scripts bucket)",
    )
    submit.add_argument(
        "--follow",
        action="store_true",
        help="show each change until the job has ended and its metrics are in (see --until)",
    )
    submit.add_argument(
        "--until",
        choices=("created", "ended"),
        default="ended",
        help="with --follow: stop once the job is created, or once it has ended (the default)",
    )
    submit.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="publish without the local checks (the executor still checks and answers ERROR)",
    )
    _client_arguments(submit)


def _add_cancel(commands: _Commands[argparse.ArgumentParser]) -> None:
    cancel = _client_command(
        commands,
        "cancel",
        "cancel a submitted benchmark by its action id",
        "Ask the executors to stop the training job of an action, and wait for their answer.",
    )
    cancel.add_argument("action_id", help="the action id that submit printed")
    cancel.add_argument(
        "--follow", action="store_true", help="after the answer, show the job until it has stopped"
    )
    _client_arguments(cancel)


def _add_status(commands: _Commands[argparse.ArgumentParser]) -> None:
    status = _client_command(
        commands,
        "status",
        "show a benchmark's state and history by its action id",
        "Read an action's status events from the start of the status topic, say where it stands and "
        "what SageMaker says of its job; --follow re-attaches until the job has ended.",
    )
    status.add_argument("action_id", help="the action id that submit printed")
    status.add_argument("--follow", action="store_true", help="go on showing changes until the job has ended")
    _client_arguments(status)


def _add_logs(commands: _Commands[argparse.ArgumentParser]) -> None:
    logs = _client_command(
        commands,
        "logs",
        "print a benchmark's training job log by its action id",
        "Find the action's training job as cancel does and print its log from CloudWatch Logs (log group "
        "/aws/sagemaker/TrainingJobs), every host's stream interleaved by time, each line prefixed with "
        "its host when there are several; --follow goes on until the job has ended. Needs "
        "AWS_DEFAULT_REGION and AWS credentials allowed sagemaker:DescribeTrainingJob, ListTags and "
        "Search, and logs:DescribeLogStreams and GetLogEvents.",
    )
    logs.add_argument("action_id", help="the action id that submit printed")
    logs.add_argument(
        "--follow",
        action="store_true",
        help="keep reading until the job has ended and its last lines are printed (exit 1 if it failed)",
    )
    _common_client_arguments(logs)


KAFKA_COMMANDS = ("submit", "cancel", "status")  # clients of the topics
CLIENT_COMMANDS = (*KAFKA_COMMANDS, "logs")


def _client_command(
    commands: _Commands[argparse.ArgumentParser], name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    from sagemaker_executor.client.errors import exit_codes_help

    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 100),
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the clients of the topics (``submit``, ``cancel``, ``status``)."""
    _common_client_arguments(parser)
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the Kafka brokers to answer (default: 10)",
    )
    add_arguments(parser, client=True, title="where the topics are (flag or environment variable)")


def _common_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up after SECONDS (exit 14); by default wait as long as the job is alive "
        "(cancel: 60 s for an answer)",
    )
    parser.add_argument("--client-id", help="client id (default: sha1 of user+host, as the anubis client)")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback too")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in ("run", *CLIENT_COMMANDS, "-h", "--help", "--version"):
        words = ["run", *words]  # the service is the default: an image swap passes no arguments
    args = _parser().parse_args(words)
    if args.command in CLIENT_COMMANDS:
        return _client_main(args.command, args)
    return _service_main(args)


def _service_main(args: argparse.Namespace) -> int:
    """``run``: the settings, the logging, then the composition root (``app.run``)."""
    try:
        settings = load_settings(vars(args))
    except ConfigError as error:
        _report_config_error(error, json_lines=_wants_json(args))
        return int(ExitCode.CONFIG)
    configure_logging(settings.logging_level, settings.log_format)
    for secret in settings.secrets():
        add_secret(secret)
    from sagemaker_executor.app import run

    return run(settings)


def _report_config_error(error: ConfigError, *, json_lines: bool) -> None:
    """The service's configuration error: on stderr, or as one JSON line like every other line."""
    if not json_lines:
        print(f"sagemaker-executor: {error}", file=sys.stderr)
        return
    head, *problems = str(error).splitlines()
    problems = [problem.strip().removeprefix("- ") for problem in problems]
    configure_logging("INFO", "json")
    log.critical(
        "sagemaker-executor: %s %s",
        head,
        "; ".join(problems),
        extra={
            "exit_code": int(ExitCode.CONFIG),
            "failure": ExitCode.CONFIG.name,
            "settings": [problem.split(" ", 1)[0] for problem in problems],
        },
    )


def _client_main(command: str, args: argparse.Namespace) -> int:
    """A client command: one line and its exit code for every error (the traceback with ``--debug``)."""
    import traceback

    from sagemaker_executor.client.errors import ClientError
    from sagemaker_executor.client.errors import ExitCode as ClientExit

    prog = f"sagemaker-executor {command}"
    try:
        settings = load_settings(vars(args), client=True)
    except ConfigError as error:  # one line: "invalid configuration: A; B"
        head, *problems = str(error).splitlines()
        listed = "; ".join(problem.strip().removeprefix("- ") for problem in problems)
        print(f"{prog}: {head} {listed}".rstrip(), file=sys.stderr)
        return int(ClientExit.USAGE)
    configure_logging("DEBUG" if args.debug else "WARNING")
    if not args.debug:  # kafka-python's per-attempt connection errors: the client says it once, plainly
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        return int(_dispatch(command, args, settings))
    except ClientError as error:
        if args.debug:
            traceback.print_exception(error)
        print(f"{prog}: {error.message}", file=sys.stderr)
        return int(error.code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return int(ClientExit.INTERRUPTED)
    except Exception as error:
        if args.debug:
            traceback.print_exception(error)
        print(
            f"{prog}: internal error: {type(error).__name__}: {error}; run again with --debug for the "
            "traceback, and report it",
            file=sys.stderr,
        )
        return int(ClientExit.INTERNAL)


def _dispatch(command: str, args: argparse.Namespace, settings: Settings) -> int:
    """Run one client command with its arguments; its exit code."""
    from sagemaker_executor.client import commands
    from sagemaker_executor.client.view import View

    options = commands.ClientOptions(args.client_id, args.timeout, getattr(args, "connect_timeout", 0.0))
    view = View()
    if command == "logs":
        from sagemaker_executor.client.joblogs import logs

        return logs(
            settings,
            args.action_id,
            options.client,
            follow=args.follow,
            timeout_s=options.timeout_s,
            view=view,
        )
    if command == "submit":
        return commands.submit(
            settings,
            options,
            args.descriptor,
            args.script,
            follow=args.follow,
            until=args.until,
            check=args.check,
            view=view,
        )
    if command == "cancel":
        return commands.cancel(settings, options, args.action_id, follow=args.follow, view=view)
    return commands.status(settings, options, args.action_id, follow=args.follow, view=view)


def _wants_json(args: argparse.Namespace) -> bool:
    """Whether LOG_FORMAT (flag or environment) asks for JSON, read even when the rest is invalid."""
    value = getattr(args, "log_format", None) or os.environ.get("LOG_FORMAT", "")
    return str(value).strip().lower() == "json"


if __name__ == "__main__":
    sys.exit(main())
