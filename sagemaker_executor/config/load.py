"""Loading the settings: flags over the environment, and one message listing every problem.

``cli`` calls :func:`add_arguments` to give each setting its flag and :func:`load_settings` at
start-up. The flags win over the environment variables (pydantic-settings' init source over its
environment source, ``config.settings``); pydantic validates every field and reports them all at once,
and :func:`load_settings` turns its errors into one :class:`ConfigError` whose lines name each
variable and its flag, with the value given (never a secret's).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sagemaker_executor.config.kafka import label
from sagemaker_executor.config.settings import ENVIRON, ClientSettings, Settings


class ConfigError(Exception):
    """Configuration that cannot work; the message lists every problem found."""


@dataclass(frozen=True)
class Option:
    """One setting as a deployment sees it: variable ``NAME.upper()``, flag ``--name-with-dashes``."""

    name: str
    help: str
    default: str | None = None  # None: required
    legacy: bool = False  # one of the original's variables (CONTRACT §6)


def _options() -> tuple[Option, ...]:
    options = []
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("flag") is False:
            continue
        default = None if extra.get("required") else str(field.default)
        options.append(Option(name, field.description or "", default, bool(extra.get("legacy"))))
    return tuple(options)


OPTIONS: tuple[Option, ...] = _options()

# Read by the original but never used by it; accepted so old manifests still start.
IGNORED_LEGACY = ("VALID_EXECUTION_ENGINES", "TRANSPILER_VALID_STRATEGIES", "TRANSPILER_VALID_FRAMEWORKS")

# The settings the client commands (``submit``, ``cancel``, ``status``) take as flags: where the
# brokers, topics and script bucket are. The others are still read from the environment, as for the
# service. Kafka security settings, whatever their names, connect the client like the service.
CLIENT_OPTIONS = (
    "kafka_bootstrap_servers",
    "consumer_topic",
    "status_topic",
    "cmd_submit_topic",
    "cmd_return_topic",
    "scripts_exchange_s3_bucket_name",
)
CLIENT_OPTION_PREFIXES = ("kafka_security_", "kafka_ssl_", "kafka_sasl_")


def env_name(option: Option) -> str:
    return option.name.upper()


def is_client_option(option: Option) -> bool:
    return option.name in CLIENT_OPTIONS or option.name.startswith(CLIENT_OPTION_PREFIXES)


def add_arguments(
    parser: argparse.ArgumentParser,
    *,
    client: bool = False,
    title: str = "service configuration (flag or environment variable)",
) -> None:
    """One flag per option, defaulting to None so that the environment decides when it is absent.

    ``client``: only the options of :data:`CLIENT_OPTIONS` (and Kafka security), for the client commands.
    """
    group = parser.add_argument_group(title)
    for option in OPTIONS:
        if client and not is_client_option(option):
            continue
        default = "required" if option.default is None else repr(option.default)
        group.add_argument(
            "--" + option.name.replace("_", "-"),
            dest=option.name,
            default=None,
            help=f"{option.help} [env {env_name(option)}; default {default}]",
        )


def load_settings(
    flags: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, client: bool = False
) -> Settings:
    """Settings from flags (winning) and the environment (``os.environ`` unless ``environ`` is given);
    raises :class:`ConfigError` listing all problems.

    ``client``: for ``submit``/``cancel``/``status``/``logs``, which only talk to Kafka (and S3 for
    scripts, SageMaker and CloudWatch Logs with the user's identity), the SageMaker settings and the
    region are optional.
    """
    model = ClientSettings if client else Settings
    # Each flag under its variable's name, the one alias the model reads (case_sensitive).
    given = {
        name.upper(): value
        for name, value in flags.items()
        if value is not None and name in Settings.model_fields
    }
    token = ENVIRON.set(environ)
    try:
        return model(**given)
    except ValidationError as error:
        problems = [line for detail in error.errors(include_url=False) for line in _sentences(detail)]
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems)) from None
    finally:
        ENVIRON.reset(token)


def _sentences(detail: Any) -> list[str]:
    """One pydantic error as the lines of the message; the input is quoted only by our own parsers."""
    kind, context = detail["type"], detail.get("ctx") or {}
    if kind == "combination":
        return list(context["problems"])
    # By field name (our own errors) or by variable (pydantic's location is the alias read).
    name = str(context.get("name") or (detail["loc"][0] if detail["loc"] else "")).lower()
    if kind == "required" and name == "aws_region":
        return ["AWS_DEFAULT_REGION (or AWS_REGION) is required: the region the jobs run in"]
    if kind == "required":
        help_text = Settings.model_fields[name].description
        return [f"{name.upper()} (or --{name.replace('_', '-')}) is required: {help_text}"]
    if kind == "setting":
        return [f"{label(name)} {context['text']}"]
    return [f"{label(name)} is invalid: {detail['msg']}"]


def ignored_legacy_variables(environ: Mapping[str, str] | None = None) -> Sequence[str]:
    env = os.environ if environ is None else environ
    return [name for name in IGNORED_LEGACY if name in env]
