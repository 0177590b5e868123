"""The alarm routes: listing, reading, acknowledging and closing, by role and region."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.alarm_store import AlarmEvent, AlarmStore
from tests.api.conftest import Users


def _seed(client: TestClient) -> dict[str, int]:
    store: AlarmStore = client.app.state.alarms  # type: ignore[attr-defined]
    ids = {}
    for entity, region in (("TX-1", "R1"), ("TX-2", "R2"), ("TX-3", None)):
        change = store.record(AlarmEvent(
            source="threshold", kind="transformer_overload", entity_type="transformer",
            entity_id=entity, region_id=region, severity="major", auto_close=True,
            detail={"value": 130.0, "threshold": 100.0}))
        assert change is not None
        ids[entity] = change.alarm.id
    return ids


def test_lifecycle_through_the_api(client: TestClient, users: Users) -> None:
    ids = _seed(client)
    op = users.headers("operator")
    r = client.get("/api/v1/alarms", headers=op, params={"state": "open"})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 3
    a = ids["TX-1"]
    r = client.post(f"/api/v1/alarms/{a}/acknowledge", headers=op, json={"note": "on it"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["state"], body["acknowledged_by"], body["ack_note"]) == (
        "acknowledged", "operator-all", "on it")
    r = client.post(f"/api/v1/alarms/{a}/acknowledge", headers=op)
    assert r.status_code == 409 and "is acknowledged" in r.json()["detail"]
    r = client.post(f"/api/v1/alarms/{a}/close", headers=users.admin,
                    json={"note": "fan replaced", "reason": "resolved"})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    assert r.json()["closed_by"] == "admin"
    r = client.post(f"/api/v1/alarms/{a}/close", headers=op)
    assert r.status_code == 409 and "is closed" in r.json()["detail"]
    assert client.get(f"/api/v1/alarms/{a}", headers=op).json()["close_note"] == "fan replaced"
    r = client.get("/api/v1/alarms", headers=op, params={"state": "closed"})
    assert [x["id"] for x in r.json()["alarms"]] == [a]
    # audited
    audit = client.get("/api/v1/audit", headers=users.admin).json()
    actions = {(e["action"], e["target"]) for e in audit["entries"]}
    assert {("alarm_acknowledged", str(a)), ("alarm_closed", str(a))} <= actions
    # bad input: clear errors, never a 500
    assert client.post("/api/v1/alarms/999/close", headers=op).status_code == 404
    assert client.post("/api/v1/alarms/0/close", headers=op).status_code == 422
    assert client.post(f"/api/v1/alarms/{ids['TX-2']}/close", headers=op,
                       json={"reason": "because"}).status_code == 422
    assert client.get("/api/v1/alarms", headers=op,
                      params={"state": "gone"}).status_code == 422
    assert client.get("/api/v1/alarms", headers=op, params={
        "start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}).status_code == 422


def test_viewers_read_but_do_not_act(client: TestClient, users: Users) -> None:
    ids = _seed(client)
    viewer = users.headers("viewer")
    assert client.get("/api/v1/alarms", headers=viewer).json()["total"] == 3
    for action in ("acknowledge", "close"):
        r = client.post(f"/api/v1/alarms/{ids['TX-1']}/{action}", headers=viewer)
        assert r.status_code == 403 and "alarms:write" in r.json()["detail"]
    analyst = users.headers("analyst")
    assert client.post(f"/api/v1/alarms/{ids['TX-1']}/close",
                       headers=analyst).status_code == 403
    assert client.get("/api/v1/alarms").status_code == 401


def test_region_scope(client: TestClient, users: Users) -> None:
    ids = _seed(client)
    r1 = users.headers("operator", ["R1"])
    listed = client.get("/api/v1/alarms", headers=r1).json()
    assert [a["entity_id"] for a in listed["alarms"]] == ["TX-1"]  # not R2, not unknown
    assert listed["total"] == 1
    for entity in ("TX-2", "TX-3"):
        a = ids[entity]
        assert client.get(f"/api/v1/alarms/{a}", headers=r1).status_code == 404
        assert client.post(f"/api/v1/alarms/{a}/acknowledge", headers=r1).status_code == 404
        assert client.post(f"/api/v1/alarms/{a}/close", headers=r1).status_code == 404
    # the other region's alarm was not changed by the refused calls
    assert client.get(f"/api/v1/alarms/{ids['TX-2']}",
                      headers=users.admin).json()["state"] == "open"
    r = client.get("/api/v1/alarms", headers=r1, params={"region": "R2"})
    assert r.status_code == 403 and "R2" in r.json()["detail"]
    r = client.post(f"/api/v1/alarms/{ids['TX-1']}/acknowledge", headers=r1)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
