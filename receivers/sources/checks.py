"""Checks more than one sender uses, built once from settings and then applied per request.

Every comparison of a secret-derived value is constant-time (`hmac.compare_digest`), and every check
returns a verdict for any input at all: a malformed header is a reason, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from hookstream.settings import Secret
from receivers.delivery import Accepted, RawRequest, Reason, Rejected, Verdict, Verifier

PATH_TOKEN = "path-token"  # noqa: S105 - the hs-auth value naming this check, not a credential
HMAC_SHA256 = "hmac-sha256"


def path_token(expected: Secret, *, param: str = "token") -> Verifier:
    """Accept a request whose `{param}` path segment equals the configured token."""
    expected_bytes = expected.reveal().encode()

    def verify(request: RawRequest) -> Verdict:
        given = request.path_params.get(param, "").encode("utf-8", "surrogateescape")
        if hmac.compare_digest(given, expected_bytes):
            return Accepted(auth=PATH_TOKEN)
        return Rejected(Reason.BAD_TOKEN)

    return verify


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def b64decode_strict(text: str) -> bytes | None:
    """Standard base64 with padding, or None; never raises."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def epoch_digits(text: str, max_digits: int = 15) -> int | None:
    """A Unix timestamp written as ASCII digits, or None (also for absurdly long digit strings, which
    Python refuses to convert past 4300 digits)."""
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def matches_any(candidates: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    """Whether any candidate equals any expected value. Compares every pair, so the time taken does
    not tell which secret (or which position in a list of signatures) came closest."""
    found = False
    for candidate in candidates:
        for value in expected:
            found |= hmac.compare_digest(candidate, value)
    return found


def hmac_header(keys: Sequence[bytes], *, header: str, prefix: str) -> Verifier:
    """Accept a request whose `header` is `prefix` + base64(HMAC-SHA256(key, raw body)) for any key.

    This is X's `x-twitter-webhooks-signature: sha256=…`; further senders with the same scheme are a
    preset of this function.
    """
    if not keys:
        raise ValueError("an HMAC check needs at least one secret")

    def verify(request: RawRequest) -> Verdict:
        value = request.headers.get(header)
        if not value:
            return Rejected(Reason.MISSING_SIGNATURE)
        if not value.startswith(prefix):
            return Rejected(Reason.MALFORMED_SIGNATURE)
        given = b64decode_strict(value[len(prefix) :].strip())
        if given is None:
            return Rejected(Reason.MALFORMED_SIGNATURE)
        if matches_any([given], [hmac_sha256(key, request.body) for key in keys]):
            return Accepted(auth=HMAC_SHA256)
        return Rejected(Reason.BAD_SIGNATURE)

    return verify
