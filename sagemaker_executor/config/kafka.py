"""The rules that tie the Kafka security settings together (protocol, TLS files, SASL mechanism and
credentials), checked by ``config.settings.Settings`` once each value is valid on its own.

Each rule returns a sentence naming the settings to change; none quotes a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagemaker_executor.config.values import SASL_MECHANISMS

if TYPE_CHECKING:
    from sagemaker_executor.config.settings import Settings

_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")


def label(name: str) -> str:
    return f"{name.upper()} (--{name.replace('_', '-')})"


def kafka_security_problems(settings: Settings) -> list[str]:
    """Every problem of the Kafka security settings taken together; empty when they can work."""
    return [*_tls_problems(settings), *_sasl_problems(settings)]


def _tls_problems(s: Settings) -> list[str]:
    problems = [
        f"{label(name)} is set but KAFKA_SECURITY_PROTOCOL is not SSL or SASL_SSL"
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        if getattr(s, name) and s.kafka_security_protocol not in _TLS
    ]
    if s.kafka_ssl_keyfile and not s.kafka_ssl_certfile:
        problems.append(f"{label('kafka_ssl_keyfile')} is set but KAFKA_SSL_CERTFILE is not")
    if s.kafka_ssl_key_password is not None and not s.kafka_ssl_certfile:
        problems.append(f"{label('kafka_ssl_key_password')} is set but KAFKA_SSL_CERTFILE is not")
    return problems


def _sasl_problems(s: Settings) -> list[str]:
    protocol, mechanism = s.kafka_security_protocol, s.kafka_sasl_mechanism
    sasl = protocol in _SASL
    problems = []
    if mechanism and mechanism not in SASL_MECHANISMS:
        problems.append(
            f"{label('kafka_sasl_mechanism')} must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}"
        )
    if sasl and not mechanism:
        problems.append(
            f"{label('kafka_sasl_mechanism')} is required with KAFKA_SECURITY_PROTOCOL={protocol}"
        )
    if mechanism and not sasl:
        problems.append(
            f"{label('kafka_sasl_mechanism')} is set but KAFKA_SECURITY_PROTOCOL is not SASL_PLAINTEXT or "
            "SASL_SSL"
        )
    if mechanism == "AWS_MSK_IAM":
        problems += _msk_iam_problems(s)
    elif sasl and mechanism in SASL_MECHANISMS:
        if not s.kafka_sasl_username:
            problems.append(
                f"{label('kafka_sasl_username')} is required with KAFKA_SASL_MECHANISM={mechanism}"
            )
        if s.kafka_sasl_password is None:
            problems.append(
                f"{label('kafka_sasl_password')} (or KAFKA_SASL_PASSWORD_FILE) is required with "
                f"KAFKA_SASL_MECHANISM={mechanism}"
            )
    return problems


def _msk_iam_problems(s: Settings) -> list[str]:
    problems = []
    if s.kafka_security_protocol != "SASL_SSL":
        problems.append(f"{label('kafka_sasl_mechanism')} AWS_MSK_IAM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL")
    if s.kafka_sasl_username or s.kafka_sasl_password is not None:
        problems.append(
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are not used with AWS_MSK_IAM: it signs with "
            "the executor's AWS identity"
        )
    return problems
