"""Each sender's check as a pure function, against vectors computed outside our code (openssl,
sha512sum, the official standardwebhooks package)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict
from standardwebhooks.webhooks import Webhook

from hookstream.settings import Secret
from receivers.delivery import Accepted, RawRequest, Reason, Rejected, Verdict
from receivers.sources.checks import hmac_header, path_token
from receivers.sources.hootsuite import sso_check
from receivers.sources.standard import standard_v1
from receivers.sources.x import crc_response_token

NOW_MS = 1_700_000_100_000
X_SECRET = b"your_consumer_secret_here"
X_BODY = b'{"data":{"id":"1346889436626259968"}}'
# printf '%s' "$X_BODY" | openssl dgst -sha256 -hmac your_consumer_secret_here -binary | base64
X_SIGNATURE = "sha256=BPFcbv0EWEDMl8vBvDJ2d1lz2Ax26jwvxMzl0SJWkeA="
# printf '%s' 4213351700000000shared-secret | sha512sum   (sso_i=421335, sso_ts=1700000000)
SSO_TOKEN = (
    "2f6b422c2e6d8d250549dbb14a827cdfbb9d00f65841629503656e27a4e90bbb"
    "4045ed21242182759f44b003f69c55feb3023d6b30f0ebc237f61c7f75860eb5"
)
# printf '%s' 4213351700000000shared-secret | sha1sum   (the very old SDKs)
SSO_SHA1_TOKEN = "06bbc14d064a97210ecfba2192fb5a214952eca2"
STANDARD_KEY = b"0123456789abcdef0123456789abcdef"
STANDARD_SECRET = "whsec_" + base64.b64encode(STANDARD_KEY).decode()


def request(body: bytes = b"", *, headers: dict[str, str] | None = None, **path: str) -> RawRequest:
    return RawRequest(
        method="POST", headers=CIMultiDict(headers or {}), body=body, received_at_ms=NOW_MS, path_params=path
    )


def reason(verdict: Verdict) -> Reason | None:
    return verdict.reason if isinstance(verdict, Rejected) else None


def test_x_crc_answer_matches_the_documented_vector() -> None:
    assert (
        crc_response_token(X_SECRET, "challenge_string")
        == "sha256=mchn+rKsGVnYHN/lGyanuEw6XariJ3D+ARDLDsd0dS0="
    )


x_check = hmac_header([b"an-older-secret", X_SECRET], header="x-twitter-webhooks-signature", prefix="sha256=")


def test_x_signature_by_any_configured_secret_is_accepted() -> None:
    verdict = x_check(request(X_BODY, headers={"X-Twitter-Webhooks-Signature": X_SIGNATURE}))
    assert verdict == Accepted(auth="hmac-sha256")


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, X_BODY, Reason.MISSING_SIGNATURE),
        ({"x-twitter-webhooks-signature": ""}, X_BODY, Reason.MISSING_SIGNATURE),
        ({"x-twitter-webhooks-signature": X_SIGNATURE[7:]}, X_BODY, Reason.MALFORMED_SIGNATURE),
        ({"x-twitter-webhooks-signature": "sha256=not base64!"}, X_BODY, Reason.MALFORMED_SIGNATURE),
        ({"x-twitter-webhooks-signature": "sha256=é"}, X_BODY, Reason.MALFORMED_SIGNATURE),
        ({"x-twitter-webhooks-signature": X_SIGNATURE}, X_BODY + b" ", Reason.BAD_SIGNATURE),
        (
            {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(b"x" * 32).decode()},
            X_BODY,
            Reason.BAD_SIGNATURE,
        ),
    ],
)
def test_x_signature_rejections(headers: dict[str, str], body: bytes, expected: Reason) -> None:
    assert reason(x_check(request(body, headers=headers))) is expected


def sso_form(**fields: str) -> bytes:
    base = {"action": "Assignment", "sso_i": "421335", "sso_ts": "1700000000", "sso_token": SSO_TOKEN}
    base.update(fields)
    return "&".join(f"{k}={v}" for k, v in base.items() if v != "-").encode()


hootsuite_check = sso_check(["rotated-out", "shared-secret"], tolerance_s=300)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (sso_form(), "application/x-www-form-urlencoded"),
        (sso_form(), None),
        (sso_form(sso_token=SSO_TOKEN.upper()), None),
        (
            b'{"sso_i": 421335, "sso_ts": 1700000000, "sso_token": "' + SSO_TOKEN.encode() + b'"}',
            "application/json",
        ),
    ],
)
def test_hootsuite_sso_token_matches_the_sha512sum_vector(body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert hootsuite_check(request(body, headers=headers)) == Accepted(auth="sso-sha512")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (sso_form(sso_token="-"), Reason.MISSING_SIGNATURE),
        (sso_form(sso_i="-"), Reason.MISSING_SIGNATURE),
        (sso_form(sso_ts="-"), Reason.MISSING_TIMESTAMP),
        (sso_form(sso_ts="yesterday"), Reason.MISSING_TIMESTAMP),
        (sso_form(sso_i="421336"), Reason.BAD_SIGNATURE),
        (b"\xff\xfe=%%%", Reason.MALFORMED_BODY),
        (b'{"sso_i": ', Reason.MALFORMED_BODY),
    ],
)
def test_hootsuite_sso_rejections(body: bytes, expected: Reason) -> None:
    assert reason(hootsuite_check(request(body))) is expected


def test_hootsuite_sha1_sso_tokens_pass_only_where_configured() -> None:
    old_sdk = request(sso_form(sso_token=SSO_SHA1_TOKEN))
    assert reason(hootsuite_check(old_sdk)) is Reason.BAD_SIGNATURE
    with_sha1 = sso_check(["shared-secret"], tolerance_s=300, sha1=True)
    assert with_sha1(old_sdk) == Accepted(auth="sso-sha1")
    assert with_sha1(request(sso_form())) == Accepted(auth="sso-sha512")


def test_hootsuite_sso_outside_the_tolerance_is_stale() -> None:
    late = RawRequest("POST", CIMultiDict(), sso_form(), received_at_ms=NOW_MS + 301_000)
    assert reason(hootsuite_check(late)) is Reason.STALE_TIMESTAMP


standard_check = standard_v1("acme", [b"another-key-of-sixteen+", STANDARD_KEY])


def signed(
    body: str, *, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", at_ms: int = NOW_MS
) -> dict[str, str]:
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    signature = Webhook(STANDARD_SECRET).sign(msg_id, moment, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at_ms // 1000),
        "webhook-signature": f"v2,ignored {signature}",
    }


def test_standard_webhooks_signed_by_the_official_package_are_accepted() -> None:
    body = '{"type": "invoice.paid", "timestamp": "2026-11-28T15:00:00Z", "data": {"id": "inv_1"}}'
    verdict = standard_check(request(body.encode(), headers=signed(body)))
    assert verdict == Accepted(
        auth="standard-v1", key=b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", headers=(("hs-name", b"acme"),)
    )


@pytest.mark.parametrize("skew_s", [-300, 300])
def test_standard_webhooks_tolerate_five_minutes_either_way(skew_s: int) -> None:
    headers = signed("{}", at_ms=NOW_MS + skew_s * 1000)
    assert isinstance(standard_check(request(b"{}", headers=headers)), Accepted)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"webhook-id": ""}, Reason.MISSING_ID),
        ({"webhook-timestamp": ""}, Reason.MISSING_TIMESTAMP),
        ({"webhook-signature": ""}, Reason.MISSING_SIGNATURE),
        ({"webhook-timestamp": "soon"}, Reason.MALFORMED_SIGNATURE),
        ({"webhook-signature": "v1,@@@ v2,abc"}, Reason.MALFORMED_SIGNATURE),
        ({"webhook-id": "msg_other"}, Reason.BAD_SIGNATURE),
    ],
)
def test_standard_webhooks_rejections(change: dict[str, str], expected: Reason) -> None:
    headers = signed("{}") | change
    assert reason(standard_check(request(b"{}", headers=headers))) is expected


@pytest.mark.parametrize("skew_s", [-301, 301])
def test_standard_webhooks_outside_five_minutes_are_stale(skew_s: int) -> None:
    headers = signed("{}", at_ms=NOW_MS + skew_s * 1000)
    assert reason(standard_check(request(b"{}", headers=headers))) is Reason.STALE_TIMESTAMP


def test_path_token_accepts_only_the_exact_token() -> None:
    check = path_token(Secret("forum-token-0123456789abcdef"))
    assert check(request(token="forum-token-0123456789abcdef")) == Accepted(auth="path-token")
    for wrong in (
        "",
        "forum-token-0123456789abcde",
        "forum-token-0123456789abcdefg",
        "FORUM-TOKEN-0123456789ABCDEF",
    ):
        assert reason(check(request(token=wrong))) is Reason.BAD_TOKEN
