"""Checks more than one sender uses, built once from settings and then applied per request."""

from __future__ import annotations

import hmac

from hookstream.settings import Secret
from receivers.delivery import Accepted, RawRequest, Reason, Rejected, Verdict, Verifier

PATH_TOKEN = "path-token"  # noqa: S105 - the hs-auth value naming the check


def path_token(expected: Secret, *, param: str = "token") -> Verifier:
    """Accept a request whose `{param}` path segment equals the configured token (constant time)."""
    expected_bytes = expected.reveal().encode()

    def verify(request: RawRequest) -> Verdict:
        given = request.path_params.get(param, "").encode("utf-8", "surrogateescape")
        if hmac.compare_digest(given, expected_bytes):
            return Accepted(auth=PATH_TOKEN)
        return Rejected(Reason.BAD_TOKEN)

    return verify
