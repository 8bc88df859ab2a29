"""SPEC §7 settings: the HOOKSTREAM_KAFKA_* security variables, `_FILE` secrets, and the one place that
turns them into client options for aiokafka and Faust."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from cryptography.hazmat.primitives.asymmetric import ec
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from hookstream.access import authorization, refusal
from hookstream.clients import client_options
from hookstream.errors import SettingsError
from hookstream.securekafka import env_lines, issue, pem_cert, pem_key
from hookstream.settings import Settings
from processor.transport import broker_credentials
from tests.support import free_port

P = "HOOKSTREAM_KAFKA_"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a client certificate signed by it, as PEM files."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("test CA", ca_key, None)
    files = {"ca": folder / "ca.pem", "cert": folder / "client.pem", "key": folder / "client.key"}
    files["ca"].write_bytes(pem_cert(ca))
    files["cert"].write_bytes(pem_cert(issue("receivers", client_key, (ca, ca_key))))
    files["key"].write_bytes(pem_key(client_key))
    return files


def sasl_ssl(pki: dict[str, Path], **extra: str) -> dict[str, str]:
    return {
        P + "SECURITY_PROTOCOL": "SASL_SSL",
        P + "SASL_MECHANISM": "SCRAM-SHA-512",
        P + "SASL_USERNAME": "receivers",
        P + "SASL_PASSWORD": "s3cret",
        P + "SSL_CAFILE": str(pki["ca"]),
        **extra,
    }


def test_the_default_is_plaintext_without_login() -> None:
    options = client_options(Settings.from_env({}))
    assert options == {"bootstrap_servers": ["localhost:9092"], "security_protocol": "PLAINTEXT"}
    assert broker_credentials(Settings.from_env({})) is None


def test_sasl_ssl_gives_aiokafka_and_faust_the_same_login(pki: dict[str, Path]) -> None:
    settings = Settings.from_env(sasl_ssl(pki))
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", "receivers")
    assert options["sasl_plain_password"] == "s3cret"
    assert options["ssl_context"].check_hostname is True
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    faust = dict(credentials_to_aiokafka_auth(broker_credentials(settings)))
    assert isinstance(faust.pop("ssl_context"), ssl.SSLContext)
    assert faust == {k: v for k, v in options.items() if k not in ("bootstrap_servers", "ssl_context")}
    assert "s3cret" not in repr(settings)


def test_mutual_tls_loads_the_client_certificate(pki: dict[str, Path]) -> None:
    env = {
        P + "SECURITY_PROTOCOL": "SSL",
        P + "SSL_CAFILE": str(pki["ca"]),
        P + "SSL_CERTFILE": str(pki["cert"]),
        P + "SSL_KEYFILE": str(pki["key"]),
        P + "SSL_CHECK_HOSTNAME": "false",
    }
    settings = Settings.from_env(env)
    options = client_options(settings)
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].check_hostname is False
    faust = credentials_to_aiokafka_auth(broker_credentials(settings))
    assert faust["security_protocol"] == "SSL"
    assert Settings.from_env(env_lines(settings.kafka_security)).kafka_security == settings.kafka_security


@pytest.mark.parametrize("missing", ["SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"])
def test_sasl_without_a_part_is_refused_naming_it(pki: dict[str, Path], missing: str) -> None:
    env = sasl_ssl(pki)
    del env[P + missing]
    with pytest.raises(SettingsError, match=f"^bad setting {P}{missing}: .*SASL_SSL needs it"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("protocol", "name", "value"),
    [
        ("PLAINTEXT", "SASL_USERNAME", "receivers"),
        ("SSL", "SASL_MECHANISM", "PLAIN"),
        ("PLAINTEXT", "SSL_CAFILE", "ca"),
        ("PLAINTEXT", "SSL_KEYFILE", "ca"),
    ],
)
def test_settings_the_protocol_does_not_use_are_refused(
    pki: dict[str, Path], protocol: str, name: str, value: str
) -> None:
    env = {P + "SECURITY_PROTOCOL": protocol, P + name: str(pki["ca"]) if value == "ca" else value}
    with pytest.raises(SettingsError, match=f"^bad setting {P}{name}: set, but .*{protocol}"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("given", "named"), [("SSL_CERTFILE", "SSL_KEYFILE"), ("SSL_KEYFILE", "SSL_CERTFILE")]
)
def test_a_client_certificate_needs_both_halves(pki: dict[str, Path], given: str, named: str) -> None:
    env = {P + "SECURITY_PROTOCOL": "SSL", P + given: str(pki["cert" if given == "SSL_CERTFILE" else "key"])}
    with pytest.raises(SettingsError, match=f"^bad setting {P}{named}:"):
        Settings.from_env(env)


def test_files_that_are_not_pem_are_refused_at_startup(pki: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=f"^bad setting {P}SSL_CAFILE:"):
        Settings.from_env(sasl_ssl(pki, **{P + "SSL_CAFILE": str(junk)}))
    mismatched = {P + "SSL_CERTFILE": str(pki["ca"]), P + "SSL_KEYFILE": str(pki["key"])}
    with pytest.raises(SettingsError, match=f"^bad setting {P}SSL_CERTFILE:"):
        Settings.from_env(sasl_ssl(pki, **mismatched))
    with pytest.raises(SettingsError, match=f"^bad setting {P}SSL_CAFILE: no such file"):
        Settings.from_env(sasl_ssl(pki, **{P + "SSL_CAFILE": str(tmp_path / "absent.pem")}))


def test_unknown_protocol_and_mechanism_are_refused() -> None:
    with pytest.raises(SettingsError, match=f"^bad setting {P}SECURITY_PROTOCOL: expected one of"):
        Settings.from_env({P + "SECURITY_PROTOCOL": "TLS"})
    with pytest.raises(SettingsError, match=f"^bad setting {P}SASL_MECHANISM: expected one of"):
        Settings.from_env({P + "SECURITY_PROTOCOL": "SASL_SSL", P + "SASL_MECHANISM": "GSSAPI"})


def test_a_refused_operation_is_told_in_one_line_naming_user_operation_and_resource(
    pki: dict[str, Path],
) -> None:
    settings = Settings.from_env(sasl_ssl(pki))
    refused = authorization(TopicAuthorizationFailedError("hs.events"), settings, "WRITE")
    assert str(refused) == (
        "Kafka refused WRITE on hs.events to user 'receivers' (HOOKSTREAM_KAFKA_SASL_USERNAME): "
        "its ACLs do not allow it (see `hookstream acls`)"
    )
    assert authorization(KafkaConnectionError("gone"), settings, "WRITE") is None


async def test_a_broker_that_is_not_there_is_no_refusal() -> None:
    settings = Settings.from_env({"HOOKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})
    assert await refusal(KafkaConnectionError("Unable to bootstrap"), settings, "WRITE") is None
