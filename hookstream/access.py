"""When the broker turns a client away: which login or operation, on what, and which setting to fix.

A refusal is not an outage. Retrying it at an outage's pace floods the broker and the log; answering
2xx is impossible; a traceback helps nobody. Callers log the one line `KafkaRefused` carries (once per
change), report themselves unready, and retry no faster than `REFUSED_RETRY_S`, because the fix (a new
password in a mounted secret, an ACL an admin adds) arrives while they run.

Two refusals hide: aiokafka reports a wrong password only as "Unable to bootstrap", with the reason in
its own log, so `login_refusal` asks the broker again on a bare connection that raises the reason; and
`create_topics` answers a refused creation with an error code instead of raising (`TopicAdmin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)

from hookstream import kafkasecurity as ks
from hookstream.clients import client_options
from hookstream.errors import HookstreamError
from hookstream.settings import Settings

REFUSED_RETRY_S = 1.0  # the fastest a refused client tries again (SPEC §7)
PROBE_TIMEOUT_S = 5.0
AUTHORIZATION = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)


class KafkaRefused(HookstreamError):
    """The broker refused this client's login or one of its operations: a setting or an ACL is wrong."""


def denied(settings: Settings, operation: str, resource: str) -> KafkaRefused:
    """The refusal of `operation` on `resource` to this client's principal."""
    return KafkaRefused(
        f"Kafka refused {operation} on {resource} to {who(settings)}: "
        f"its ACLs do not allow it (see `hookstream acls`)"
    )


def who(settings: Settings) -> str:
    security = settings.kafka_security
    if security.uses_sasl:
        return f"user {security.sasl_username!r} ({ks.USERNAME})"
    if security.ssl_certfile is not None:
        return f"the client certificate {security.ssl_certfile} ({ks.CERTFILE})"
    return "an anonymous client (no HOOKSTREAM_KAFKA_SASL_* or client certificate set)"


def authorization(exc: BaseException, settings: Settings, operation: str) -> KafkaRefused | None:
    """`exc` as a refusal of `operation`, if it is one (aiokafka names the topic or group in it)."""
    if isinstance(exc, AUTHORIZATION):
        detail = str(exc).split(":", 1)[-1].strip() or type(exc).__name__
        return denied(settings, operation, detail)
    return None


async def login_refusal(settings: Settings) -> KafkaRefused | None:
    """Why the broker refused this client's connection, when it did; None when it is merely away.

    Asks one bootstrap server on a bare connection, which raises what the client only logged."""
    options = client_options(settings)
    servers = options.pop("bootstrap_servers")
    host, _, port = servers[0].rpartition(":")
    try:
        conn = await asyncio.wait_for(create_conn(host, int(port), **options), PROBE_TIMEOUT_S)
    except SaslAuthenticationFailed:
        return KafkaRefused(
            f"Kafka refused the login of {who(settings)}: check {ks.PASSWORD} (or {ks.PASSWORD}_FILE)"
        )
    except UnsupportedSaslMechanismError:
        return KafkaRefused(f"Kafka does not offer the SASL mechanism of {ks.MECHANISM}")
    except ssl.SSLCertVerificationError as exc:
        setting = ks.CHECK_HOSTNAME if "hostname" in str(exc).lower() else ks.CAFILE
        return KafkaRefused(
            f"the broker's TLS certificate was not accepted ({exc.verify_message}): check {setting}"
        )
    except (KafkaError, OSError, TimeoutError):
        return None  # not there, or went away: transient
    with contextlib.suppress(Exception):
        conn.close()
    return None


async def refusal(exc: BaseException, settings: Settings, operation: str) -> KafkaRefused | None:
    """`exc` (from starting a client or doing `operation`) as a refusal, or None if it may pass."""
    if isinstance(exc, KafkaRefused):
        return exc
    if isinstance(exc, AUTHORIZATION):
        return authorization(exc, settings, operation)
    if isinstance(exc, KafkaError | OSError):
        return await login_refusal(settings)
    return None
