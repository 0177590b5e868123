"""The thin slice end to end, across a stop with a savepoint and a kill.

Kafka → Flink → Hudi on HDFS + Redis → HTTP API: a seeded set of readings (with a
duplicate, an out-of-order and a late reading, and three malformed messages), published
in three parts around a graceful stop and a SIGKILL. The 15-minute energies the API and
the lake hold must equal an oracle computed in pandas; the Hudi tables must hold every
valid message once (ODS, the duplicate kept as received) and every malformed one with its
reason and payload (quarantine). (One job for both stories: each job start plans the whole
lakehouse graph, minutes of the suite.)
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from infra.settings import GridLakeSettings
from jobs.streaming import control
from tests.jobs.streaming import meter_data
from tests.jobs.streaming.conftest import publish, read_lake, wait_api_matches

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_stop_resume_and_kill_lose_nothing(
    pipeline: GridLakeSettings, isolated: tuple[GridLakeSettings, dict[str, str]], api_url: str
) -> None:
    settings, env = isolated
    data = meter_data.build(seed=11, minutes=150)
    n = len(data.messages)
    first, second, third = (
        data.messages[: n // 3], data.messages[n // 3 : 2 * n // 3], data.messages[2 * n // 3 :]
    )

    publish(settings, first)
    control.wait_running(settings, checkpoints=1)
    # 1. Graceful stop with a savepoint; data published while stopped; resume. (Restarts wait
    # as long as the first start: each plans the whole job again, 2-7 min on a busy 2 cores.)
    location = control.stop_with_savepoint(settings)
    assert location and os.path.isdir(location.removeprefix("file:"))
    control.stop(settings, savepoint=False)  # the driver exits; clean up the group
    publish(settings, second)
    control.start(settings, extra_env=env)
    control.wait_running(settings, timeout=420, checkpoints=1)
    # 2. A crash: SIGKILL the job's process group mid-stream, restart without savepoint.
    publish(settings, third)
    pid = control.status(settings).pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while control.status(settings).running and time.monotonic() < deadline:
        time.sleep(0.1)  # SIGKILL is asynchronous: wait until the old process is gone
    assert control.latest_checkpoint(settings) is not None
    control.start(settings, extra_env=env)  # recovers from the newest retained checkpoint
    control.wait_running(settings, timeout=420)

    expected = meter_data.oracle_energy_15min(data.valid)
    wait_api_matches(api_url, expected, timeout=240)

    lake = read_lake(settings)
    ods, quarantine, ads = lake["ods"], lake["quarantine"], lake["ads"]
    # Every Kafka record exactly once: valid ones in ODS, malformed ones in quarantine.
    assert len(ods) == len(data.valid)
    assert not ods.duplicated(["kafka_topic", "kafka_partition", "kafka_offset"]).any()
    assert sorted(quarantine["reason"]) == sorted(data.quarantine_reasons)
    assert len(ods) + len(quarantine) == len(data.messages)
    assert quarantine["payload"].notna().all()
    assert len(ads) == len(expected)
    assert not ads.duplicated(["device_id", "window_start"]).any()
    merged = ads.assign(
        window_ms=ads["window_start"].map(lambda t: int(t.timestamp() * 1000))
    ).merge(expected, on=["device_id", "window_ms"], suffixes=("", "_exp"))
    assert len(merged) == len(expected)
    assert (merged["energy_kwh"] - merged["energy_kwh_exp"]).abs().max() < 1e-9
    assert (merged["readings"] == merged["readings_exp"]).all()
