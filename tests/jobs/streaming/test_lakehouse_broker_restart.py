"""Restarting the Kafka broker under a running lakehouse job loses and duplicates nothing."""

from __future__ import annotations

import pytest

from infra.settings import GridLakeSettings
from infra.stack.manager import Stack
from jobs.streaming import control
from tests.jobs.streaming import meter_data
from tests.jobs.streaming.conftest import publish, read_lake, wait_api_matches

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_broker_restart_loses_nothing(
    stack: GridLakeSettings,
    pipeline: GridLakeSettings,
    isolated: tuple[GridLakeSettings, dict[str, str]],
    api_url: str,
) -> None:
    settings, _ = isolated
    data = meter_data.build(seed=23, minutes=120)
    half = len(data.messages) // 2
    publish(settings, data.messages[:half])
    control.wait_running(settings, checkpoints=1)

    services = Stack(stack)
    assert services.down(only=["kafka"]) == ["kafka"]
    services.up()  # waits until the broker answers again
    publish(settings, data.messages[half:])

    expected = meter_data.oracle_energy_15min(data.valid)
    wait_api_matches(api_url, expected, timeout=300)
    lake = read_lake(settings)
    ods, quarantine, dwd, ads = lake["ods"], lake["quarantine"], lake["dwd"], lake["ads"]
    assert len(ods) == len(data.valid)
    assert not ods.duplicated(["kafka_topic", "kafka_partition", "kafka_offset"]).any()
    assert len(ods) + len(quarantine) == len(data.messages)
    distinct = {(r["device_id"], r["ts"]) for r in data.valid}
    assert len(dwd) == len(distinct)
    assert not dwd.duplicated(["device_id", "event_ts"]).any()
    assert len(ads) == len(expected)
    assert not ads.duplicated(["device_id", "window_start"]).any()
