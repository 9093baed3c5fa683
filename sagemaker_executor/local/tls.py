"""TLS in front of the embedded broker, for tests: a throw-away CA and Debian's ``stunnel4``.

Owns the certificates (:class:`CertificateAuthority`: a CA that issues server and client certificates
as PEM files, built with ``cryptography``) and the terminator process (:class:`TlsTerminator`: stunnel
accepting TLS on one port and forwarding plaintext to the broker's). Start the broker with
``LocalBroker(advertised_port=terminator_port)`` so that the metadata it returns sends the clients
back through TLS. Used by ``tests/integration/test_kafka_tls.py``; never by the deployed service.

``stunnel4`` is a Debian package (``apt-get install -y stunnel4``; ``.ci/run`` installs it). Its
``verifyChain`` option makes it require a client certificate signed by the CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sagemaker_executor.local.broker import free_port

_VALID = datetime.timedelta(days=2)


class TlsError(RuntimeError):
    """stunnel is missing, or did not start; the message carries the tail of its log."""


def stunnel_binary() -> str | None:
    """Path of Debian's stunnel (``stunnel4`` package), or None when it is not installed."""
    return shutil.which("stunnel4") or shutil.which("stunnel")


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key as PEM files; ``key_password`` is set when the key is
    encrypted with it."""

    cert: Path
    key: Path
    key_password: str | None = None


class CertificateAuthority:
    """A self-signed CA (EC P-256) whose certificate is written to ``directory / f"{name}-ca.pem"``."""

    def __init__(self, directory: Path, name: str = "test") -> None:
        self._directory = directory
        self._name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{name}-ca.pem"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, *, hosts: tuple[str, ...] = (), client: bool = False, key_password: str | None = None
    ) -> IssuedCertificate:
        """A certificate for ``name`` signed by this CA: a server certificate whose subjectAltName lists
        ``hosts`` (IP addresses or DNS names), or with ``client`` a client certificate. The key is
        encrypted with ``key_password`` when one is given."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False
            )
        cert = builder.sign(self._key, hashes.SHA256())
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(key_password.encode())
            if key_password
            else serialization.NoEncryption()
        )
        cert_path = self._directory / f"{self._name}-{name}.pem"
        key_path = self._directory / f"{self._name}-{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        )
        key_path.chmod(0o600)
        return IssuedCertificate(cert_path, key_path, key_password)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class TlsTerminator:
    """stunnel accepting TLS on ``port`` (a free one by default) with ``server``'s certificate and
    forwarding the plaintext to ``target_port``; a context manager (start on enter, stop on exit).

    ``client_ca``: require a client certificate signed by that CA (stunnel ``verifyChain``).
    """

    def __init__(
        self,
        target_port: int,
        server: IssuedCertificate,
        directory: Path,
        *,
        port: int | None = None,
        client_ca: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._target_port = target_port
        self._server = server
        self._client_ca = client_ca
        self._config = directory / f"stunnel-{self.port}.conf"
        self.log_path = directory / f"stunnel-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start stunnel and return once it accepts connections; raises :class:`TlsError` otherwise."""
        binary = stunnel_binary()
        if binary is None:
            raise TlsError("stunnel is not installed: apt-get install -y stunnel4")
        lines = [
            "foreground = yes",
            "pid =",
            f"output = {self.log_path}",
            "debug = notice",
            "[kafka]",
            f"accept = {self.host}:{self.port}",
            f"connect = {self.host}:{self._target_port}",
            f"cert = {self._server.cert}",
            f"key = {self._server.key}",
        ]
        if self._client_ca is not None:
            lines += [f"CAfile = {self._client_ca}", "requireCert = yes", "verifyChain = yes"]
        self._config.write_text("\n".join(lines) + "\n")
        self._proc = subprocess.Popen(
            [binary, str(self._config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise TlsError(f"stunnel exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TlsError(
            f"stunnel did not listen on {self.bootstrap_servers} in {timeout:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s. Safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, max_bytes: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-max_bytes:].decode("utf-8", errors="replace")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
