"""The CLI's promises that need no broker: one-line errors, and what each package does not import."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HOOKSTREAM = Path(sys.executable).with_name("hookstream")


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOOKSTREAM), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["topics"], ["receivers"], ["worker"], ["kafka", "status"]])
def test_a_bad_setting_stops_startup_with_one_line_naming_it(command: list[str]) -> None:
    result = run_cli(*command, HOOKSTREAM_HTTP_PORT="eighty")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hookstream: bad setting HOOKSTREAM_HTTP_PORT: expected a whole number, got 'eighty'"
    ]


def test_kafka_start_without_java_says_what_is_missing_and_the_alternative(tmp_path: Path) -> None:
    result = run_cli(
        "kafka",
        "start",
        PATH=str(tmp_path),
        HOOKSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        HOOKSTREAM_CACHE_DIR=str(tmp_path / "cache"),
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "Java 17" in line
    assert "HOOKSTREAM_KAFKA_BOOTSTRAP" in line


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (
            ["hookstream.cli", "hookstream.localkafka", "hookstream.kafka", "hookstream.tail"],
            ["faust", "aiohttp"],
        ),
        (["receivers.main", "receivers.app", "receivers.sources"], ["faust", "mode"]),
    ],
)
def test_packages_keep_their_import_boundaries(modules: list[str], forbidden: list[str]) -> None:
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\n"
        f"leaked = [m for m in {forbidden!r} if m in sys.modules]\nprint(','.join(leaked))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""
