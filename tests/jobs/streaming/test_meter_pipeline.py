"""The thin slice end to end: Kafka → Flink → Hudi on HDFS + Redis → HTTP API.

A fixed seeded set of readings (with a duplicate, an out-of-order and a late reading,
and three malformed messages) goes through the real components; the 15-minute energies
the API returns must equal an oracle computed in pandas, the Hudi tables must hold every
valid message once (ODS) and every malformed one with its reason (quarantine).
"""

from __future__ import annotations

import pytest

from infra.settings import GridLakeSettings
from tests.jobs.streaming import meter_data
from tests.jobs.streaming.conftest import publish, read_lake, wait_api_matches

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_slice_end_to_end(pipeline: GridLakeSettings, api_url: str) -> None:
    settings = pipeline
    data = meter_data.build()
    expected = meter_data.oracle_energy_15min(data.valid)
    publish(settings, data.messages)
    wait_api_matches(api_url, expected)

    # The lake itself: Hudi tables on HDFS read back with Spark.
    lake = read_lake(settings)
    ods, quarantine, ads = lake["ods"], lake["quarantine"], lake["ads"]
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
