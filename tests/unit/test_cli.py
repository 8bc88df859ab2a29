"""The CLI's promises that need no broker: one-line errors, and what each package does not import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, run_cli


@pytest.mark.parametrize("command", [["topics"], ["receivers"], ["worker"], ["kafka", "status"]])
def test_a_bad_setting_stops_startup_with_one_line_naming_it(command: list[str]) -> None:
    result = run_cli(*command, env={"HOOKSTREAM_HTTP_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hookstream: bad setting HOOKSTREAM_HTTP_PORT: expected a whole number, got 'eighty'"
    ]


@pytest.mark.parametrize(("tools", "missing"), [((), "Java 17"), (("java",), "Maven is needed")])
def test_kafka_start_without_java_or_maven_says_what_is_missing_and_the_alternative(
    tmp_path: Path, tools: tuple[str, ...], missing: str
) -> None:
    path = tmp_path / "bin"
    path.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"no {tool} on this machine")
        (path / tool).symlink_to(found)
    result = run_cli(
        "kafka",
        "start",
        env={
            "PATH": str(path),
            "HOOKSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "HOOKSTREAM_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert missing in line
    assert "HOOKSTREAM_KAFKA_BOOTSTRAP" in line


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (
            ["hookstream.cli", "hookstream.localkafka", "hookstream.kafka", "hookstream.tail"],
            ["faust", "aiohttp"],
        ),
        (["hookstream.xcli"], ["faust", "aiohttp"]),
        (["hookstream.xcommands", "hookstream.xapi", "hookstream.xsetup"], ["faust", "mode"]),
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
