"""Device management: every change is a registry event on Kafka, read back from the topic."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from api.app import create_app
from infra.serde import loads
from lakehouse.contracts.messages import DEVICE_REGISTRY
from tests.api.ads_data import World
from tests.api.conftest import Users, api_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _topic_records(world: World, device_id: str) -> list[dict[str, Any]]:
    """Every registry record of ``device_id`` on the run's topic, in offset order."""
    topic = world.settings.kafka.topic_prefix + DEVICE_REGISTRY.topic
    consumer = KafkaConsumer(bootstrap_servers=world.settings.kafka.bootstrap,
                             enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[tuple[int, int, dict[str, Any]]] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=500).values():
                for m in batch:
                    if m.key == device_id.encode():
                        out.append((m.partition, m.offset, loads(m.value)))
        return [r for _, _, r in sorted(out, key=lambda x: x[:2])]
    finally:
        consumer.close()


def _new_transformer(world: World, device_id: str) -> dict[str, Any]:
    feeder = next(d for d, r in world.registry.items()
                  if r["device_type"] == "feeder" and r["region_id"] == "R1")
    f = world.registry[feeder]
    return {
        "device_id": device_id, "device_type": "transformer", "model": "T-630",
        "manufacturer": "GridCo", "serial_number": "SN-1", "install_date": "2026-03-01",
        "region_id": "R1", "latitude": 31.2, "longitude": 121.4, "parent_id": feeder,
        "substation_id": f["substation_id"], "feeder_id": feeder,
        "rated_power_kva": 630.0, "rated_voltage_kv": 10.5,
    }


def test_create_update_move_retire_flow_through_kafka(
        live: TestClient, live_users: Users, world: World, tmp_path: Path) -> None:
    h = live_users.headers("operator", ["R1"])
    dev = f"API-TEST-{uuid.uuid4().hex[:6]}"
    body = _new_transformer(world, dev)
    r = live.post("/api/v1/devices", json=body, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["version"] == 1 and created["change_type"] == "create"
    assert created["status"] == "in_service"
    assert live.get(f"/api/v1/devices/{dev}", headers=h).json()["serial_number"] == "SN-1"
    assert live.post("/api/v1/devices", json=body, headers=h).status_code == 409

    r = live.patch(f"/api/v1/devices/{dev}", json={"rated_power_kva": 800.0}, headers=h)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["change_type"] == "update" and r.json()["rated_power_kva"] == 800.0
    other_feeder = next(d for d, rec in world.registry.items()
                        if rec["device_type"] == "feeder" and rec["region_id"] == "R2")
    move = {"parent_id": other_feeder, "feeder_id": other_feeder, "region_id": "R2",
            "substation_id": world.registry[other_feeder]["substation_id"]}
    # moving into R2 needs R2 in scope too
    assert live.patch(f"/api/v1/devices/{dev}", headers=h, json=move).status_code == 403
    both = live_users.headers("operator", ["R1", "R2"])
    r = live.patch(f"/api/v1/devices/{dev}", headers=both, json=move)
    assert r.json()["change_type"] == "move" and r.json()["version"] == 3
    assert live.get(f"/api/v1/devices/{dev}", headers=h).status_code == 403  # now in R2
    r = live.post(f"/api/v1/devices/{dev}/retire", headers=both)
    assert r.json()["status"] == "retired" and r.json()["version"] == 4
    assert live.post(f"/api/v1/devices/{dev}/retire", headers=both).status_code == 409
    assert live.patch(f"/api/v1/devices/{dev}", json={"model": "X"},
                      headers=both).status_code == 409

    # The topic holds the four versions, each a valid registry message (they reach DIM).
    records = _topic_records(world, dev)
    assert [(x["version"], x["change_type"]) for x in records] == [
        (1, "create"), (2, "update"), (3, "move"), (4, "retire")]
    assert all(DEVICE_REGISTRY.validate(x) is None for x in records)
    assert records[2]["feeder_id"] == other_feeder and records[2]["region_id"] == "R2"
    assert records[3]["status"] == "retired"
    assert records[0]["ts"] <= records[3]["ts"] <= int(time.time() * 1000)

    # Another worker, starting from the topic alone, knows the device's latest version.
    cfg = api_settings(world.settings, tmp_path / "worker2")
    with TestClient(create_app(cfg)) as other:
        assert other.app.state.ctx.catalog.wait_loaded(30)  # type: ignore[attr-defined]
        got = other.get(f"/api/v1/devices/{dev}", headers=Users(other).admin).json()
        assert got["version"] == 4 and got["status"] == "retired"

    entries = live.get("/api/v1/audit", headers=live_users.admin).json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries if e["target"] == dev] == [
        ("operator-R1-R2", "device_retire"), ("operator-R1-R2", "device_update"),
        ("operator-R1", "device_update"), ("operator-R1", "device_create")]


def test_bad_devices_are_422_naming_the_field(live: TestClient, live_users: Users,
                                              world: World) -> None:
    h = live_users.admin
    good = _new_transformer(world, f"API-TEST-{uuid.uuid4().hex[:6]}")
    for change, field in [
        ({"latitude": 123.0}, "latitude"),
        ({"parent_id": "NO-SUCH-FEEDER"}, "parent_id"),
        ({"device_type": "toaster"}, "device_type"),
        ({"install_date": "yesterday"}, "install_date"),
        ({"region_id": "R2"}, "region_id"),  # the parent feeder is in R1
        ({"device_id": "bad id!"}, "device_id"),
        ({"rated_power_kva": -5.0}, "rated_power_kva"),
        ({"model": None}, "model"),
    ]:
        r = live.post("/api/v1/devices", json={**good, **change}, headers=h)
        assert r.status_code == 422, (change, r.text)
        assert field in r.text, (change, r.text)
    assert _topic_records(world, good["device_id"]) == []  # nothing was published
    assert live.get("/api/v1/devices/NOPE", headers=h).status_code == 404
    r = live.patch(f"/api/v1/devices/{next(iter(world.registry))}", json={}, headers=h)
    assert r.status_code == 422


def test_device_listing_filters_and_csv(live: TestClient, live_users: Users,
                                        world: World) -> None:
    h = live_users.headers("viewer")
    body = live.get("/api/v1/devices", headers=h,
                    params={"device_type": "meter", "sort": "-device_id", "limit": 3}).json()
    meters = sorted((d for d, r in world.registry.items() if r["device_type"] == "meter"),
                    reverse=True)
    assert body["total"] == len(meters) and [d["device_id"] for d in body["rows"]] == meters[:3]
    r = live.get("/api/v1/devices", headers=h, params={"region_id": "R2", "format": "csv"})
    lines = r.text.splitlines()
    assert lines[0].startswith("device_id,ts,version")
    assert {x.split(",")[0] for x in lines[1:] if x.split(",")[0] in world.registry} == {
        d for d, rec in world.registry.items() if rec["region_id"] == "R2"}
