import json

import pytest

from infra.settings import GridLakeSettings
from jobs.common.ddl import hudi_sink_ddl, kafka_raw_source_ddl, redis_sink_ddl, with_clause
from lakehouse.contracts.messages import METER_READING
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN, ODS_METER_READING


def _settings(**kw: object) -> GridLakeSettings:
    return GridLakeSettings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_hudi_sink_ddl_from_contract() -> None:
    ddl = hudi_sink_ddl(_settings(), ODS_METER_READING)
    for f in ODS_METER_READING.fields:
        assert f"`{f.name}`" in ddl
    assert "PRIMARY KEY (`kafka_topic`, `kafka_partition`, `kafka_offset`) NOT ENFORCED" in ddl
    assert "'record.key.fields' = 'kafka_topic,kafka_partition,kafka_offset'" in ddl
    assert "'path' = 'hdfs://127.0.0.1:8020/gridlake/lake/ods/ods_meter_reading'" in ddl
    assert "`ts` TIMESTAMP_LTZ(3)" in ddl


def test_addresses_come_from_settings() -> None:
    s = _settings()
    s.kafka.bootstrap = "k1:1,k2:2"
    s.kafka.topic_prefix = "acme."
    s.hdfs.namenode_host = "nn"
    s.redis.url = "redis://cache:7000/2"
    assert "'properties.bootstrap.servers' = 'k1:1,k2:2'" in kafka_raw_source_ddl(
        s, METER_READING, "src", "g"
    )
    assert "'topic' = 'acme.meter.readings'" in kafka_raw_source_ddl(s, METER_READING, "src", "g")
    assert "hdfs://nn:8020/" in hudi_sink_ddl(s, ADS_METER_ENERGY_15MIN)
    redis = redis_sink_ddl(s, ADS_METER_ENERGY_15MIN, "window_start")
    assert "'url' = 'redis://cache:7000/2'" in redis


def test_derived_tables_are_stamped_by_the_sink_raw_and_loaded_rows_are_not() -> None:
    s = _settings()
    stamp = "'stamp.field' = 'updated_ts'"
    assert stamp in hudi_sink_ddl(s, ADS_METER_ENERGY_15MIN)
    assert stamp in redis_sink_ddl(s, ADS_METER_ENERGY_15MIN, "window_start")
    # ODS rows have no updated_ts; a load that brings its own keeps it
    assert "stamp.field" not in hudi_sink_ddl(s, ODS_METER_READING)
    assert "stamp.field" not in hudi_sink_ddl(s, ADS_METER_ENERGY_15MIN, stamp=False)
    assert "stamp.field" not in redis_sink_ddl(s, ADS_METER_ENERGY_15MIN, "window_start",
                                               stamp=False)
    # the serving copy is ordered like the lake, stamped or not (infra/serving_store.py)
    for stamped in (True, False):
        assert "'ordering.field' = 'updated_ts'" in redis_sink_ddl(
            s, ADS_METER_ENERGY_15MIN, "window_start", stamp=stamped)


def test_with_clause_escapes_quotes() -> None:
    assert "'it''s'" in with_clause({"k": "it's"})


# The SQL validation must classify exactly like MessageContract.validate: it runs in a
# real (local, batch) Flink, no services needed.
CASES = {
    "malformed": '{"device_id": ',
    "array": "[1,2]",
    "empty": "",
    "str_ts": "STR_TS",
    "float_ts": "FLOAT_TS",
    "num_device": "NUM_DEVICE",
    "missing_energy": "MISSING_ENERGY",
    "null_energy": "NULL_ENERGY",
    "exp_energy": "EXP_ENERGY",
    "good": "GOOD",
    "nan_energy": "NAN_ENERGY",
    "trailing": "TRAILING",
    "bool_seq": "BOOL_SEQ",
    "empty_device": "EMPTY_DEVICE",
    "blank": "   ",
    "number": "42",
}


@pytest.mark.slow
def test_sql_validation_matches_python() -> None:
    import random

    from pyflink.table import EnvironmentSettings, TableEnvironment

    from jobs.common.ddl import parsed_value_sql, validation_reason_sql
    from tests.jobs.streaming.meter_data import T0_MS, reading

    good = reading("MTR-1", T0_MS, 12.5, 1, random.Random(1))
    subs = {
        "STR_TS": json.dumps({**good, "ts": str(T0_MS)}),
        "FLOAT_TS": json.dumps({**good, "ts": 1.5}),
        "NUM_DEVICE": json.dumps({**good, "device_id": 7}),
        "MISSING_ENERGY": json.dumps({k: v for k, v in good.items() if k != "energy_import_kwh"}),
        "NULL_ENERGY": json.dumps({**good, "energy_import_kwh": None}),
        "EXP_ENERGY": json.dumps({**good, "energy_import_kwh": 1.25e2}),
        "GOOD": json.dumps(good),
        "NAN_ENERGY": json.dumps({**good, "energy_import_kwh": float("nan")}),
        "TRAILING": json.dumps(good) + " x",
        "BOOL_SEQ": json.dumps({**good, "seq": True}),
        "EMPTY_DEVICE": json.dumps({**good, "device_id": ""}),
    }
    payloads = {k: subs.get(v, v) for k, v in CASES.items()}
    from infra.settings import load_settings
    from jobs.common.ddl import reason_function_ddl
    from jobs.common.flink_env import flink_classpath

    connector = flink_classpath(load_settings().jars)[0]
    t = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t.get_config().set("pipeline.jars", connector.as_uri())
    t.execute_sql(reason_function_ddl())
    values = ", ".join(f"('{k}', '{v.replace(chr(39), chr(39) * 2)}')" for k, v in payloads.items())
    t.execute_sql(
        f"CREATE TEMPORARY VIEW src AS SELECT * FROM (VALUES {values}) AS v(name, payload)"
    )
    energy = parsed_value_sql(METER_READING.field("energy_import_kwh"))
    rows = t.execute_sql(
        f"SELECT name, {validation_reason_sql(METER_READING)}, {energy} FROM src"
    ).collect()
    got = {r[0]: (r[1], r[2]) for r in rows}
    for name, payload in payloads.items():
        try:
            expected = METER_READING.validate(json.loads(payload))
        except json.JSONDecodeError:
            expected = "malformed_json" if payload.strip() else "empty_payload"
        assert got[name][0] == expected, name
    assert got["good"][1] == pytest.approx(12.5)
    assert got["exp_energy"][1] == pytest.approx(125.0)
