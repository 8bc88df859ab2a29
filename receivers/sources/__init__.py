"""The registry of senders. Adding one is a module here with `build(settings) -> Source | None`,
and a line in `BUILDERS`; a sender whose credentials are not configured builds to None and is disabled."""

from __future__ import annotations

from collections.abc import Callable

from hookstream.settings import Settings
from receivers.sources import hootsuite, standard, website_toolbox, x
from receivers.sources.base import Challenge, Endpoint, Source

__all__ = ["BUILDERS", "Challenge", "Endpoint", "Source", "enabled_sources"]

BUILDERS: tuple[Callable[[Settings], Source | None], ...] = (
    x.build,
    hootsuite.build,
    website_toolbox.build,
    standard.build,
)


def enabled_sources(settings: Settings) -> list[Source]:
    return [source for build in BUILDERS if (source := build(settings)) is not None]
