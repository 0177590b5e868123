"""The thin slice end to end: Kafka → Flink → Hudi on HDFS + Redis → HTTP API.

A fixed seeded set of readings (with a duplicate, an out-of-order and a late reading,
and three malformed messages) goes through the real components; the 15-minute energies
the API returns must equal an oracle computed in pandas, the Hudi tables must hold every
valid message once (ODS) and every malformed one with its reason (quarantine).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from infra.settings import REPO_ROOT, GridLakeSettings
from jobs.streaming import control
from lakehouse.contracts.messages import METER_READING
from tests.jobs.streaming import meter_data

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def isolated(stack: GridLakeSettings) -> Iterator[tuple[GridLakeSettings, dict[str, str]]]:
    """Settings + env overrides giving this test its own topics, tables, keys and ports."""
    run = uuid.uuid4().hex[:8]
    env = {
        "GRIDLAKE_KAFKA__TOPIC_PREFIX": f"t{run}.",
        "GRIDLAKE_HDFS__LAKE_ROOT": f"/gridlake/test/{run}",
        "GRIDLAKE_REDIS__KEY_PREFIX": f"t{run}:",
        "GRIDLAKE_FLINK__REST_PORT": str(_free_port()),
        "GRIDLAKE_FLINK__CHECKPOINT_INTERVAL_MS": "2000",
        "GRIDLAKE_HOME": str(stack.home),
    }
    settings = stack.model_copy(
        update={
            "kafka": stack.kafka.model_copy(update={"topic_prefix": f"t{run}."}),
            "hdfs": stack.hdfs.model_copy(update={"lake_root": f"/gridlake/test/{run}"}),
            "redis": stack.redis.model_copy(update={"key_prefix": f"t{run}:"}),
            "flink": stack.flink.model_copy(
                update={"rest_port": int(env["GRIDLAKE_FLINK__REST_PORT"])}
            ),
        }
    )
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    admin.create_topics([NewTopic(settings.kafka.topic_prefix + METER_READING.topic, 2, 1)])
    admin.close()
    yield settings, env


@pytest.fixture(scope="module")
def pipeline(isolated: tuple[GridLakeSettings, dict[str, str]]) -> Iterator[GridLakeSettings]:
    settings, env = isolated
    name = "meter_pipeline"
    control.start(settings, name, extra_env=env)
    try:
        control.wait_running(settings, name, timeout=240)
        yield settings
    finally:
        control.stop(settings, name)


@pytest.fixture(scope="module")
def api_url(isolated: tuple[GridLakeSettings, dict[str, str]]) -> Iterator[str]:
    settings, env = isolated
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT, env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v1/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("API did not become ready in 60 s")
    yield url
    proc.terminate()
    proc.wait(10)


def _publish(settings: GridLakeSettings, messages: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    topic = settings.kafka.topic_prefix + METER_READING.topic
    futures = [producer.send(topic, key=k.encode(), value=v) for k, v in messages]
    producer.flush()
    for f in futures:
        f.get(timeout=30)  # raises if any message was not delivered
    producer.close()


def test_slice_end_to_end(pipeline: GridLakeSettings, api_url: str) -> None:
    settings = pipeline
    data = meter_data.build()
    expected = meter_data.oracle_energy_15min(data.valid)
    _publish(settings, data.messages)

    start = datetime.fromtimestamp(meter_data.T0_MS / 1000, UTC)
    end = datetime.fromtimestamp((meter_data.T0_MS + 2 * 3600_000) / 1000, UTC)
    deadline = time.monotonic() + 180
    got: dict[str, list[dict]] = {}
    want = {
        d: g.sort_values("window_ms") for d, g in expected.groupby("device_id")
    }

    def matches() -> bool:
        for device, exp in want.items():
            resp = httpx.get(
                f"{api_url}/api/v1/meters/{device}/energy/15min",
                params={"start": start.isoformat(), "end": end.isoformat()},
                timeout=5,
            )
            assert resp.status_code == 200, resp.text
            rows = resp.json()["rows"]
            got[device] = rows
            if len(rows) != len(exp):
                return False
            for row, e in zip(rows, exp.itertuples(), strict=True):
                ws = int(datetime.fromisoformat(row["window_start"]).timestamp() * 1000)
                if (ws, row["readings"], row["baseline"]) != (e.window_ms, e.readings, e.baseline):
                    return False
                if abs(row["energy_kwh"] - e.energy_kwh) > 1e-9:
                    return False
        return True

    while not matches():
        if time.monotonic() > deadline:
            pytest.fail(f"API never matched the oracle; last response: {got}")
        time.sleep(1)

    # The lake itself: Hudi tables on HDFS read back with Spark.
    from jobs.batch.spark import read_table, spark_session
    from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN, ODS_METER_READING, QUARANTINE

    spark = spark_session(settings, "test-slice")
    try:
        ods = read_table(spark, settings, ODS_METER_READING).toPandas()
        quarantine = read_table(spark, settings, QUARANTINE).toPandas()
        ads = read_table(spark, settings, ADS_METER_ENERGY_15MIN).toPandas()
    finally:
        spark.stop()
    assert len(ods) == len(data.valid)  # the duplicate is kept in ODS (raw, as received)
    assert not ods.duplicated(["kafka_topic", "kafka_partition", "kafka_offset"]).any()
    assert sorted(quarantine["reason"]) == sorted(data.quarantine_reasons)
    assert quarantine["payload"].notna().all()
    assert len(ads) == len(expected)
    merged = ads.assign(
        window_ms=ads["window_start"].map(lambda t: int(t.timestamp() * 1000))
    ).merge(expected, on=["device_id", "window_ms"], suffixes=("", "_exp"))
    assert len(merged) == len(expected)
    assert (merged["energy_kwh"] - merged["energy_kwh_exp"]).abs().max() < 1e-9
    assert (merged["readings"] == merged["readings_exp"]).all()
