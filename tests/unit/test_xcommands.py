"""`hookstream x …` without X: arguments, exit 2 on bad usage or settings, and where output goes."""

from __future__ import annotations

import argparse
import io

import pytest

from hookstream.cli import main
from hookstream.settings import Secret
from hookstream.xcli import max_wait, url
from hookstream.xcommands import MASK, Output

TOKEN = "AAAAAAAAAAAAAAAAAAAAAUnitTestToken%3D0123456789"
NOWHERE = {"HOOKSTREAM_X_API_URL": "http://127.0.0.1:9", "HOOKSTREAM_X_BEARER_TOKEN": TOKEN}


def test_max_wait_takes_seconds_minutes_hours_or_zero() -> None:
    assert [max_wait(t) for t in ("0", "90", "90s", "15m", "1h")] == [0, 90, 90, 900, 3600]
    with pytest.raises(argparse.ArgumentTypeError):
        max_wait("a while")


def test_a_webhook_url_must_be_an_absolute_http_url() -> None:
    assert url("https://hooks.example.com/webhooks/x") == "https://hooks.example.com/webhooks/x"
    for bad in ("hooks.example.com/webhooks/x", "ftp://h/x", "https:///x"):
        with pytest.raises(argparse.ArgumentTypeError):
            url(bad)


def test_under_json_stdout_carries_only_the_answer_and_the_token_is_masked_everywhere() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(True, Secret(TOKEN), stdout, stderr)
    out.say(f"a line that somehow carries {TOKEN}")
    out.answer({"echo": TOKEN})
    out.note("warning")
    assert stdout.getvalue() == f'{{"echo":"{MASK}"}}\n'
    assert stderr.getvalue() == f"a line that somehow carries {MASK}\nwarning\n"
    human = Output(False, None, stdout := io.StringIO(), io.StringIO())
    human.say("line")
    human.answer({"not": "shown"})
    assert stdout.getvalue() == "line\n"


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["rules", "delete", "123", "--all"], NOWHERE, "give rule ids, or --all"),
        (["rules", "list"], {"HOOKSTREAM_X_BEARER_TOKEN": ""}, "HOOKSTREAM_X_BEARER_TOKEN"),
        (["crc-check", "http://127.0.0.1:9/x"], {"HOOKSTREAM_X_CONSUMER_SECRETS": ""}, "CONSUMER_SECRETS"),
        (
            ["setup", "--url", "http://127.0.0.1:9/x", "--rules", "/nonexistent.toml"],
            NOWHERE,
            "nonexistent.toml",
        ),
        (["setup", "--url", "127.0.0.1/x", "--rules", "x.toml"], NOWHERE, "expected a URL"),
    ],
)
def test_bad_usage_or_settings_exit_2_before_anything_is_sent(
    args: list[str],
    env: dict[str, str],
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = main(["x", *args])
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    output = capsys.readouterr()
    assert code == 2
    assert says in output.err
    assert TOKEN not in output.out + output.err
