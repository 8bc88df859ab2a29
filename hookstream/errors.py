"""The exceptions hookstream raises on purpose; everything else is a bug.

    HookstreamError
    ├── SettingsError      a HOOKSTREAM_* variable is missing its form; startup stops with one line
    └── LocalKafkaError    `hookstream kafka …` could not fetch, start or stop the local broker

Bad *input* (a forged signature, a malformed body) is never an exception: receivers turn it into a
`Verdict`, the processor into a dead letter.
"""

from __future__ import annotations


class HookstreamError(Exception):
    """Base of the errors the CLI reports as one line and a non-zero exit."""


class SettingsError(HookstreamError):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"bad setting {name}: {problem}")
        self.name = name


class LocalKafkaError(HookstreamError):
    pass
