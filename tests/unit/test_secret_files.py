"""`HOOKSTREAM_<NAME>_FILE`: every secret may come from a mounted file instead of the environment."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hookstream.errors import SettingsError
from hookstream.settings import Secret, Settings

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
TOKEN = "token-0123456789abcdef"


def reveal(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, tuple):
        return [reveal(v) for v in value]
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    return value


SECRETS: list[tuple[str, str, Callable[[Settings], Any]]] = [
    ("HOOKSTREAM_X_CONSUMER_SECRETS", "one,two", lambda s: s.x_consumer_secrets),
    ("HOOKSTREAM_HOOTSUITE_SECRETS", "shared", lambda s: s.hootsuite_secrets),
    ("HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN", TOKEN, lambda s: s.hootsuite_events_token),
    ("HOOKSTREAM_WEBSITETOOLBOX_TOKEN", TOKEN, lambda s: s.websitetoolbox_token),
    ("HOOKSTREAM_STANDARD_SECRETS", f"acme={WHSEC}", lambda s: s.standard_secrets),
    ("HOOKSTREAM_HOOTSUITE_CLIENT_SECRET", "client-secret", lambda s: s.hootsuite_client_secret),
    ("HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN", "refresh", lambda s: s.hootsuite_refresh_token),
    ("HOOKSTREAM_X_BEARER_TOKEN", "AAAAAAAAAAAAAAAAAAAAAbearer0123456789", lambda s: s.x_bearer_token),
]


@pytest.mark.parametrize(("name", "value", "field"), SECRETS, ids=[name for name, _, _ in SECRETS])
def test_every_secret_reads_the_same_from_a_file(
    tmp_path: Path, name: str, value: str, field: Callable[[Settings], Any]
) -> None:
    mounted = tmp_path / "secret"
    mounted.write_text(value + "\n")  # as `kubectl create secret --from-file` or an editor leaves it
    from_file = Settings.from_env({name + "_FILE": str(mounted)})
    assert reveal(field(from_file)) == reveal(field(Settings.from_env({name: value})))
    assert reveal(field(from_file))  # not the default


def test_the_kafka_password_from_a_file_keeps_all_but_one_trailing_newline(tmp_path: Path) -> None:
    mounted = tmp_path / "password"
    mounted.write_text(" pass word \n")
    env = {
        "HOOKSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "HOOKSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
        "HOOKSTREAM_KAFKA_SASL_USERNAME": "worker",
        "HOOKSTREAM_KAFKA_SASL_PASSWORD_FILE": str(mounted),
    }
    password = Settings.from_env(env).kafka_security.sasl_password
    assert password is not None
    assert password.reveal() == "pass word"


def test_both_forms_at_once_are_refused(tmp_path: Path) -> None:
    mounted = tmp_path / "token"
    mounted.write_text(TOKEN)
    env = {"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": TOKEN, "HOOKSTREAM_WEBSITETOOLBOX_TOKEN_FILE": str(mounted)}
    with pytest.raises(SettingsError, match=r"^bad setting HOOKSTREAM_WEBSITETOOLBOX_TOKEN: both"):
        Settings.from_env(env)


def test_an_unreadable_file_is_refused_naming_the_file_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^bad setting HOOKSTREAM_HOOTSUITE_SECRETS_FILE: cannot read"):
        Settings.from_env({"HOOKSTREAM_HOOTSUITE_SECRETS_FILE": str(tmp_path / "absent")})
    (tmp_path / "directory").mkdir()
    with pytest.raises(SettingsError, match=r"^bad setting HOOKSTREAM_HOOTSUITE_SECRETS_FILE: cannot read"):
        Settings.from_env({"HOOKSTREAM_HOOTSUITE_SECRETS_FILE": str(tmp_path / "directory")})


@pytest.mark.parametrize("content", ["", "\n"], ids=["empty", "newline"])
def test_an_empty_file_is_an_empty_setting_which_disables_a_sender(tmp_path: Path, content: str) -> None:
    mounted = tmp_path / "token"
    mounted.write_text(content)
    assert (
        Settings.from_env({"HOOKSTREAM_WEBSITETOOLBOX_TOKEN_FILE": str(mounted)}).websitetoolbox_token is None
    )


def test_a_bad_value_in_a_file_names_the_file_setting(tmp_path: Path) -> None:
    mounted = tmp_path / "token"
    mounted.write_text("short\n")
    with pytest.raises(
        SettingsError, match=r"^bad setting HOOKSTREAM_WEBSITETOOLBOX_TOKEN_FILE: a URL token"
    ):
        Settings.from_env({"HOOKSTREAM_WEBSITETOOLBOX_TOKEN_FILE": str(mounted)})
