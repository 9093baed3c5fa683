"""Service configuration: the original's environment variables (CONTRACT §6), the same as CLI flags.

``cli`` builds a :class:`Settings` with :func:`load_settings` at start-up; everything else receives the
typed object. Each setting is an environment variable (``KAFKA_BOOTSTRAP_SERVERS``) and a flag
(``--kafka-bootstrap-servers``); a flag wins. Anything missing or malformed stops start-up with one
message listing every problem, so a misconfigured pod fails fast and says why.

An existing deployment swaps images with only the original variables plus the standard AWS ones;
every setting this project added has a default.

Secrets (``KAFKA_SSL_KEY_PASSWORD``, ``KAFKA_SASL_PASSWORD``) come from the variable or from the file
its ``*_FILE`` setting names (a mounted Kubernetes Secret); :class:`Settings` holds them as pydantic
``SecretStr``, so neither its repr nor :meth:`Settings.redacted` (the start-up log line) shows them.

Why a library: reading variables and flags in order, merging them, and collecting every field's error
into one report is what pydantic-settings does (its init source for the flags over its environment
source, pydantic's validation of all fields at once). What stays ours is what is specific to this
service: each value's parser and its message (``values``: the wording deployments and tests know,
"must be a Kafka topic name ..., got 'x'"), the rules tying the Kafka security settings together
(``kafka``), the model with its names, defaults and help (``settings``), and the translation of
pydantic's errors into one message naming variables and flags (``load``).
"""

from sagemaker_executor.config.load import (
    CLIENT_OPTION_PREFIXES,
    CLIENT_OPTIONS,
    IGNORED_LEGACY,
    OPTIONS,
    ConfigError,
    Option,
    add_arguments,
    env_name,
    ignored_legacy_variables,
    is_client_option,
    load_settings,
)
from sagemaker_executor.config.settings import ClientSettings, RequestBuilderName, Settings
from sagemaker_executor.config.values import MAX_CREATE_RATE, SASL_MECHANISMS, SECURITY_PROTOCOLS

__all__ = [
    "CLIENT_OPTIONS",
    "CLIENT_OPTION_PREFIXES",
    "IGNORED_LEGACY",
    "MAX_CREATE_RATE",
    "OPTIONS",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "ClientSettings",
    "ConfigError",
    "Option",
    "RequestBuilderName",
    "Settings",
    "add_arguments",
    "env_name",
    "ignored_legacy_variables",
    "is_client_option",
    "load_settings",
]
