import numpy as np

from mock_devices import profiles


def _peaks(curve: np.ndarray) -> list[int]:
    hourly = curve.reshape(24, 60).mean(axis=1)
    return [h for h in range(24) if hourly[h] > hourly[h - 1] and hourly[h] >= hourly[(h + 1) % 24]]


def test_residential_weekday_has_morning_and_evening_peaks() -> None:
    peaks = _peaks(profiles.SHAPES[profiles.RESIDENTIAL, 0])
    assert any(6 <= h <= 9 for h in peaks) and any(17 <= h <= 21 for h in peaks)
    hourly = profiles.SHAPES[profiles.RESIDENTIAL, 0].reshape(24, 60).mean(axis=1)
    assert hourly[19] > hourly[8] > hourly[3]


def test_shapes_are_normalised_and_weekends_differ() -> None:
    for cls in range(3):
        assert abs(profiles.SHAPES[cls, 0].mean() - 1.0) < 0.01
    assert profiles.SHAPES[profiles.COMMERCIAL, 1].mean() < 0.7
    assert profiles.SHAPES[profiles.INDUSTRIAL, 1].mean() < profiles.SHAPES[2, 0].mean()


def test_seasons() -> None:
    winter, summer, spring = (profiles.seasonal_factor(d) for d in (15, 196, 105))
    assert winter[0] > spring[0] and summer[1] > spring[1]
