"""Backfill jobs through the API: validation, launch, progress, log, cancel."""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from tests.api.ads_data import World
from tests.api.conftest import Users

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_invalid_backfills_are_422_naming_the_field(live: TestClient,
                                                    live_users: Users) -> None:
    h = live_users.headers("operator")
    for body, field in [
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"start": "2026-03-01", "end": "2026-03-02", "layer": "gold"}, "layer"),
        ({"start": "2026-03-01", "end": "2026-03-02", "device_types": ["toaster"]},
         "device_types"),
        ({"start": "2999-01-01", "end": "2999-01-02"}, "start"),
        ({"start": "March", "end": "2026-03-02"}, "start"),
    ]:
        r = live.post("/api/v1/jobs/backfill", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text, (body, r.text)
    assert live.get("/api/v1/jobs", headers=h).json()["total"] == 0  # nothing was created


def test_launch_follow_and_cancel(live: TestClient, live_users: Users, world: World,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The job process reads its settings from the environment: the run's lake and home,
    # a range without data, so whatever it manages to do touches nothing shared.
    ctx = live.app.state.ctx  # type: ignore[attr-defined]
    for k, v in world.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GRIDLAKE_HOME", str(ctx.settings.home))
    h = live_users.headers("operator", ["R1"])
    r = live.post("/api/v1/jobs/backfill", headers=h, json={
        "start": "2020-01-01", "end": "2020-01-02", "layer": "ads", "region": "R1"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "running" and job["request"]["region"] == "R1"
    assert job["request"]["from_layer"] == "ads"
    listed = live.get("/api/v1/jobs", headers=h).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    # someone scoped to another region does not see it
    other = live_users.headers("analyst", ["R2"])
    assert live.get("/api/v1/jobs", headers=other).json()["total"] == 0
    assert live.get(f"/api/v1/jobs/{job['id']}", headers=other).status_code == 403
    state = live.get(f"/api/v1/jobs/{job['id']}", headers=h).json()
    assert state["state"] in ("running", "failed", "succeeded")
    pid = ctx.jobs.get(job["id"]).pid
    r = live.post(f"/api/v1/jobs/{job['id']}/cancel", headers=h)
    assert r.status_code == 200
    final = r.json()["state"]
    assert final in ("cancelled", "failed", "succeeded")
    if final == "cancelled":
        deadline = time.monotonic() + 20
        while pid and _alive(pid):  # its whole process group is stopped
            assert time.monotonic() < deadline, "job process still running after cancel"
            time.sleep(0.2)
    log = live.get(f"/api/v1/jobs/{job['id']}/log", headers=h).json()
    assert log["id"] == job["id"] and isinstance(log["lines"], list)
    entries = live.get("/api/v1/audit", headers=live_users.admin,
                       params={"actor": "operator-R1"}).json()["entries"]
    actions = [e["action"] for e in entries if e["target"] == job["id"]]
    assert actions == ["job_cancel", "job_launch"]
    assert live.get("/api/v1/jobs/ba-0123456789", headers=h).status_code == 404


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
