from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.app import create_app
from api.models import decode_row, row_model
from infra.settings import GridLakeSettings
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN


def _app() -> TestClient:
    settings = GridLakeSettings(_env_file=None)  # type: ignore[call-arg]
    # Nothing listens on port 1: the app must still start and answer what needs no data.
    settings.redis.url = "redis://127.0.0.1:1/0"
    return TestClient(create_app(settings))


def test_row_model_derived_from_contract() -> None:
    model = row_model(ADS_METER_ENERGY_15MIN)
    assert list(model.model_fields) == ADS_METER_ENERGY_15MIN.field_names
    assert "[kWh]" in (model.model_fields["energy_kwh"].description or "")


def test_decode_row_types() -> None:
    row = decode_row(
        ADS_METER_ENERGY_15MIN,
        {
            "device_id": "M1",
            "window_start": "1705276800000",
            "energy_kwh": "0.25",
            "readings": "15",
            "baseline": "first_reading",
            "dt": "2024-01-15",
        },
    )
    assert row["window_start"] == datetime(2024, 1, 15, tzinfo=UTC)
    assert row["energy_kwh"] == 0.25 and row["readings"] == 15
    assert row["window_end"] is None  # absent → None, not a crash


def test_reversed_range_is_422_naming_the_field() -> None:
    with _app() as client:
        r = client.get(
            "/api/v1/meters/M1/energy/15min",
            params={"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
        )
    assert r.status_code == 422
    assert "end" in r.text


def test_bad_timestamp_is_422() -> None:
    with _app() as client:
        r = client.get("/api/v1/meters/M1/energy/15min", params={"start": "yesterday", "end": "x"})
    assert r.status_code == 422
    assert "start" in r.text


def test_ready_reports_redis_down_without_500() -> None:
    with _app() as client:
        assert client.get("/api/v1/health").json()["status"] == "ok"
        r = client.get("/api/v1/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["redis"].startswith("down")
