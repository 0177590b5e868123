"""Fixtures of the streaming tests: an isolated pipeline (own topics, tables, keys,
ports) per test module, its API, and helpers to publish and to wait for the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest
from kafka import KafkaProducer

from infra.settings import REPO_ROOT, GridLakeSettings
from jobs.streaming import control
from lakehouse.contracts.messages import METER_READING
from ops.bench.isolation import free_port, isolated_run
from tests.jobs.lake_run import wait_consumed
from tests.jobs.streaming import meter_data


def make_isolated(
    stack: GridLakeSettings,
    partitions: dict[str, int] | None = None,
    lake: dict[str, int] | None = None,
    **flink: int,
) -> tuple[GridLakeSettings, dict[str, str]]:
    """Settings + env giving one test module its own topics, tables, keys and ports."""
    return isolated_run(stack, partitions, lake, **flink)


@pytest.fixture(scope="module")
def isolated(stack: GridLakeSettings) -> tuple[GridLakeSettings, dict[str, str]]:
    """An isolated pipeline's settings; the meter topic gets two partitions."""
    return make_isolated(stack, {METER_READING.topic: 2})


@pytest.fixture(scope="module")
def pipeline(isolated: tuple[GridLakeSettings, dict[str, str]]) -> Iterator[GridLakeSettings]:
    """The meter pipeline running on the isolated settings."""
    settings, env = isolated
    control.start(settings, "lakehouse", extra_env=env)
    try:
        control.wait_running(settings, "lakehouse", timeout=400)
        yield settings
    finally:
        control.stop(settings, "lakehouse", savepoint=False)


API_ADMIN_PASSWORD = "streaming-tests-admin"
"""Password of the API's bootstrap administrator in :func:`api_url` (the API needs a token)."""


@pytest.fixture(scope="module")
def api_url(isolated: tuple[GridLakeSettings, dict[str, str]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn API process on the isolated settings (own user database)."""
    settings, env = isolated
    port = free_port()
    db = tmp_path_factory.mktemp("api") / "api.db"
    api_env = {"GRIDLAKE_API__DATABASE_URL": f"sqlite:///{db}",
               "GRIDLAKE_API__ADMIN_PASSWORD": API_ADMIN_PASSWORD}
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO_ROOT, env={**os.environ, **env, **api_env},
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


def publish_to(
    settings: GridLakeSettings, messages: list[tuple[str, bytes | None, bytes]]
) -> None:
    """Publish (topic suffix, key, value) in order; fail if any is not delivered."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    futures = [
        producer.send(settings.kafka.topic_prefix + topic, key=key, value=value)
        for topic, key, value in messages
    ]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    producer.close()


def publish(settings: GridLakeSettings, messages: list[tuple[str, bytes]]) -> None:
    """Publish (key, value) pairs to the meter topic; fail if any is not delivered."""
    publish_to(settings, [(METER_READING.topic, k.encode(), v) for k, v in messages])


def wait_api_matches(api_url: str, expected: pd.DataFrame, timeout: float = 180) -> None:
    """Poll the API until every meter's 15-minute energies equal ``expected``."""
    start = datetime.fromtimestamp(meter_data.T0_MS / 1000, UTC)
    end = datetime.fromtimestamp((meter_data.T0_MS + 24 * 3600_000) / 1000, UTC)
    want = {d: g.sort_values("window_ms") for d, g in expected.groupby("device_id")}
    got: dict[str, list[dict]] = {}
    login = httpx.post(f"{api_url}/api/v1/auth/login", timeout=10,
                       json={"username": "admin", "password": API_ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def matches() -> bool:
        for device, exp in want.items():
            resp = httpx.get(
                f"{api_url}/api/v1/meters/{device}/energy/15min",
                params={"start": start.isoformat(), "end": end.isoformat()},
                headers=headers, timeout=5,
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
                # answers are rounded to the unit's decimals (kWh: 3), the lake is not
                if abs(row["energy_kwh"] - e.energy_kwh) > 0.5e-3 + 1e-9:
                    return False
        return True

    deadline = time.monotonic() + timeout
    while not matches():
        if time.monotonic() > deadline:
            pytest.fail(f"API never matched the oracle; last response: {got}")
        time.sleep(1)


def read_lake(settings: GridLakeSettings) -> dict[str, pd.DataFrame]:
    """The meter tables on HDFS, read back with Spark: ods, quarantine, dwd, ads.

    Waits first until the job's committed offsets reach the end of every topic: the serving
    copy can show a checkpoint's rows while the Hudi writers (tasks of their own) are still
    committing that checkpoint; the offsets move only once every table has.
    """
    wait_consumed(settings)
    from infra.spark import read_table, spark_scope
    from lakehouse.contracts.tables import (
        ADS_METER_ENERGY_15MIN,
        DWD_TABLES,
        ODS_METER_READING,
        QUARANTINE,
    )

    with spark_scope(settings, "test-streaming") as spark:
        return {
            "ods": read_table(spark, settings, ODS_METER_READING).toPandas(),
            "quarantine": read_table(spark, settings, QUARANTINE).toPandas(),
            "ads": read_table(spark, settings, ADS_METER_ENERGY_15MIN).toPandas(),
            "dwd": read_table(spark, settings, DWD_TABLES["meter_reading"]).toPandas(),
        }
