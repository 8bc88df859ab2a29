"""Website Toolbox forum webhooks: one JSON event per POST, no signature, so the URL token is the key."""

from __future__ import annotations

from hookstream.settings import Settings
from receivers.sources.base import Endpoint, Source
from receivers.sources.checks import path_token

NAME = "websitetoolbox"


def build(settings: Settings) -> Source | None:
    if settings.websitetoolbox_token is None:
        return None
    return Source(
        NAME,
        (
            Endpoint(
                "/webhooks/websitetoolbox/{token}",
                route="post",
                verify=path_token(settings.websitetoolbox_token),
            ),
        ),
    )
