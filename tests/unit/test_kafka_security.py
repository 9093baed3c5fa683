"""Kafka security settings: what each combination of KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_* and
KAFKA_SASL_* makes of the clients' configuration, that kafka-python's own mechanisms accept it, which
combinations are refused at start-up, and that the secrets never show.

A real TLS connection is tested in ``tests/integration/test_kafka_tls.py``. SASL is tested here only as
configuration: the embedded broker (Tansu 0.6.0) offers no PLAIN, and its SCRAM exchange stalls before
the last message, so no broker that can run here completes a SASL login (see the README).
"""

from __future__ import annotations

import base64
import json
import logging
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.net.sasl import get_sasl_mechanism

from sagemaker_executor.adapters.kafka import connection_config
from sagemaker_executor.config import ConfigError, load_settings
from sagemaker_executor.logs import JsonFormatter, SecretMaskingFilter, add_secret

BASE = {
    "KAFKA_BOOTSTRAP_SERVERS": "b-1.kafka.example:9096,b-2.kafka.example:9096",
    "SAGEMAKER_OUTPUT_BUCKET": "bai-output",
    "SAGEMAKER_NODATASET": "s3://bai-data-pull/no-data",
    "SAGEMAKER_ROLE": "bai-sagemaker",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SASL_PASSWORD = "sasl-Pa55word-value"
KEY_PASSWORD = "key-Pa55word-value"


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    """Paths of readable files standing in for the PEM files (the settings only check readability)."""
    files = {}
    for name in ("ca.pem", "client.pem", "client.key", "key-password", "sasl-password"):
        path = tmp_path / name
        path.write_text("-----BEGIN PLACEHOLDER-----\n")
        files[name] = str(path)
    Path(files["key-password"]).write_text(KEY_PASSWORD + "\n")  # as `echo` writes it
    Path(files["sasl-password"]).write_text(SASL_PASSWORD)
    return files


def client_config(**environ: str) -> dict[str, Any]:
    settings = load_settings({}, {**BASE, **environ})
    return connection_config(settings.kafka_options("sm-executor-test", "sm-executor"))


def without_common(config: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in config.items() if k not in ("bootstrap_servers", "client_id", "bootstrap_timeout_ms")
    }


def test_the_default_is_plaintext_with_no_tls_or_sasl_keys() -> None:
    config = client_config()

    assert without_common(config) == {"security_protocol": "PLAINTEXT"}
    assert config["bootstrap_servers"] == ["b-1.kafka.example:9096", "b-2.kafka.example:9096"]
    assert config["client_id"] == "sm-executor-test"
    assert config["bootstrap_timeout_ms"] == 30_000  # KAFKA_CONNECT_TIMEOUT_SECONDS' default


def test_tls_with_a_ca_a_client_certificate_and_a_key_password_from_a_file(pem: dict[str, str]) -> None:
    config = client_config(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=pem["ca.pem"],
        KAFKA_SSL_CERTFILE=pem["client.pem"],
        KAFKA_SSL_KEYFILE=pem["client.key"],
        KAFKA_SSL_KEY_PASSWORD_FILE=pem["key-password"],
    )

    assert without_common(config) == {
        "security_protocol": "SSL",
        "ssl_cafile": pem["ca.pem"],
        "ssl_certfile": pem["client.pem"],
        "ssl_keyfile": pem["client.key"],
        "ssl_password": KEY_PASSWORD,  # the file's trailing newline is not part of it
        "ssl_check_hostname": True,
    }


def test_tls_with_the_system_cas_and_no_hostname_check() -> None:
    config = client_config(KAFKA_SECURITY_PROTOCOL="ssl", KAFKA_SSL_CHECK_HOSTNAME="false")

    assert without_common(config) == {
        "security_protocol": "SSL",
        "ssl_cafile": None,  # kafka-python then loads the system's default CAs
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "ssl_password": None,
        "ssl_check_hostname": False,
    }


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [
        ("SASL_SSL", "PLAIN"),
        ("SASL_PLAINTEXT", "PLAIN"),
        ("SASL_SSL", "SCRAM-SHA-256"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        ("SASL_SSL", "SCRAM-SHA-512"),
    ],
)
def test_sasl_with_a_password_from_the_environment(protocol: str, mechanism: str) -> None:
    config = client_config(
        KAFKA_SECURITY_PROTOCOL=protocol,
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="bai",
        KAFKA_SASL_PASSWORD=SASL_PASSWORD,
    )

    sasl = {k: v for k, v in config.items() if k.startswith("sasl_")}
    assert sasl == {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "bai",
        "sasl_plain_password": SASL_PASSWORD,
    }
    assert config["security_protocol"] == protocol
    assert ("ssl_cafile" in config) == (protocol == "SASL_SSL")


def test_sasl_password_from_a_file(pem: dict[str, str]) -> None:
    config = client_config(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="scram-sha-512",
        KAFKA_SASL_USERNAME="bai",
        KAFKA_SASL_PASSWORD_FILE=pem["sasl-password"],
    )

    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_password"] == SASL_PASSWORD


def test_msk_iam_sends_no_user_name_or_password() -> None:
    config = client_config(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="AWS_MSK_IAM")

    assert {k: v for k, v in config.items() if k.startswith("sasl_")} == {"sasl_mechanism": "AWS_MSK_IAM"}
    assert config["ssl_check_hostname"] is True


MECHANISM_SETTINGS = {
    "PLAIN": {"KAFKA_SASL_USERNAME": "bai", "KAFKA_SASL_PASSWORD": SASL_PASSWORD},
    "SCRAM-SHA-256": {"KAFKA_SASL_USERNAME": "bai", "KAFKA_SASL_PASSWORD": SASL_PASSWORD},
    "SCRAM-SHA-512": {"KAFKA_SASL_USERNAME": "bai", "KAFKA_SASL_PASSWORD": SASL_PASSWORD},
    "AWS_MSK_IAM": {},
}


@pytest.mark.parametrize("mechanism", sorted(MECHANISM_SETTINGS))
@pytest.mark.parametrize("client", [KafkaConsumer, KafkaProducer, KafkaAdminClient])
def test_every_key_is_one_that_each_client_type_knows(mechanism: str, client: type[Any]) -> None:
    config = client_config(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM=mechanism, **MECHANISM_SETTINGS[mechanism]
    )

    assert set(config) <= set(client.DEFAULT_CONFIG)


def test_plain_gives_kafka_python_the_user_and_password() -> None:
    config = client_config(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="PLAIN", **MECHANISM_SETTINGS["PLAIN"]
    )

    mechanism = get_sasl_mechanism("PLAIN")(**config)

    assert mechanism.auth_bytes() == f"bai\0bai\0{SASL_PASSWORD}".encode()  # authzid, authcid, password


@pytest.mark.parametrize("name", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_starts_the_exchange_as_the_configured_user(name: str) -> None:
    config = client_config(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM=name, **MECHANISM_SETTINGS[name]
    )

    mechanism = get_sasl_mechanism(name)(**config)

    assert mechanism.auth_bytes().startswith(b"n,,n=bai,r=")


def test_msk_iam_signs_with_the_aws_identity_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXECUTORTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "executor-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "executor-token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = client_config(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="AWS_MSK_IAM")

    mechanism = get_sasl_mechanism("AWS_MSK_IAM")(**config, host="b-1.msk.example")
    signed = json.loads(mechanism.auth_bytes())

    assert signed["action"] == "kafka-cluster:Connect"
    assert signed["host"] == "b-1.msk.example"
    assert signed["x-amz-credential"].startswith("AKIDEXECUTORTEST/")
    assert "/eu-west-1/kafka-cluster/aws4_request" in signed["x-amz-credential"]
    assert signed["x-amz-security-token"] == "executor-token"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),  # with PLAINTEXT
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"}, "SASL_SSL"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_PASSWORD": "pw12",
            },
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SSL_CAFILE": "/etc/hostname"}, "KAFKA_SSL_CAFILE"),  # with PLAINTEXT
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/no/such/ca.pem"}, "KAFKA_SSL_CAFILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/etc/hostname"}, "KAFKA_SSL_KEYFILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PASSWORD": "pw12"}, "KAFKA_SSL_KEY_PASSWORD"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CHECK_HOSTNAME": "maybe"}, "KAFKA_SSL_CHECK_HOSTNAME"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD_FILE": "/no/such/file",
            },
            "KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"KAFKA_CONNECT_TIMEOUT_SECONDS": "0"}, "KAFKA_CONNECT_TIMEOUT_SECONDS"),
    ],
)
def test_a_combination_that_cannot_work_is_refused_naming_the_setting(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({}, {**BASE, **environ})


def test_a_secret_in_both_the_variable_and_its_file_is_refused(pem: dict[str, str]) -> None:
    with pytest.raises(
        ConfigError, match=r"KAFKA_SASL_PASSWORD .* and KAFKA_SASL_PASSWORD_FILE .* are both set"
    ):
        load_settings(
            {},
            {
                **BASE,
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "bai",
                "KAFKA_SASL_PASSWORD": SASL_PASSWORD,
                "KAFKA_SASL_PASSWORD_FILE": pem["sasl-password"],
            },
        )


def test_flags_configure_security_like_every_setting(pem: dict[str, str]) -> None:
    flags = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_sasl_username": "from-flag",
        "kafka_sasl_password_file": pem["sasl-password"],
        "kafka_ssl_cafile": pem["ca.pem"],
    }
    environ = {**BASE, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_USERNAME": "from-env"}

    config = connection_config(load_settings(flags, environ).kafka_options("c"))

    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_plain_username"] == "from-flag"
    assert config["sasl_plain_password"] == SASL_PASSWORD
    assert config["ssl_cafile"] == pem["ca.pem"]


def test_secrets_are_not_in_the_settings_the_start_up_line_or_the_options(pem: dict[str, str]) -> None:
    settings = load_settings(
        {},
        {
            **BASE,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": "bai",
            "KAFKA_SASL_PASSWORD": SASL_PASSWORD,
            "KAFKA_SSL_CERTFILE": pem["client.pem"],
            "KAFKA_SSL_KEY_PASSWORD_FILE": pem["key-password"],
        },
    )
    shown = [repr(settings), str(settings), repr(settings.redacted()), repr(settings.kafka_options("c", "g"))]

    for text in shown:
        assert SASL_PASSWORD not in text and KEY_PASSWORD not in text
    assert settings.redacted()["kafka_sasl_password"] == "***"
    assert settings.redacted()["kafka_ssl_key_password"] == "***"
    assert settings.redacted()["kafka_sasl_username"] == "bai"
    assert sorted(settings.secrets()) == sorted([SASL_PASSWORD, KEY_PASSWORD])


def test_an_unset_secret_is_none_in_the_start_up_line() -> None:
    assert load_settings({}, BASE).redacted()["kafka_sasl_password"] is None


def test_a_registered_secret_is_masked_wherever_a_library_logs_it() -> None:
    # kafka-python at DEBUG prints a SASL PLAIN request's bytes, password included.
    add_secret("registered-Secret-42")
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMaskingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kafka.protocol.parser.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.debug("Send: %r", b"\x00bai\x00registered-Secret-42")
        logger.debug("SaslAuthenticateRequest(auth_bytes=%s)", base64.b64encode(b"unrelated").decode())
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "registered-Secret-42" not in text
    assert "\\\\x00bai\\\\x00***" in text
    assert "dW5yZWxhdGVk" in text  # everything else is kept
