"""Time rules of the lake: epoch milliseconds, UTC instants and the ``dt`` day partition.

Every message carries its event time as epoch milliseconds (UTC); every partitioned table
is partitioned by ``dt``, the UTC date (``yyyy-MM-dd``) of its time column. The SQL of
both engines computes ``dt`` the same way (``jobs.transforms.dialect``); Python code that
names a partition, a day range or an instant uses these functions, never its own copy.

Conversions go through :class:`datetime.timedelta` arithmetic rather than
``datetime.fromtimestamp``, so they are exact for every instant of years 1–9999 on every
platform; anything outside raises :class:`ValueError` with the value named.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: Epoch milliseconds of the first and last representable instants (years 1 and 9999).
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _MS


def to_ms(t: datetime) -> int:
    """Epoch milliseconds of ``t`` (a naive ``t`` is taken as UTC), rounded down.

    Raises:
        ValueError: ``t`` falls outside years 1–9999 once taken to UTC (an aware date-time
            of year 1 or 9999 can, e.g. ``0001-01-01T00:00+05:00``).

    """
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    ms = (t - _EPOCH) // _MS
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"{t.isoformat()} is outside years 1-9999 in UTC")
    return ms


def from_ms(ms: int) -> datetime:
    """The UTC instant of epoch milliseconds.

    Raises:
        ValueError: ``ms`` is outside years 1–9999.

    """
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"epoch milliseconds {ms} are outside years 1-9999")
    return _EPOCH + int(ms) * _MS


def dt_of(ms: int) -> str:
    """The ``dt`` partition (UTC date, ``yyyy-MM-dd``) of an epoch-milliseconds instant."""
    return from_ms(ms).date().isoformat()


def day_start_ms(day: date) -> int:
    """Epoch milliseconds of a UTC day's first instant."""
    return to_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))


def dt_range(start_ms: int, end_ms: int) -> list[str]:
    """The ``dt`` partitions that a range ``[start_ms, end_ms)`` touches, in order."""
    if end_ms <= start_ms:
        return []
    first = from_ms(start_ms).date()
    last = from_ms(end_ms - 1).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 date or date-time (naive means UTC; ``Z`` allowed).

    Raises:
        ValueError: ``text`` is not a date or date-time, or is outside years 1–9999 in UTC.

    """
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid date/time {text!r}; use e.g. 2024-06-01 or 2024-06-01T12:00"
        ) from None
    return to_ms(t)


def format_time_ms(ms: int) -> str:
    """An epoch-milliseconds instant as ISO-8601 UTC to the second (``2024-06-01T12:00:00Z``)."""
    # isoformat, not strftime: the C library's %Y does not pad years before 1000 to 4 digits
    return from_ms(ms).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
