"""Hootsuite: the App Directory assignment callback, and the events URL for message-state webhooks.

The callback is authenticated by Hootsuite's SSO token, `sha512hex(sso_i + sso_ts + shared secret)`,
carried in the body itself (form-urlencoded or JSON), with `sso_ts` checked against a tolerance since the
token never expires by itself. Very old Hootsuite SDKs used SHA-1 instead: accepted only where
HOOKSTREAM_HOOTSUITE_SSO_SHA1 says so, and marked `hs-auth: sso-sha1` so that consumers can tell.
Message-state webhooks have no documented signature, so their URL carries an unguessable token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hookstream.forms import UnreadableBody, parse_fields, text_field
from hookstream.settings import Settings
from receivers.delivery import Accepted, RawRequest, Reason, Rejected, Verdict, Verifier
from receivers.sources.base import Endpoint, Source
from receivers.sources.checks import epoch_digits, matches_any, path_token

NAME = "hootsuite"
SSO_SHA512 = "sso-sha512"
SSO_SHA1 = "sso-sha1"
CALLBACK_REPLY = b'{"success":true}'
_MS_THRESHOLD = 100_000_000_000  # an sso_ts above this is in milliseconds


def sso_token(user_id: str, timestamp: str, secret: str, algorithm: str = "sha512") -> str:
    return hashlib.new(algorithm, f"{user_id}{timestamp}{secret}".encode()).hexdigest()


def sso_check(secrets: Sequence[str], tolerance_s: int, *, sha1: bool = False) -> Verifier:
    """Accept a callback whose `sso_token` matches any secret and whose `sso_ts` is recent enough;
    with `sha1`, also the SHA-1 tokens of old SDKs."""
    if not secrets:
        raise ValueError("the SSO check needs at least one secret")
    algorithms = [("sha512", SSO_SHA512), ("sha1", SSO_SHA1)] if sha1 else [("sha512", SSO_SHA512)]

    def passed(token: bytes, user_id: str, timestamp: str) -> str | None:
        """The check `token` passes (its `hs-auth`), if any."""
        for algorithm, auth in algorithms:
            expected = [sso_token(user_id, timestamp, secret, algorithm).encode() for secret in secrets]
            if matches_any([token], expected):
                return auth
        return None

    def verify(request: RawRequest) -> Verdict:
        try:
            fields = parse_fields(request.body, request.headers.get("Content-Type"))
        except UnreadableBody:
            return Rejected(Reason.MALFORMED_BODY)
        token = text_field(fields, "sso_token")
        user_id = text_field(fields, "sso_i")
        timestamp = text_field(fields, "sso_ts")
        if not token or user_id is None:
            return Rejected(Reason.MISSING_SIGNATURE)
        sent_at = epoch_digits(timestamp or "")
        if timestamp is None or sent_at is None:
            return Rejected(Reason.MISSING_TIMESTAMP)
        auth = passed(token.strip().lower().encode("utf-8", "replace"), user_id, timestamp)
        if auth is None:
            return Rejected(Reason.BAD_SIGNATURE)
        seconds = sent_at / 1000 if sent_at > _MS_THRESHOLD else sent_at
        if abs(request.received_at_ms / 1000 - seconds) > tolerance_s:
            return Rejected(Reason.STALE_TIMESTAMP)
        return Accepted(auth=auth)

    return verify


def build(settings: Settings) -> Source | None:
    endpoints: list[Endpoint] = []
    if settings.hootsuite_secrets:
        secrets = [secret.reveal() for secret in settings.hootsuite_secrets]
        endpoints.append(
            Endpoint(
                "/webhooks/hootsuite/callback",
                route="callback",
                verify=sso_check(
                    secrets, settings.hootsuite_sso_tolerance_s, sha1=settings.hootsuite_sso_sha1
                ),
                reply_body=CALLBACK_REPLY,
            )
        )
    if settings.hootsuite_events_token is not None:
        endpoints.append(
            Endpoint(
                "/webhooks/hootsuite/events/{token}",
                route="events",
                verify=path_token(settings.hootsuite_events_token),
            )
        )
    return Source(NAME, tuple(endpoints)) if endpoints else None
