"""Kafka over a real TLS connection: Debian's stunnel4 in front of the embedded broker, which
advertises stunnel's port so that every connection a client makes goes through TLS.

The terminator requires a client certificate signed by the test CA (mutual TLS), and the client's key
is encrypted, its password read from a file. Every client the service creates is exercised with the
settings as an operator would give them (environment variables through ``load_settings``), then the
executor itself handles a benchmark over TLS. The refusals show that each check is really made: no
client certificate, a broker certificate from another CA, a certificate for another host name.

``.ci/run`` installs stunnel4; without it these tests are skipped, except in CI where that is a failure.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from sagemaker_executor.adapters.kafka import (
    BrokerCheck,
    KafkaOptions,
    KafkaOutage,
    Publisher,
    Subscriber,
    ensure_topics,
    partition_count,
    read_compacted,
)
from sagemaker_executor.config import load_settings
from sagemaker_executor.local.broker import LocalBroker, free_port
from sagemaker_executor.local.server import LocalSageMakerControl
from sagemaker_executor.local.tls import (
    CertificateAuthority,
    IssuedCertificate,
    TlsTerminator,
    stunnel_binary,
)
from tests.builders import fetcher_event
from tests.integration.conftest import Pipeline, Topics

pytestmark = pytest.mark.integration

KEY_PASSWORD = "client-key-Pa55"
REQUIRED = {
    "SAGEMAKER_OUTPUT_BUCKET": "sm-output",
    "SAGEMAKER_NODATASET": "s3://data-pull/no-data",
    "SAGEMAKER_ROLE": "bai-sagemaker",
    "AWS_DEFAULT_REGION": "us-east-1",
}
REFUSAL_TIMEOUT_MS = 3000


@dataclass
class TlsSite:
    broker: LocalBroker
    terminator: TlsTerminator  # requires a client certificate
    ca: CertificateAuthority
    client: IssuedCertificate
    key_password_file: Path
    directory: Path

    @property
    def bootstrap(self) -> str:
        return self.terminator.bootstrap_servers

    def environ(self, **extra: str) -> dict[str, str]:
        """The executor's Kafka settings for this site: TLS with the CA, the client certificate and the
        key's password file, hostname check on (the default)."""
        settings = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CAFILE": str(self.ca.cert),
            "KAFKA_SSL_CERTFILE": str(self.client.cert),
            "KAFKA_SSL_KEYFILE": str(self.client.key),
            "KAFKA_SSL_KEY_PASSWORD_FILE": str(self.key_password_file),
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "CONSUMER_AUTO_OFFSET_RESET": "earliest",
        }
        settings.update(extra)
        return {k: v for k, v in settings.items() if v != ""}

    def options(self, group: str = "", **extra: str) -> KafkaOptions:
        settings = load_settings({}, {**REQUIRED, **self.environ(**extra)})
        return settings.kafka_options(f"tls-test-{uuid.uuid4().hex[:6]}", group)

    def client_config(self) -> dict[str, Any]:
        """The same TLS settings as kafka-python keywords, for the test's own clients."""
        return {
            "security_protocol": "SSL",
            "ssl_cafile": str(self.ca.cert),
            "ssl_certfile": str(self.client.cert),
            "ssl_keyfile": str(self.client.key),
            "ssl_password": KEY_PASSWORD,
        }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSite]:
    if stunnel_binary() is None:
        message = "stunnel4 is not installed (apt-get install -y stunnel4; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority(directory)
    server = ca.issue("broker", hosts=("127.0.0.1",))
    client = ca.issue("executor", client=True, key_password=KEY_PASSWORD)
    key_password_file = directory / "key-password"
    key_password_file.write_text(KEY_PASSWORD + "\n")
    tls_port = free_port()
    with (
        LocalBroker(advertised_port=tls_port) as broker,
        TlsTerminator(broker.port, server, directory, port=tls_port, client_ca=ca.cert) as terminator,
    ):
        yield TlsSite(broker, terminator, ca, client, key_password_file, directory)


def test_every_service_client_works_over_mutual_tls_with_the_ca_and_hostname_checked(tls: TlsSite) -> None:
    prefix = "TLS" + uuid.uuid4().hex[:8]
    jobs, state = f"{prefix}.in", f"{prefix}.state"
    options = tls.options(group=f"{prefix}-group")
    assert options.security.ssl_check_hostname and options.security.ssl_key_password == KEY_PASSWORD

    assert ensure_topics(options, [jobs, state], 1, 1, compacted=[state]) == sorted([jobs, state])
    assert partition_count(options, jobs) == 1
    publisher = Publisher(options)
    subscriber = Subscriber(options, [jobs])
    try:
        publisher.send(jobs, "client-1", {"n": 1})
        publisher.send(state, "job-1", {"status": "InProgress"})
        publisher.flush(timeout_s=30)
        assert [r.value for r in read_compacted(options, state, [0])] == [b'{"status":"InProgress"}']

        received = []
        for _ in range(60):
            received += subscriber.poll(500, 10)
            if received:
                break
        assert [(r.topic, r.offset, r.value) for r in received] == [(jobs, 0, b'{"n":1}')]
        subscriber.commit_offsets({(jobs, 0): 1})
        assert subscriber.lag() == {(jobs, 0): 0}
        BrokerCheck(options, timeout_ms=5000)()  # the readiness probe's own admin client
    finally:
        subscriber.close()
        publisher.close()


def test_a_client_without_a_certificate_is_refused(tls: TlsSite) -> None:
    options = tls.options(
        KAFKA_SSL_CERTFILE="",
        KAFKA_SSL_KEYFILE="",
        KAFKA_SSL_KEY_PASSWORD_FILE="",
        KAFKA_CONNECT_TIMEOUT_SECONDS="3",
    )
    with pytest.raises(KafkaOutage):
        BrokerCheck(options, timeout_ms=REFUSAL_TIMEOUT_MS)()
    assert "peer did not return a certificate" in tls.terminator.log_tail()


def test_a_broker_certificate_signed_by_another_ca_is_refused(tls: TlsSite, tmp_path: Path) -> None:
    other = CertificateAuthority(tmp_path, name="other")
    options = tls.options(KAFKA_SSL_CAFILE=str(other.cert))
    with pytest.raises(KafkaOutage):
        BrokerCheck(options, timeout_ms=REFUSAL_TIMEOUT_MS)()


def test_a_certificate_for_another_host_is_refused_while_the_hostname_check_is_on(
    tls: TlsSite, tmp_path: Path
) -> None:
    elsewhere = tls.ca.issue("elsewhere", hosts=("broker.elsewhere.example",))
    with TlsTerminator(tls.broker.port, elsewhere, tmp_path, client_ca=tls.ca.cert) as wrong_name:
        checked = tls.options(KAFKA_BOOTSTRAP_SERVERS=wrong_name.bootstrap_servers)
        with pytest.raises(KafkaOutage):
            BrokerCheck(checked, timeout_ms=REFUSAL_TIMEOUT_MS)()

        unchecked = tls.options(
            KAFKA_BOOTSTRAP_SERVERS=wrong_name.bootstrap_servers, KAFKA_SSL_CHECK_HOSTNAME="false"
        )
        BrokerCheck(unchecked, timeout_ms=5000)()


def test_the_executor_handles_a_benchmark_over_tls_and_starts_without_a_warning(
    tls: TlsSite,
    local_sagemaker: tuple[str, LocalSageMakerControl],
    aws: boto3.Session,
    tmp_path: Path,
) -> None:
    url, control = local_sagemaker
    topics = Topics("T" + uuid.uuid4().hex[:10])
    ensure_topics(tls.options(), topics.all(), 1, 1, compacted=[topics.tracking])
    p = Pipeline(
        tls.bootstrap,
        url,
        aws,
        control,
        tmp_path,
        topics,
        group=f"{topics.prefix}-group",
        client_config=tls.client_config(),
    )
    try:
        # Job tracking on (the default): its state reader and partition count go over TLS too.
        executor = p.start_executor(**tls.environ())
        event = fetcher_event()
        p.publish(topics.fetcher, event)
        p.wait_for(
            lambda: "SUCCEEDED" in p.statuses_only(event["action_id"]),
            timeout=90,
            what="SUCCEEDED over TLS",
        )
        assert executor.terminate() == 0
    finally:
        p.close()

    log = executor.log_text()
    assert "consuming" in log and "stopped; handled" in log
    assert not re.findall(r"^.* (?:WARNING|ERROR|CRITICAL) .*$", log, re.M), log
    assert KEY_PASSWORD not in log
