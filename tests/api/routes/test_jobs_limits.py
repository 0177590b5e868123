"""Backfills through the API without the stack: bounds, known regions and feeders, and the
limit on jobs at once. No job process is started (JobStore.launch is replaced)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobs.batch.tracking import JobState
from tests.api.conftest import Users

TODAY = datetime.now(UTC).date()
DAY = {"start": str(TODAY - timedelta(days=2)), "end": str(TODAY - timedelta(days=1))}


def _device(device_id: str, device_type: str, region: str, parent: str) -> dict[str, Any]:
    return {"device_id": device_id, "ts": 1_772_323_200_000, "version": 1,
            "change_type": "create", "device_type": device_type, "model": "X",
            "manufacturer": "M", "serial_number": "1", "status": "in_service",
            "install_date": "2026-03-01", "region_id": region, "latitude": 31.0,
            "longitude": 121.0, "parent_id": parent}


@pytest.fixture
def launched(client: TestClient) -> list[JobState]:
    """Jobs 'launched' (left queued: no process) by the app of :func:`client`."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    out: list[JobState] = []

    def launch(job: JobState) -> JobState:
        out.append(job)
        return job

    ctx.jobs.launch = launch
    return out


def _load_catalog(client: TestClient) -> None:
    catalog = client.app.state.ctx.catalog  # type: ignore[attr-defined]
    for rec in (_device("SUB-1", "substation", "R1", "R1"),
                _device("F-1", "feeder", "R1", "SUB-1"),
                _device("SUB-2", "substation", "R2", "R2"),
                _device("F-2", "feeder", "R2", "SUB-2")):
        assert catalog.apply(rec)
    catalog._loaded.set()  # the registry topic was "read to its end"


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"start": "0001-01-01", "end": "0001-01-02"}, "start", "before 1970-01-02"),
    ({"start": "2025-01-01", "end": "2025-12-31"}, "end", "longer than 92 days"),
    ({**DAY, "region": "R9"}, "region", "unknown region 'R9'"),
    ({**DAY, "feeder": "F-9"}, "feeder", "unknown feeder 'F-9'"),
    ({**DAY, "region": "R1", "feeder": "F-2"}, "feeder", "in region 'R2', not 'R1'"),
])
def test_bad_backfills_are_422_naming_the_field(client: TestClient, users: Users,
                                                launched: list[JobState], body: dict[str, str],
                                                field: str, words: str) -> None:
    _load_catalog(client)
    r = client.post("/api/v1/jobs/backfill", json=body, headers=users.headers("operator"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}: ") and words in r.json()["detail"]
    assert launched == []


def test_region_check_without_the_catalog_is_503(client: TestClient, users: Users,
                                                 launched: list[JobState]) -> None:
    r = client.post("/api/v1/jobs/backfill", json={**DAY, "region": "R1"},
                    headers=users.headers("operator"))
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert launched == []


def test_jobs_at_once_are_limited(client: TestClient, users: Users,
                                  launched: list[JobState]) -> None:
    _load_catalog(client)
    h = users.headers("operator")
    r = client.post("/api/v1/jobs/backfill", json={**DAY, "region": "R1", "feeder": "F-1"},
                    headers=h)
    assert r.status_code == 202, r.text
    assert r.json()["request"]["region"] == "R1"
    # the first is still queued or running: api.max_active_jobs (1) is reached
    r = client.post("/api/v1/jobs/backfill", json=DAY, headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "at most 1" in r.json()["detail"]
    assert len(launched) == 1
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    job = ctx.jobs.get(launched[0].id)
    job.state = "succeeded"
    ctx.jobs.save(job)
    assert client.post("/api/v1/jobs/backfill", json=DAY, headers=h).status_code == 202
