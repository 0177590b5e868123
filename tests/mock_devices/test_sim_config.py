import pytest

from lakehouse.time import format_time_ms
from mock_devices.config import (
    ConfigError,
    FleetConfig,
    parse_duration_ms,
    parse_time_ms,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90", 90_000),
        ("90s", 90_000),
        ("15m", 900_000),
        ("2h", 7_200_000),
        ("1.5d", 129_600_000),
        ("250ms", 250),
        ("1w", 604_800_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "-3h", "0s", "abc", "3 parsecs"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration_ms(text)


def test_times_are_utc() -> None:
    assert parse_time_ms("1970-01-01") == 0
    assert parse_time_ms("2024-06-01T12:00") == parse_time_ms("2024-06-01T14:00+02:00")
    assert format_time_ms(parse_time_ms("2024-06-01T12:00Z")) == "2024-06-01T12:00:00Z"
    with pytest.raises(ConfigError, match="invalid date"):
        parse_time_ms("yesterday")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"meters": 0}, "meters"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"meter_interval_s": 120}, "meter interval"),
        ({"ess_interval_s": 7}, "ESS"),
        ({"dga_interval_s": 90}, "DGA"),
        ({"registry_changes_per_day": -1}, "registry"),
        ({"devices": frozenset({"toaster"})}, "toaster"),
        ({"latitude": 91.0}, "latitude"),
    ],
)
def test_fleet_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FleetConfig(**kwargs)


def test_scale_multiplies_meters() -> None:
    assert FleetConfig(meters=100, scale=2.5).total_meters == 250
