"""The receivers as a benchmark target: `--sink kafka` is the real thing, `--sink null` the same aiohttp
app with a sink that acknowledges at once, i.e. the HTTP baseline without Kafka."""

from __future__ import annotations

import argparse

from hookstream import logs
from hookstream.settings import Settings
from receivers.delivery import Delivery
from receivers.main import serve
from receivers.sink import KafkaSink


class NullSink:
    """Acknowledges every delivery at once and keeps nothing."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, delivery: Delivery, deadline: float) -> None:
        return None

    async def blocker(self) -> str | None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sink", choices=("kafka", "null"), required=True)
    args = parser.parse_args()
    settings = Settings.from_env()
    logs.configure("WARNING")
    serve(settings, KafkaSink(settings) if args.sink == "kafka" else NullSink())


if __name__ == "__main__":
    main()
