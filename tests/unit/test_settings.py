from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hookstream.errors import SettingsError
from hookstream.settings import Secret, Settings, standard_secret_key

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_defaults_match_the_spec() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap == "localhost:9092"
    assert (settings.http_host, settings.http_port, settings.worker_port) == ("0.0.0.0", 8080, 6066)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.ack_timeout_ms == 2500
    assert settings.dedup_window_s == 7 * 86400
    assert settings.processing_guarantee == "at_least_once"
    assert settings.store == "memory://"
    assert (settings.topic_partitions, settings.replication_factor) == (6, None)
    assert settings.hootsuite_sso_tolerance_s == 300
    assert settings.hootsuite_sso_sha1 is False
    assert settings.hootsuite_api_url == "https://platform.hootsuite.com"
    assert settings.hootsuite_poll_interval_s == 30
    assert settings.websitetoolbox_token is None
    assert settings.namespace == "hookstream"


def test_lists_of_secrets_keep_their_order_for_rotation() -> None:
    settings = Settings.from_env({"HOOKSTREAM_X_CONSUMER_SECRETS": "first, second"})
    assert [s.reveal() for s in settings.x_consumer_secrets] == ["first", "second"]


def test_standard_secrets_group_by_sender_name() -> None:
    other = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
    settings = Settings.from_env({"HOOKSTREAM_STANDARD_SECRETS": f"acme={WHSEC},acme={other},shop={WHSEC}"})
    assert sorted(settings.standard_secrets) == ["acme", "shop"]
    assert [standard_secret_key(s) for s in settings.standard_secrets["acme"]] == [
        b"0123456789abcdef0123456789abcdef",
        b"fedcba9876543210fedcba9876543210",
    ]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HOOKSTREAM_DEDUP_WINDOW", "7d", 604800),
        ("HOOKSTREAM_DEDUP_WINDOW", "12h", 43200),
        ("HOOKSTREAM_DEDUP_WINDOW", "90", 90),
        ("HOOKSTREAM_HOOTSUITE_POLL_INTERVAL", "500ms", 0.5),
    ],
)
def test_durations(name: str, value: str, expected: float) -> None:
    settings = Settings.from_env({name: value})
    assert expected in (settings.dedup_window_s, settings.hootsuite_poll_interval_s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOOKSTREAM_HTTP_PORT", "eighty"),
        ("HOOKSTREAM_HTTP_PORT", "70000"),
        ("HOOKSTREAM_KAFKA_BOOTSTRAP", "localhost"),
        ("HOOKSTREAM_DEDUP_WINDOW", "a week"),
        ("HOOKSTREAM_PROCESSING_GUARANTEE", "exactly-once"),
        ("HOOKSTREAM_STORE", "redis://"),
        ("HOOKSTREAM_WEBSITETOOLBOX_TOKEN", "short"),
        ("HOOKSTREAM_WEBSITETOOLBOX_TOKEN", "has/a/slash/in/it/0123456789"),
        ("HOOKSTREAM_STANDARD_SECRETS", "acme"),
        ("HOOKSTREAM_STANDARD_SECRETS", "acme=whsec_not base64!"),
        ("HOOKSTREAM_STANDARD_SECRETS", "acme=whsec_c2hvcnQ="),
        *(
            ("HOOKSTREAM_STANDARD_SECRETS", f"{name}=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            for name in ("raw", "internal", "io", "com", "org", "net", "x", "websitetoolbox")
        ),
        ("HOOKSTREAM_X_CONSUMER_SECRETS", "one,,two"),
        ("HOOKSTREAM_ROUTES", "/nonexistent/routes.yaml"),
        ("HOOKSTREAM_HOOTSUITE_API_URL", "platform.hootsuite.com"),
        ("HOOKSTREAM_TOPIC_PARTITIONS", "0"),
        ("HOOKSTREAM_NAMESPACE", "no spaces"),
        ("HOOKSTREAM_HOOTSUITE_SSO_SHA1", "sometimes"),
    ],
)
def test_a_bad_setting_is_one_line_that_names_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    message = str(raised.value)
    assert name in message
    assert "\n" not in message
    assert raised.value.name == name


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("Yes", True), ("1", True), ("false", False), ("0", False)]
)
def test_switches_read_true_or_false(value: str, expected: bool) -> None:
    assert Settings.from_env({"HOOKSTREAM_HOOTSUITE_SSO_SHA1": value}).hootsuite_sso_sha1 is expected


def test_a_bad_secret_is_not_echoed_back() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": "tooshort"})
    assert "tooshort" not in str(raised.value)


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env(
        {
            "HOOKSTREAM_WEBSITETOOLBOX_TOKEN": "forum-token-0123456789",
            "HOOKSTREAM_X_CONSUMER_SECRETS": "xsecret",
        }
    )
    text = repr(settings) + str(settings.websitetoolbox_token)
    assert "forum-token-0123456789" not in text
    assert "xsecret" not in text
    assert settings.websitetoolbox_token == Secret("forum-token-0123456789")


def test_routes_file_must_exist(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes: []\n")
    assert Settings.from_env({"HOOKSTREAM_ROUTES": str(routes)}).routes_file == routes


def test_the_x_api_settings_default_to_x_and_keep_the_bearer_token_secret() -> None:
    default = Settings.from_env({})
    assert (default.x_api_url, default.x_bearer_token) == ("https://api.x.com", None)
    token = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRf"
    settings = Settings.from_env(
        {"HOOKSTREAM_X_API_URL": "http://127.0.0.1:8000/", "HOOKSTREAM_X_BEARER_TOKEN": token}
    )
    assert settings.x_api_url == "http://127.0.0.1:8000"
    assert settings.x_bearer_token == Secret(token)
    assert token not in repr(settings)
    for pasted in (f"Bearer {token}", f"{token}\nsecond line"):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({"HOOKSTREAM_X_BEARER_TOKEN": pasted})
        assert raised.value.name == "HOOKSTREAM_X_BEARER_TOKEN"
        assert token not in str(raised.value)
