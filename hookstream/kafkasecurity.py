"""How every Kafka client of a process proves who it is and checks who it talks to (SPEC §7).

`KafkaSecurity` is the part of `Settings` read from the `HOOKSTREAM_KAFKA_*` security variables. It
refuses, at startup and with one line naming the variable, settings that lack a part or contradict each
other, and PEM files that do not load: a client that cannot log in finds out at its first connection,
often only as aiokafka's "Unable to bootstrap", so whatever can be known earlier is checked here.
`hookstream.clients` turns it into aiokafka's (and Faust's) options.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hookstream.errors import SettingsError

if TYPE_CHECKING:
    from hookstream.settings import Secret

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[SaslMechanism, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PROTOCOL = "HOOKSTREAM_KAFKA_SECURITY_PROTOCOL"
MECHANISM = "HOOKSTREAM_KAFKA_SASL_MECHANISM"
USERNAME = "HOOKSTREAM_KAFKA_SASL_USERNAME"
PASSWORD = "HOOKSTREAM_KAFKA_SASL_PASSWORD"  # noqa: S105 - the variable's name, not a password
CAFILE = "HOOKSTREAM_KAFKA_SSL_CAFILE"
CERTFILE = "HOOKSTREAM_KAFKA_SSL_CERTFILE"
KEYFILE = "HOOKSTREAM_KAFKA_SSL_KEYFILE"
CHECK_HOSTNAME = "HOOKSTREAM_KAFKA_SSL_CHECK_HOSTNAME"


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: Path | None = None  # None: the system's trust store
    ssl_certfile: Path | None = None  # with the key: a client certificate (mutual TLS)
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def checked(self) -> KafkaSecurity:
        """Itself, once nothing is missing or contradictory and the PEM files load."""
        sasl = {MECHANISM: self.sasl_mechanism, USERNAME: self.sasl_username, PASSWORD: self.sasl_password}
        for name, value in sasl.items():
            if self.uses_sasl and value is None:
                raise SettingsError(name, f"{PROTOCOL}={self.protocol} needs it")
            if not self.uses_sasl and value is not None:
                raise SettingsError(name, f"set, but {PROTOCOL}={self.protocol} does not use SASL")
        tls = {CAFILE: self.ssl_cafile, CERTFILE: self.ssl_certfile, KEYFILE: self.ssl_keyfile}
        for name, path in tls.items():
            if not self.uses_ssl and path is not None:
                raise SettingsError(name, f"set, but {PROTOCOL}={self.protocol} does not use TLS")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            missing = KEYFILE if self.ssl_keyfile is None else CERTFILE
            raise SettingsError(missing, f"a client certificate needs both {CERTFILE} and {KEYFILE}")
        self.ssl_context()
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a Kafka client, or None without TLS. Built anew for each client (cheap), so
        a renewed certificate file is used by the next connection without a restart."""
        if not self.uses_ssl:
            return None
        try:
            cafile = None if self.ssl_cafile is None else str(self.ssl_cafile)
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(CAFILE, f"not a readable PEM certificate file ({exc})") from None
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
            except (OSError, ssl.SSLError) as exc:
                raise SettingsError(
                    CERTFILE, f"certificate and {KEYFILE} do not load together ({exc})"
                ) from None
        context.check_hostname = self.ssl_check_hostname
        return context


def security_protocol(raw: str) -> SecurityProtocol:
    for protocol in SECURITY_PROTOCOLS:
        if raw.upper() == protocol:
            return protocol
    raise ValueError(f"expected one of {', '.join(SECURITY_PROTOCOLS)}, got {raw!r}")


def sasl_mechanism(raw: str) -> SaslMechanism:
    for mechanism in SASL_MECHANISMS:
        if raw.upper() == mechanism:
            return mechanism
    raise ValueError(f"expected one of {', '.join(SASL_MECHANISMS)}, got {raw!r}")
