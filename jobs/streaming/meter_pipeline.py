"""Streaming job: meter readings from Kafka → ODS / quarantine → 15-minute energy (ADS).

Shape (as every streaming job): :func:`source`, :func:`transform`, :func:`sink`,
:func:`main`. All transformation logic is SQL from :mod:`jobs.transforms.meter_energy`.

Sinks: ``ods_meter_reading``, ``ods_quarantine`` and ``ads_meter_energy_15min`` as
Hudi tables on HDFS (system of record) plus the ADS serving copy in Redis. Every sink
commits once per checkpoint and upserts by record key, so a restart that re-reads
Kafka from the last checkpoint rewrites the same keys instead of duplicating rows.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from infra.logs import configure_logging
from infra.settings import GridLakeSettings, load_settings
from jobs.common.ddl import hudi_sink_ddl, kafka_raw_source_ddl, redis_sink_ddl
from jobs.streaming.runtime import create_table_env
from jobs.transforms import meter_energy
from lakehouse.contracts.messages import METER_READING
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN, ODS_METER_READING, QUARANTINE

log = logging.getLogger(__name__)

JOB_NAME = "gridlake-meter-pipeline"
SOURCE = "src_meter_reading"
CHECKED = "checked_meter_reading"
REGISTERS = "meter_register_15min"
ENERGY = "meter_energy_15min"


def source(t_env: Any, settings: GridLakeSettings) -> None:
    """Register the raw Kafka source of meter readings."""
    # The group id carries the topic prefix so that isolated pipelines (tests, tenants)
    # never share committed offsets.
    group_id = f"{settings.kafka.topic_prefix}meter-pipeline"
    t_env.execute_sql(kafka_raw_source_ddl(settings, METER_READING, SOURCE, group_id))


def transform(t_env: Any) -> None:
    """Register the SQL views: validated readings, interval registers, 15-minute energy."""
    views = {
        CHECKED: meter_energy.checked_sql(METER_READING, SOURCE),
        REGISTERS: meter_energy.register_15min_sql(CHECKED),
        ENERGY: meter_energy.energy_15min_sql(REGISTERS),
    }
    for name, query in views.items():
        t_env.execute_sql(f"CREATE TEMPORARY VIEW `{name}` AS\n{query}")


def sink(t_env: Any, settings: GridLakeSettings) -> Any:
    """Register the sinks and return the statement set that feeds them all in one job."""
    for table in (ODS_METER_READING, QUARANTINE, ADS_METER_ENERGY_15MIN):
        t_env.execute_sql(hudi_sink_ddl(settings, table))
    t_env.execute_sql(redis_sink_ddl(settings, ADS_METER_ENERGY_15MIN, "window_start"))
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        f"INSERT INTO `{ODS_METER_READING.name}` "
        + meter_energy.ods_sql(METER_READING, CHECKED)
    )
    statements.add_insert_sql(
        f"INSERT INTO `{QUARANTINE.name}` " + meter_energy.quarantine_sql(CHECKED)
    )
    statements.add_insert_sql(
        f"INSERT INTO `{ADS_METER_ENERGY_15MIN.name}` SELECT * FROM `{ENERGY}`"
    )
    statements.add_insert_sql(
        f"INSERT INTO `{ADS_METER_ENERGY_15MIN.name}_serving` SELECT * FROM `{ENERGY}`"
    )
    return statements


def main(argv: list[str] | None = None) -> None:
    """Build and run the job; blocks while it runs (``--detach`` returns after submit)."""
    parser = argparse.ArgumentParser(prog="meter_pipeline", description=__doc__)
    parser.add_argument("--explain", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    configure_logging()
    settings = load_settings()
    t_env = create_table_env(settings, JOB_NAME)
    source(t_env, settings)
    transform(t_env)
    statements = sink(t_env, settings)
    if args.explain:
        log.info("plan:\n%s", statements.explain())
        return
    result = statements.execute()
    job_client = result.get_job_client()
    job_id = str(job_client.get_job_id()) if job_client is not None else "unknown"
    log.info("submitted %s as job %s", JOB_NAME, job_id)
    (settings.run / "meter_pipeline.jobid").parent.mkdir(parents=True, exist_ok=True)
    (settings.run / "meter_pipeline.jobid").write_text(job_id)
    result.wait()


if __name__ == "__main__":
    main()
