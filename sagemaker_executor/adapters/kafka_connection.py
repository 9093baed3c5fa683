"""How every Kafka client of the package reaches the brokers: the settings (:class:`KafkaOptions`, with
:class:`KafkaSecurity` for TLS and SASL), the kafka-python keywords they become, and a quiet start-up.

Every KafkaConsumer, KafkaProducer and KafkaAdminClient the package creates (``adapters.kafka``: the
group member, the publisher, the topic set-up, the broker probe; the ``submit``/``cancel`` client's
consumer) takes its connection keywords from :func:`connection_config`, so a secured cluster is
configured in one place and TLS and SASL apply to all of them alike (README, *Secured Kafka*).
``config.load_settings`` builds the options and checks the combinations; the keyword names are
kafka-python 3.x's (``security_protocol``, ``ssl_*``, ``sasl_*``, ``bootstrap_timeout_ms``).

:func:`bootstrapping` is here because it is about reaching the brokers too: kafka-python logs dozens of
lines for a bootstrap that fails, and start-up wants one exception saying why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError

from sagemaker_executor.domain.errors import KafkaOutage
from sagemaker_executor.domain.limits import DEFAULT_MAX_REQUEST_BYTES

# The SASL mechanisms that take a user name and password; AWS_MSK_IAM signs with the AWS identity
# botocore finds (IRSA, environment, profile) instead.
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How the clients authenticate and encrypt: kafka-python's ``security_protocol`` and its
    ``ssl_*``/``sasl_*`` settings. File names are PEM files; secrets are never in the repr.

    ``protocol``: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; ``sasl_mechanism`` (with the ``SASL_*``
    protocols): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM. ``ssl_cafile`` None means the
    system's CAs. ``config.load_settings`` checks the combinations; this class only carries them.
    """

    protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap_servers: Sequence[str]
    client_id: str
    group_id: str
    auto_offset_reset: str = "latest"
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    request_timeout_ms: int = 30000
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # the producer's max.request.size
    security: KafkaSecurity = KafkaSecurity()
    # How long a new client waits for its first broker answer before raising KafkaTimeoutError.
    bootstrap_timeout_ms: int = 30000


def connection_config(options: KafkaOptions, client_id: str | None = None) -> dict[str, Any]:
    """The kafka-python keywords that say how to reach the brokers, for any client type.

    ``bootstrap_servers``, ``client_id`` (``options.client_id`` unless given), ``security_protocol``,
    ``bootstrap_timeout_ms``, and the ``ssl_*`` keys when the protocol uses TLS and the ``sasl_*``
    keys when it uses SASL (username and password only for the mechanisms that take them).
    """
    security = options.security
    config: dict[str, Any] = {
        "bootstrap_servers": list(options.bootstrap_servers),
        "client_id": options.client_id if client_id is None else client_id,
        "security_protocol": security.protocol,
        "bootstrap_timeout_ms": options.bootstrap_timeout_ms,
    }
    if security.protocol in ("SSL", "SASL_SSL"):
        config.update(
            ssl_cafile=security.ssl_cafile,
            ssl_certfile=security.ssl_certfile,
            ssl_keyfile=security.ssl_keyfile,
            ssl_password=security.ssl_key_password,
            ssl_check_hostname=security.ssl_check_hostname,
        )
    if security.protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        config["sasl_mechanism"] = security.sasl_mechanism
        if security.sasl_mechanism in PASSWORD_MECHANISMS:
            config.update(
                sasl_plain_username=security.sasl_username, sasl_plain_password=security.sasl_password
            )
    return config


# The cause in kafka-python's log of a failed connection attempt: "Connection failed: KafkaConnectionError:
# 111 ECONNREFUSED", "Bootstrap connection to bootstrap-0 failed: ... (backoff 0.37 secs)", or a TLS
# handshake or SASL error in the same place (not the final "Bootstrap failed: KafkaTimeoutError").
_CONNECTION_FAILURE = re.compile(
    r"[Cc]onnection(?: to \S+)? failed: (?P<cause>\w+(?:Error|Exception)\b.*?)(?: \(backoff [^)]*\))?$"
)


class BrokersUnreachable(KafkaOutage):
    """No broker answered while start-up connected; ``cause`` is why the last attempt failed
    (``"KafkaConnectionError: 111 ECONNREFUSED"``, a TLS handshake error ...)."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"no broker answered: {cause}")
        self.cause = cause


@contextmanager
def bootstrapping() -> Iterator[None]:
    """Connect at start-up quietly, and say why in one exception when no broker answers.

    kafka-python logs two ERRORs and two WARNINGs per failed connection attempt, dozens of lines
    before a bootstrap gives up. Inside the block its records at WARNING and above are held back (the
    cause of each failed attempt is kept), and a ``KafkaError`` raised inside becomes
    :class:`BrokersUnreachable` with the last cause. Other exceptions pass through unchanged.
    """
    causes: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = _CONNECTION_FAILURE.search(record.getMessage())
            if found:
                causes.append(found["cause"])

    kafka_log = logging.getLogger("kafka")
    handler = Collect(logging.WARNING)
    propagate = kafka_log.propagate
    kafka_log.addHandler(handler)
    kafka_log.propagate = False
    try:
        yield
    except KafkaError as error:
        raise BrokersUnreachable(causes[-1] if causes else repr(error)) from error
    finally:
        kafka_log.removeHandler(handler)
        kafka_log.propagate = propagate
