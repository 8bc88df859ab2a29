"""RFC 3339 UTC timestamps, the one time format of our CloudEvents, and readers for the providers' own.

The readers return an aware UTC datetime, or None for anything that is not a time they can read (never an
exception): a provider's malformed time falls back to the receive time, it does not lose the event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_END_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: the first instant datetime cannot hold
_MAX_DIGITS = 20  # far more than any epoch time in range; keeps int() away from huge strings


def from_epoch_ms(epoch_ms: int) -> str:
    """RFC 3339 with milliseconds; an instant outside 1970..9999 is held at the nearest end (callers
    pass only times within it: `in_range_ms` says which)."""
    epoch_ms = min(max(epoch_ms, 0), _END_MS - 1)
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def in_range_ms(epoch_ms: int) -> bool:
    """Whether an epoch time in milliseconds lies within what a timestamp can hold (1970..9999)."""
    return 0 <= epoch_ms < _END_MS


def from_datetime(moment: datetime) -> str:
    """RFC 3339 UTC, with milliseconds only when they are not zero; a naive datetime is taken as UTC."""
    utc = _utc(moment)
    text = utc.replace(tzinfo=None).isoformat(timespec="seconds")
    millis = utc.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def parse_iso(text: object) -> datetime | None:
    """ISO 8601 with 'Z' or an offset (a time without either is UTC)."""
    if not isinstance(text, str):
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


def parse_pattern(text: object, pattern: str) -> datetime | None:
    """`text` in a `strptime` pattern; UTC unless the pattern reads an offset (`%z`)."""
    if not isinstance(text, str):
        return None
    try:
        return _utc(datetime.strptime(text, pattern))
    except (ValueError, OverflowError):
        return None


def parse_epoch_ms(value: object) -> datetime | None:
    """Unix epoch milliseconds, an integer or its decimal digits; None outside (epoch, year 9999]."""
    number = _integer(value)
    if number is None or not 0 < number < _END_MS:
        return None
    return datetime.fromtimestamp(number // 1000, tz=UTC) + timedelta(milliseconds=number % 1000)


def parse_epoch_s(value: object) -> datetime | None:
    """Unix epoch seconds, an integer or its decimal digits."""
    number = _integer(value)
    return None if number is None else parse_epoch_ms(number * 1000)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    return None
