"""Every setting of SPEC §3, read from the environment once into one frozen, typed object.

Both services and the CLI call `Settings.from_env()` at startup and pass the result down; nothing else
reads the environment. A bad value raises `SettingsError`, whose message is one line naming the setting.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from hookstream import kafkasecurity as ks
from hookstream.errors import SettingsError
from hookstream.kafkasecurity import KafkaSecurity
from hookstream.topics import RESERVED_LABELS, REVERSE_DNS_LABELS, SOURCES

T = TypeVar("T")

ProcessingGuarantee = Literal["at_least_once", "exactly_once"]
MIN_TOKEN_LENGTH = 16
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A Standard sender's events are typed `<name>.<type>` and routed to `<ns>.<name>.<type>`: a name that is
# one of our reserved labels, a reverse-DNS label `for_type` strips, or another source's name would put a
# sender's events inside our raw or internal topics or another sender's (SPEC §7).
RESERVED_SENDER_NAMES = RESERVED_LABELS | REVERSE_DNS_LABELS | frozenset(SOURCES)
_NAMESPACE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,100}$")
FILE_SUFFIX = "_FILE"


class Secret:
    """A credential that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Settings:
    kafka_bootstrap: str = "localhost:9092"
    namespace: str = "hookstream"
    x_consumer_secrets: tuple[Secret, ...] = ()
    hootsuite_secrets: tuple[Secret, ...] = ()
    hootsuite_sso_tolerance_s: int = 300
    hootsuite_sso_sha1: bool = False  # also accept the SHA-1 tokens of very old Hootsuite SDKs
    hootsuite_events_token: Secret | None = None
    websitetoolbox_token: Secret | None = None
    standard_secrets: Mapping[str, tuple[Secret, ...]] = field(default_factory=dict)
    max_body_bytes: int = 1024 * 1024
    ack_timeout_ms: int = 2500
    read_timeout_ms: int = 10_000
    max_in_flight: int = 1024
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    dedup_window_s: float = 7 * 86400
    processing_guarantee: ProcessingGuarantee = "at_least_once"
    store: str = "memory://"
    worker_port: int = 6066
    topic_partitions: int = 6
    replication_factor: int | None = None  # None: 3 on a cluster of three or more brokers, else 1
    routes_file: Path | None = None
    hootsuite_api_url: str = "https://platform.hootsuite.com"
    hootsuite_client_id: str | None = None
    hootsuite_client_secret: Secret | None = None
    hootsuite_refresh_token: Secret | None = None
    hootsuite_poll_interval_s: float = 30.0
    poller_port: int = 6067
    x_api_url: str = "https://api.x.com"  # `hookstream x …` (SPEC §9)
    x_bearer_token: Secret | None = None  # X's app-only bearer token, for `hookstream x …` only
    stall_timeout_s: float = 120.0
    log_level: str = "INFO"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "hookstream")
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def poller_configured(self) -> bool:
        return bool(
            self.hootsuite_client_id and self.hootsuite_client_secret and self.hootsuite_refresh_token
        )

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap.split(",") if s.strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every HOOKSTREAM_* variable; raise SettingsError on the first bad one."""
        env = _Env(os.environ if environ is None else environ)
        default = cls()
        return cls(
            kafka_bootstrap=env.get("HOOKSTREAM_KAFKA_BOOTSTRAP", default.kafka_bootstrap, _bootstrap),
            namespace=env.get("HOOKSTREAM_NAMESPACE", default.namespace, _namespace),
            x_consumer_secrets=env.get("HOOKSTREAM_X_CONSUMER_SECRETS", (), _secrets(min_length=1)),
            hootsuite_secrets=env.get("HOOKSTREAM_HOOTSUITE_SECRETS", (), _secrets(min_length=1)),
            hootsuite_sso_tolerance_s=env.get(
                "HOOKSTREAM_HOOTSUITE_SSO_TOLERANCE", default.hootsuite_sso_tolerance_s, _int(1, 86400)
            ),
            hootsuite_sso_sha1=env.get("HOOKSTREAM_HOOTSUITE_SSO_SHA1", default.hootsuite_sso_sha1, _bool),
            hootsuite_events_token=env.get("HOOKSTREAM_HOOTSUITE_EVENTS_TOKEN", None, _token),
            websitetoolbox_token=env.get("HOOKSTREAM_WEBSITETOOLBOX_TOKEN", None, _token),
            standard_secrets=env.get("HOOKSTREAM_STANDARD_SECRETS", {}, _standard_secrets),
            max_body_bytes=env.get(
                "HOOKSTREAM_MAX_BODY_BYTES", default.max_body_bytes, _int(1, 64 * 1024**2)
            ),
            ack_timeout_ms=env.get("HOOKSTREAM_ACK_TIMEOUT_MS", default.ack_timeout_ms, _int(10, 120_000)),
            read_timeout_ms=env.get(
                "HOOKSTREAM_READ_TIMEOUT_MS", default.read_timeout_ms, _int(100, 600_000)
            ),
            max_in_flight=env.get("HOOKSTREAM_MAX_IN_FLIGHT", default.max_in_flight, _int(1, 1_000_000)),
            http_host=env.get("HOOKSTREAM_HTTP_HOST", default.http_host, _nonempty),
            http_port=env.get("HOOKSTREAM_HTTP_PORT", default.http_port, _int(0, 65535)),
            dedup_window_s=env.get("HOOKSTREAM_DEDUP_WINDOW", default.dedup_window_s, _duration),
            processing_guarantee=env.get(
                "HOOKSTREAM_PROCESSING_GUARANTEE", default.processing_guarantee, _guarantee
            ),
            store=env.get("HOOKSTREAM_STORE", default.store, _store),
            worker_port=env.get("HOOKSTREAM_WORKER_PORT", default.worker_port, _int(0, 65535)),
            topic_partitions=env.get(
                "HOOKSTREAM_TOPIC_PARTITIONS", default.topic_partitions, _int(1, 10_000)
            ),
            replication_factor=env.get("HOOKSTREAM_REPLICATION_FACTOR", None, _int(1, 16)),
            routes_file=env.get("HOOKSTREAM_ROUTES", None, _existing_file),
            hootsuite_api_url=env.get("HOOKSTREAM_HOOTSUITE_API_URL", default.hootsuite_api_url, _http_url),
            hootsuite_client_id=env.get("HOOKSTREAM_HOOTSUITE_CLIENT_ID", None, _nonempty),
            hootsuite_client_secret=env.get("HOOKSTREAM_HOOTSUITE_CLIENT_SECRET", None, _secret),
            hootsuite_refresh_token=env.get("HOOKSTREAM_HOOTSUITE_REFRESH_TOKEN", None, _secret),
            hootsuite_poll_interval_s=env.get(
                "HOOKSTREAM_HOOTSUITE_POLL_INTERVAL", default.hootsuite_poll_interval_s, _duration
            ),
            stall_timeout_s=env.get("HOOKSTREAM_STALL_TIMEOUT", default.stall_timeout_s, _duration),
            poller_port=env.get("HOOKSTREAM_POLLER_PORT", default.poller_port, _int(0, 65535)),
            x_api_url=env.get("HOOKSTREAM_X_API_URL", default.x_api_url, _http_url),
            x_bearer_token=env.get("HOOKSTREAM_X_BEARER_TOKEN", None, _bearer_token),
            log_level=env.get("HOOKSTREAM_LOG_LEVEL", default.log_level, _log_level),
            cache_dir=env.get("HOOKSTREAM_CACHE_DIR", default.cache_dir, Path),
            kafka_security=KafkaSecurity(
                protocol=env.get(ks.PROTOCOL, "PLAINTEXT", ks.security_protocol),
                sasl_mechanism=env.get(ks.MECHANISM, None, ks.sasl_mechanism),
                sasl_username=env.get(ks.USERNAME, None, _nonempty),
                sasl_password=env.get(ks.PASSWORD, None, _secret),
                ssl_cafile=env.get(ks.CAFILE, None, _existing_file),
                ssl_certfile=env.get(ks.CERTFILE, None, _existing_file),
                ssl_keyfile=env.get(ks.KEYFILE, None, _existing_file),
                ssl_check_hostname=env.get(ks.CHECK_HOSTNAME, True, _bool),
            ).checked(),
        )


class _Env:
    """Looks a variable up and parses it, turning any parse error into a SettingsError naming it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        """`name`'s value parsed, or `default` when unset. Every setting, so every secret, may instead
        be given as `<name>_FILE`: the path of a file holding it, as Kubernetes and Docker mount secrets."""
        raw, source = self._raw(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except (ValueError, binascii.Error) as exc:
            raise SettingsError(source, str(exc)) from None

    def _raw(self, name: str) -> tuple[str | None, str]:
        """The raw value and the variable it came from, `name` or `name_FILE`; both set is an error."""
        inline, path = self._environ.get(name, ""), self._environ.get(name + FILE_SUFFIX, "")
        if path.strip() == "":
            return inline, name
        if inline.strip() != "":
            raise SettingsError(name, f"both {name} and {name}{FILE_SUFFIX} are set; keep one")
        return _read_file(name + FILE_SUFFIX, Path(path.strip())), name + FILE_SUFFIX


def _read_file(name: str, path: Path) -> str:
    """A mounted secret: the file's text with one trailing newline ignored. An empty file counts as an
    empty variable (unset: a sender's secret left empty disables it); an unreadable one stops startup."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(name, f"cannot read {path} ({type(exc).__name__})") from None
    return text.removesuffix("\n").removesuffix("\r")


def _nonempty(raw: str) -> str:
    return raw


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"expected true or false, got {raw!r}")
    return value in ("true", "1", "yes")


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _duration(raw: str) -> float:
    match = _DURATION.match(raw)
    if not match:
        raise ValueError(f"expected a duration such as 30s, 15m, 12h or 7d, got {raw!r}")
    seconds = int(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


def _bootstrap(raw: str) -> str:
    for server in raw.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port[,host:port…], got {raw!r}")
    return raw


def _namespace(raw: str) -> str:
    if not _NAMESPACE.match(raw):
        raise ValueError("must be letters, digits, '.', '_' or '-' (it prefixes every topic name)")
    return raw


def _secret(raw: str) -> Secret:
    return Secret(raw)


def _secrets(min_length: int) -> Callable[[str], tuple[Secret, ...]]:
    def parse(raw: str) -> tuple[Secret, ...]:
        values = [part.strip() for part in raw.split(",")]
        if any(len(value) < min_length for value in values):
            raise ValueError("an entry of the comma-separated list is empty")
        return tuple(Secret(value) for value in values)

    return parse


def _bearer_token(raw: str) -> Secret:
    """One header-safe word: catches a pasted `Bearer …` or a line break before X answers 401."""
    if not re.fullmatch(r"[\x21-\x7e]+", raw):
        raise ValueError("expected the token alone: printable ASCII without spaces (no 'Bearer ' prefix)")
    return Secret(raw)


def _token(raw: str) -> Secret:
    if len(raw) < MIN_TOKEN_LENGTH:
        raise ValueError(f"a URL token must be at least {MIN_TOKEN_LENGTH} characters, to be unguessable")
    if not re.fullmatch(r"[A-Za-z0-9._~-]+", raw):
        raise ValueError("a URL token may only use unreserved URL characters (A-Z a-z 0-9 . _ ~ -)")
    return Secret(raw)


def _standard_secrets(raw: str) -> dict[str, tuple[Secret, ...]]:
    """`name=whsec_…` pairs; a name may repeat, so a sender's secrets can be rotated."""
    secrets: dict[str, list[Secret]] = {}
    for pair in raw.split(","):
        name, sep, value = pair.strip().partition("=")
        if not sep:
            raise ValueError("expected comma-separated name=whsec_… pairs")
        if not _NAME.match(name):
            raise ValueError(f"sender name {name!r} must be lowercase letters, digits, '_' or '-'")
        if name in RESERVED_SENDER_NAMES:
            raise ValueError(
                f"sender name {name!r} is reserved: its event types would name hookstream's own topics"
            )
        key = standard_secret_key(Secret(value))
        if len(key) < 16:
            raise ValueError(f"the secret of {name!r} is shorter than 16 bytes once decoded")
        secrets.setdefault(name, []).append(Secret(value))
    return {name: tuple(values) for name, values in secrets.items()}


def standard_secret_key(secret: Secret) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix and the padding are optional)."""
    encoded = secret.reveal().removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def _guarantee(raw: str) -> ProcessingGuarantee:
    if raw == "at_least_once":
        return "at_least_once"
    if raw == "exactly_once":
        return "exactly_once"
    raise ValueError(f"expected at_least_once or exactly_once, got {raw!r}")


def _store(raw: str) -> str:
    if raw not in ("memory://", "rocksdb://") and not raw.startswith("rocksdb://"):
        raise ValueError(f"expected memory:// or rocksdb://[path], got {raw!r}")
    return raw


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError(f"no such file: {raw}")
    return path


def _http_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level
