"""X (Twitter) webhooks: filtered-stream posts and Account Activity events on one URL.

POSTs carry `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, body)>`. X also
sends a CRC challenge (`GET ?crc_token=…`) on registration and periodically; a wrong answer disables the
webhook at once, so it is answered from the first configured secret and never touches Kafka.
"""

from __future__ import annotations

import base64

import orjson

from hookstream.settings import Settings
from receivers.delivery import RawRequest, Reply
from receivers.sources.base import Challenge, Endpoint, Source
from receivers.sources.checks import hmac_header, hmac_sha256

NAME = "x"
PATH = "/webhooks/x"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"


def crc_response_token(consumer_secret: bytes, crc_token: str) -> str:
    return "sha256=" + base64.b64encode(hmac_sha256(consumer_secret, crc_token.encode())).decode()


def crc_responder(consumer_secret: bytes) -> Challenge:
    def respond(request: RawRequest) -> Reply:
        token = request.query.get("crc_token")
        if not token:
            return Reply(400, orjson.dumps({"error": "crc_token is required"}))
        return Reply(200, orjson.dumps({"response_token": crc_response_token(consumer_secret, token)}))

    return Challenge(PATH, respond)


def build(settings: Settings) -> Source | None:
    if not settings.x_consumer_secrets:
        return None
    keys = [secret.reveal().encode() for secret in settings.x_consumer_secrets]
    return Source(
        NAME,
        (
            crc_responder(keys[0]),
            Endpoint(
                PATH,
                route="post",
                verify=hmac_header(keys, header=SIGNATURE_HEADER, prefix="sha256="),
                keep_headers=(SIGNATURE_HEADER,),
            ),
        ),
    )
