"""Standard Webhooks v1 (standardwebhooks.com), for any sender that follows it: one route per
configured sender name, `/webhooks/standard/{name}`.

Signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`, HMAC-SHA256 keyed with the decoded
`whsec_` secret; `webhook-signature` lists `v1,<base64>` entries (other versions are skipped) and any
match of any configured secret accepts. Timestamps must be within ±5 minutes. Our own implementation,
over the exact bytes: the official package decodes the body as UTF-8, reads the clock itself and raises
assorted exceptions on malformed headers; the tests sign with the official package.
"""

from __future__ import annotations

from collections.abc import Sequence

from hookstream import headers as H
from hookstream.settings import Settings, standard_secret_key
from receivers.delivery import Accepted, RawRequest, Reason, Rejected, Verdict, Verifier
from receivers.sources.base import Endpoint, Source
from receivers.sources.checks import b64decode_strict, epoch_digits, hmac_sha256, matches_any

NAME = "standard"
STANDARD_V1 = "standard-v1"
TOLERANCE_S = 300
SIGNED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_SIGNATURES = 16


def v1_signatures(header: str) -> list[bytes]:
    """The decoded `v1,<base64>` entries of a `webhook-signature` header; anything else is skipped."""
    found = []
    for entry in header.split()[:MAX_SIGNATURES]:
        version, _, encoded = entry.partition(",")
        if version == "v1" and (decoded := b64decode_strict(encoded)) is not None:
            found.append(decoded)
    return found


def standard_v1(name: str, keys: Sequence[bytes]) -> Verifier:
    if not keys:
        raise ValueError(f"Standard Webhooks sender {name!r} needs at least one secret")
    name_header = ((H.NAME, name.encode()),)

    def verify(request: RawRequest) -> Verdict:
        msg_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "")
        signature = request.headers.get("webhook-signature", "")
        if not msg_id or not msg_id.isascii():
            return Rejected(Reason.MISSING_ID)
        if not timestamp:
            return Rejected(Reason.MISSING_TIMESTAMP)
        if not signature:
            return Rejected(Reason.MISSING_SIGNATURE)
        sent_at = epoch_digits(timestamp)
        if sent_at is None:
            return Rejected(Reason.MALFORMED_SIGNATURE)
        if abs(request.received_at_ms // 1000 - sent_at) > TOLERANCE_S:
            return Rejected(Reason.STALE_TIMESTAMP)
        candidates = v1_signatures(signature)
        if not candidates:
            return Rejected(Reason.MALFORMED_SIGNATURE)
        signed = f"{msg_id}.{timestamp}.".encode() + request.body
        if matches_any(candidates, [hmac_sha256(key, signed) for key in keys]):
            return Accepted(auth=STANDARD_V1, key=msg_id.encode(), headers=name_header)
        return Rejected(Reason.BAD_SIGNATURE)

    return verify


def build(settings: Settings) -> Source | None:
    if not settings.standard_secrets:
        return None
    return Source(
        NAME,
        tuple(
            Endpoint(
                f"/webhooks/standard/{name}",
                route="post",
                verify=standard_v1(name, [standard_secret_key(secret) for secret in secrets]),
                keep_headers=SIGNED_HEADERS,
            )
            for name, secrets in settings.standard_secrets.items()
        ),
    )
