"""`hookstream kafka start --secure`: what turns a local broker node into a secure one (SPEC §7).

A `SASL_SSL` listener (SCRAM-SHA-512) on the bootstrap port, certificates from a certificate authority
generated here, Kafka's `StandardAuthorizer` denying whatever no ACL allows, a controller listener that
authenticates too (SASL/PLAIN with a static user: a PLAINTEXT one would need `User:ANONYMOUS` as a super
user, which makes the controller port an open admin port), one SCRAM user per role with a random
password, and the roles' ACLs. An extra `SSL` listener (port + 2) asks for a client certificate: a
certificate `CN=<role>` maps to the principal `User:<role>`, so mutual TLS gets the same ACLs.

The launcher (`hookstream.localkafka`) asks this module, per node, for the properties to lay over its
own, for the arguments that create the users at format time, and, once the node answers, to grant the
ACLs and write `<cache>/broker-<port>/secure/<role>.env` (mode 600) for each role.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hookstream import acls
from hookstream import kafkasecurity as ks
from hookstream.errors import LocalKafkaError
from hookstream.kafkasecurity import KafkaSecurity
from hookstream.settings import Secret, Settings

MECHANISM: Final = "SCRAM-SHA-512"
CONTROLLER_USER = "controller"
ADMIN = "admin"
VALID_DAYS = 825
PRIVATE = 0o600
_LOGIN = "org.apache.kafka.common.security"


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8: the broker's PEM keystore refuses the traditional `BEGIN EC PRIVATE KEY` form.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate for `key`: a self-signed CA when `issuer` is None, else a leaf it signs that serves
    `hosts` (its names and IP addresses) and authenticates as a client (the broker is its own client)."""
    now = datetime.datetime.now(datetime.UTC)
    signer = key if issuer is None else issuer[1]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name) if issuer is None else issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        return builder.add_extension(usage, critical=True).sign(signer, hashes.SHA256())
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    purposes = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if hosts else [])
    builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)
    return builder.sign(signer, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read, with no moment in which others could."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(PRIVATE)


@dataclass(frozen=True, slots=True)
class SecureNode:
    """The secure parts of one local broker node, kept under `<home>/secure`."""

    home: Path
    host: str
    port: int
    mtls: bool = True  # the extra mutual-TLS listener on port + 2 (a single node's)

    @property
    def dir(self) -> Path:
        return self.home / "secure"

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def mtls_port(self) -> int:
        return self.port + 2  # port + 1 is the controller's

    def env_file(self, role: str, *, mtls: bool = False) -> Path:
        return self.dir / (f"{role}-mtls.env" if mtls else f"{role}.env")

    def passwords(self) -> dict[str, str]:
        """Each user's password, made once per data directory (SCRAM users exist from format time)."""
        path = self.dir / "passwords.json"
        if path.exists():
            stored: dict[str, str] = json.loads(path.read_text())
            return stored
        if (self.home / "data" / "meta.properties").exists():
            raise LocalKafkaError(
                f"{self.home} holds a broker started without --secure; start the secure one on another "
                "port (HOOKSTREAM_KAFKA_BOOTSTRAP) or delete that directory"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        users = {user: secrets.token_urlsafe(24) for user in (*acls.ROLES, CONTROLLER_USER)}
        _write_private(path, json.dumps(users).encode())
        return users

    def prepare(self) -> None:
        """Passwords, the certificate authority, the broker's and each role's certificate, once."""
        self.passwords()
        if self.ca_file.exists():
            return
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = issue("hookstream local CA", ca_key, None)
        broker_key = ec.generate_private_key(ec.SECP256R1())
        broker = issue(
            self.host,
            broker_key,
            (ca, ca_key),
            hosts=tuple(dict.fromkeys((self.host, "localhost", "127.0.0.1"))),
        )
        _write_private(
            self.tls_dir / "broker-keystore.pem", pem_key(broker_key) + pem_cert(broker) + pem_cert(ca)
        )
        for role in acls.ROLES:
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(self.tls_dir / f"{role}.key", pem_key(key))
            (self.tls_dir / f"{role}.pem").write_bytes(pem_cert(issue(role, key, (ca, ca_key))))
        _write_private(self.tls_dir / "ca.key", pem_key(ca_key))
        self.ca_file.write_bytes(pem_cert(ca))  # last: its presence says the rest is there

    def properties(
        self, controller_port: int, *, host: str | None = None, port: int | None = None
    ) -> dict[str, str]:
        """What a node's server.properties must say on top of the launcher's PLAINTEXT ones: this node's,
        or (`host`, `port`) another node of its cluster, which shares its users and certificates. Only a
        single node has the mutual-TLS listener (a cluster's ports leave no room for a second one each)."""
        host, port = host or self.host, port or self.port
        users = self.passwords()
        scram = f'{_LOGIN}.scram.ScramLoginModule required username="{ADMIN}" password="{users[ADMIN]}";'
        secret = users[CONTROLLER_USER]
        plain = f'{_LOGIN}.plain.PlainLoginModule required username="{CONTROLLER_USER}" password="{secret}"'
        mtls = f",SSL://{host}:{self.mtls_port}" if self.mtls else ""
        return {
            "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}{mtls}",
            "advertised.listeners": f"SASL_SSL://{host}:{port}{mtls}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
            + (",SSL:SSL" if self.mtls else ""),
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": f'{plain} user_{CONTROLLER_USER}="{secret}";',
            **({"listener.name.ssl.ssl.client.auth": "required"} if self.mtls else {}),
            "ssl.principal.mapping.rules": "RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.tls_dir / "broker-keystore.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN};User:{CONTROLLER_USER}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def format_args(self) -> list[str]:
        """`kafka-storage format` arguments that create every role's SCRAM user."""
        return [
            f"--add-scram={MECHANISM}=[name={user},password={password}]"
            for user, password in self.passwords().items()
            if user != CONTROLLER_USER
        ]

    def security(self, role: str, *, mtls: bool = False) -> KafkaSecurity:
        if mtls:
            return KafkaSecurity(
                protocol="SSL",
                ssl_cafile=self.ca_file,
                ssl_certfile=self.tls_dir / f"{role}.pem",
                ssl_keyfile=self.tls_dir / f"{role}.key",
            )
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=role,
            sasl_password=Secret(self.passwords()[role]),
            ssl_cafile=self.ca_file,
        )

    def settings(self, base: Settings, role: str = ADMIN) -> Settings:
        """`base` with `role`'s credentials on the SASL_SSL listener."""
        return dataclasses.replace(base, kafka_security=self.security(role))

    def write_env_files(self, bootstrap: str) -> list[Path]:
        """`<role>.env` (SASL_SSL at `bootstrap`) and, for a single node, `<role>-mtls.env` (client
        certificate) for every role, mode 600."""
        written = []
        for role in acls.ROLES:
            for mtls in (False, True) if self.mtls else (False,):
                lines = {
                    "HOOKSTREAM_KAFKA_BOOTSTRAP": f"{self.host}:{self.mtls_port}" if mtls else bootstrap,
                    **env_lines(self.security(role, mtls=mtls)),
                }
                path = self.env_file(role, mtls=mtls)
                _write_private(path, "".join(f"{k}={v}\n" for k, v in lines.items()).encode())
                written.append(path)
        return written


async def grant(node: SecureNode, settings: Settings) -> list[Path]:
    """Once the node answers: the ACLs of every role for `settings.namespace`, then the env files."""
    await acls.apply(node.settings(settings), acls.all_acls(settings.namespace))
    return node.write_env_files(settings.kafka_bootstrap)


def env_lines(security: KafkaSecurity) -> dict[str, str]:
    """The HOOKSTREAM_KAFKA_* variables that give `security` (the inverse of reading them)."""
    values: Mapping[str, object] = {
        ks.PROTOCOL: security.protocol,
        ks.MECHANISM: security.sasl_mechanism,
        ks.USERNAME: security.sasl_username,
        ks.PASSWORD: security.sasl_password and security.sasl_password.reveal(),
        ks.CAFILE: security.ssl_cafile,
        ks.CERTFILE: security.ssl_certfile,
        ks.KEYFILE: security.ssl_keyfile,
        ks.CHECK_HOSTNAME: None if security.ssl_check_hostname else "false",
    }
    return {name: str(value) for name, value in values.items() if value is not None}


def override(properties: str, changes: Mapping[str, str]) -> str:
    """`properties` (a server.properties text) with the keys of `changes` replaced or added."""
    kept = [line for line in properties.splitlines() if line.partition("=")[0].strip() not in changes]
    return "\n".join([*kept, *(f"{key}={value}" for key, value in changes.items())]) + "\n"
