import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from lakehouse.time import (
    DAY_MS,
    HOUR_MS,
    MAX_MS,
    MIN_MS,
    MINUTE_MS,
    day_start_ms,
    dt_of,
    dt_range,
    format_time_ms,
    from_ms,
    parse_time_ms,
    to_ms,
)

PLUS_5 = timezone(timedelta(hours=5))
MINUS_5 = timezone(timedelta(hours=-5))


def test_units() -> None:
    assert MINUTE_MS == 60 * 1000
    assert HOUR_MS == 60 * MINUTE_MS
    assert DAY_MS == 24 * HOUR_MS


def test_bounds_are_the_first_and_last_millisecond_of_years_1_and_9999() -> None:
    assert from_ms(MIN_MS) == datetime(1, 1, 1, tzinfo=UTC)
    assert from_ms(MAX_MS) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert to_ms(datetime(1, 1, 1)) == MIN_MS
    assert to_ms(datetime(9999, 12, 31, 23, 59, 59, 999999)) == MAX_MS
    assert dt_of(MIN_MS) == "0001-01-01" and dt_of(MAX_MS) == "9999-12-31"


@pytest.mark.parametrize("ms", [MIN_MS - 1, MAX_MS + 1, -(2**62), 2**62])
def test_out_of_range_milliseconds_raise_value_error(ms: int) -> None:
    with pytest.raises(ValueError, match=str(ms)):
        from_ms(ms)
    with pytest.raises(ValueError):
        dt_of(ms)
    with pytest.raises(ValueError):
        format_time_ms(ms)


@pytest.mark.parametrize("t", [datetime(1, 1, 1, tzinfo=PLUS_5),
                               datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_5)])
def test_aware_instants_beyond_the_utc_years_raise_value_error(t: datetime) -> None:
    with pytest.raises(ValueError, match="outside years 1-9999"):
        to_ms(t)
    with pytest.raises(ValueError, match="outside years 1-9999"):
        parse_time_ms(t.isoformat())


def test_epoch_and_negative_milliseconds() -> None:
    assert to_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert from_ms(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_ms(-1) == datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert to_ms(datetime(1969, 12, 31, 23, 59, 59, 999000)) == -1
    # sub-millisecond parts round down, before the epoch too
    assert to_ms(datetime(1969, 12, 31, 23, 59, 59, 999999)) == -1
    assert to_ms(datetime(1970, 1, 1, 0, 0, 0, 999)) == 0
    assert dt_of(-1) == "1969-12-31" and dt_of(0) == "1970-01-01"
    assert dt_of(-DAY_MS) == "1969-12-31" and dt_of(-DAY_MS - 1) == "1969-12-30"
    assert format_time_ms(-1) == "1969-12-31T23:59:59Z"


def test_naive_means_utc_and_aware_is_converted() -> None:
    naive = datetime(2024, 6, 1, 12, 0)
    assert to_ms(naive) == to_ms(naive.replace(tzinfo=UTC)) == 1_717_243_200_000
    assert to_ms(datetime(2024, 6, 1, 17, 0, tzinfo=PLUS_5)) == to_ms(naive)
    assert to_ms(datetime(2024, 6, 1, 7, 0, tzinfo=MINUS_5)) == to_ms(naive)
    out = from_ms(to_ms(naive))
    assert out.tzinfo is UTC and out == naive.replace(tzinfo=UTC)


def test_dt_of_is_the_utc_date_not_the_local_one() -> None:
    late_evening_new_york = to_ms(datetime(2024, 6, 1, 22, 0, tzinfo=MINUS_5))
    assert dt_of(late_evening_new_york) == "2024-06-02"
    assert dt_of(day_start_ms(date(2024, 6, 2)) - 1) == "2024-06-01"


def test_day_start() -> None:
    assert day_start_ms(date(1970, 1, 1)) == 0
    assert day_start_ms(date(1970, 1, 2)) == DAY_MS
    assert day_start_ms(date(1969, 12, 31)) == -DAY_MS
    assert day_start_ms(date(1, 1, 1)) == MIN_MS
    assert day_start_ms(date(9999, 12, 31)) == MAX_MS + 1 - DAY_MS
    assert day_start_ms(date(2024, 3, 1)) - day_start_ms(date(2024, 2, 28)) == 2 * DAY_MS


def test_days_of_a_range() -> None:
    assert dt_range(0, 86_400_000) == ["1970-01-01"]
    assert dt_range(86_399_999, 86_400_001) == ["1970-01-01", "1970-01-02"]


def test_dt_range_end_is_exclusive_and_empty_ranges_touch_nothing() -> None:
    d = day_start_ms(date(2024, 6, 2))
    assert dt_range(d, d + 1) == ["2024-06-02"]
    assert dt_range(d - 1, d) == ["2024-06-01"]
    assert dt_range(d - 1, d + 1) == ["2024-06-01", "2024-06-02"]
    assert dt_range(d, d) == [] and dt_range(d + 1, d) == []
    assert dt_range(-1, 1) == ["1969-12-31", "1970-01-01"]


def test_dt_range_across_month_and_year_ends() -> None:
    feb = dt_range(day_start_ms(date(2024, 2, 28)), day_start_ms(date(2024, 3, 2)))
    assert feb == ["2024-02-28", "2024-02-29", "2024-03-01"]
    feb = dt_range(day_start_ms(date(2023, 2, 28)), day_start_ms(date(2023, 3, 2)))
    assert feb == ["2023-02-28", "2023-03-01"]
    new_year = dt_range(to_ms(datetime(2024, 12, 30, 12)), to_ms(datetime(2025, 1, 2, 0, 0, 1)))
    assert new_year == ["2024-12-30", "2024-12-31", "2025-01-01", "2025-01-02"]
    assert len(dt_range(day_start_ms(date(2024, 1, 1)), day_start_ms(date(2025, 1, 1)))) == 366


def test_dt_range_at_the_bounds() -> None:
    assert dt_range(MIN_MS, MIN_MS + 1) == ["0001-01-01"]
    assert dt_range(MAX_MS, MAX_MS + 1) == ["9999-12-31"]
    assert dt_range(MAX_MS - DAY_MS, MAX_MS + 1) == ["9999-12-30", "9999-12-31"]
    with pytest.raises(ValueError):
        dt_range(MIN_MS - 1, MIN_MS + 1)
    with pytest.raises(ValueError):
        dt_range(MAX_MS, MAX_MS + 2)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1970-01-01", 0),
        ("1970-01-01T00:00:00.001", 1),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2024-06-01T12:00", 1_717_243_200_000),
        ("2024-06-01T12:00Z", 1_717_243_200_000),
        ("2024-06-01T12:00:00Z", 1_717_243_200_000),
        ("2024-06-01T12:00:00+00:00", 1_717_243_200_000),
        ("2024-06-01T14:00+02:00", 1_717_243_200_000),
        ("  2024-06-01T12:00  ", 1_717_243_200_000),
        ("2024-06-01 12:00", 1_717_243_200_000),
        ("0001-01-01", MIN_MS),
        ("9999-12-31T23:59:59.999", MAX_MS),
    ],
)
def test_parse_time(text: str, want: int) -> None:
    assert parse_time_ms(text) == want


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "2024-06-01T25:00",
                                  "01/06/2024", "10000-01-01"])
def test_parse_time_rejects_what_is_not_a_date(text: str) -> None:
    with pytest.raises(ValueError, match="invalid date/time"):
        parse_time_ms(text)


def test_format_time_is_iso_utc_to_the_second() -> None:
    assert format_time_ms(0) == "1970-01-01T00:00:00Z"
    assert format_time_ms(1_717_243_200_999) == "2024-06-01T12:00:00Z"
    assert format_time_ms(MIN_MS) == "0001-01-01T00:00:00Z"
    assert format_time_ms(MAX_MS) == "9999-12-31T23:59:59Z"
    assert format_time_ms(day_start_ms(date(999, 5, 6))) == "0999-05-06T00:00:00Z"


def test_round_trips_over_the_whole_range() -> None:
    # hypothesis is not a dependency: a seeded sample, with both bounds and the epoch
    rng = random.Random(20240601)
    samples = [MIN_MS, MIN_MS + 1, -1, 0, 1, MAX_MS - 1, MAX_MS]
    samples += [rng.randint(MIN_MS, MAX_MS) for _ in range(2000)]
    for ms in samples:
        t = from_ms(ms)
        assert to_ms(t) == to_ms(t.replace(tzinfo=None)) == ms
        if ms <= MAX_MS - 5 * HOUR_MS:  # the +05:00 wall time is still before year 10000
            assert to_ms(t.astimezone(PLUS_5)) == ms
        assert dt_of(ms) == t.date().isoformat()
        assert dt_range(ms, ms + 1) == [dt_of(ms)]
        assert day_start_ms(t.date()) <= ms < day_start_ms(t.date()) + DAY_MS
        assert parse_time_ms(format_time_ms(ms)) == ms - ms % 1000
