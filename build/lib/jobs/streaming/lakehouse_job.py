"""Streaming job ``lakehouse``: every topic → ODS → DIM → DWD → DWS → ADS, in one job.

Shape (as every streaming job): :func:`source`, :func:`transform`, :func:`sink`,
:func:`main`. All logic is SQL from :mod:`jobs.transforms`.

One Flink job computes all five layers from Kafka in memory and writes each layer as a
side output, so an indicator is as fresh as one checkpoint interval, not one per layer.
Every Hudi sink upserts by record key and commits once per checkpoint; the ADS serving
copy in Redis is written by the same job, idempotently (hash per key). A restart
re-reads Kafka from the last checkpoint and rewrites the same keys.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from infra.logs import configure_logging
from infra.settings import GridLakeSettings, load_settings
from jobs.common.ddl import (
    hudi_sink_ddl,
    kafka_raw_source_ddl,
    quote,
    reason_function_ddl,
    redis_sink_ddl,
)
from jobs.streaming.runtime import NDU_CHECK, create_table_env
from jobs.transforms import ingest, pipeline
from jobs.transforms.dialect import FLINK
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.tables import (
    ODS_TABLES,
    QUARANTINE,
    SERVING_SCORE,
)

log = logging.getLogger(__name__)

JOB_NAME = "gridlake-lakehouse"
GROUP_SUFFIX = "lakehouse"


def _src(name: str) -> str:
    return f"src_{name}"


def source(t_env: Any, settings: GridLakeSettings) -> None:
    """Register one raw Kafka source per topic (event time + watermark from the payload)."""
    # The group id carries the topic prefix so that isolated pipelines (tests, tenants)
    # never share committed offsets.
    group_id = f"{settings.kafka.topic_prefix}{GROUP_SUFFIX}"
    t_env.execute_sql(reason_function_ddl())
    for m in MESSAGES:
        t_env.execute_sql(kafka_raw_source_ddl(settings, m, _src(m.name), group_id))


def _views(settings: GridLakeSettings) -> dict[str, str]:
    """Every view of the job, name → query, in dependency order."""
    f = settings.flink
    views = {
        pipeline.checked(m.name): ingest.checked_sql(
            m, _src(m.name), f.watermark_delay_ms, f.allowed_lateness_ms
        )
        for m in MESSAGES
    }
    views.update(pipeline.views(FLINK))
    return views


def transform(t_env: Any, settings: GridLakeSettings) -> None:
    """Register every layer's SQL as temporary views."""
    for name, query in _views(settings).items():
        t_env.execute_sql(f"CREATE TEMPORARY VIEW {quote(name)} AS\n{query}")


def outputs() -> list[tuple[TableContract, str]]:
    """Every sink table with the query feeding it (columns in the table's order)."""
    out: list[tuple[TableContract, str]] = [
        (ODS_TABLES[m.name], ingest.ods_sql(m, pipeline.checked(m.name))) for m in MESSAGES
    ]
    out.append((QUARANTINE,
                ingest.quarantine_sql([pipeline.checked(m.name) for m in MESSAGES])))
    out += [(o.table, o.query) for o in pipeline.outputs(FLINK)]
    return out


def _ordered(table: TableContract, query: str) -> str:
    cols = ", ".join(quote(c) for c in table.field_names)
    return f"SELECT {cols} FROM (\n{query}\n)"


def sink(t_env: Any, settings: GridLakeSettings) -> Any:
    """Register the Hudi sinks (+ Redis serving copies of ADS) and the statement set."""
    statements = t_env.create_statement_set()
    for table, query in outputs():
        t_env.execute_sql(hudi_sink_ddl(settings, table))
        t_env.execute_sql(f"CREATE TEMPORARY VIEW {quote('out_' + table.name)} AS\n"
                          + _ordered(table, query))
        statements.add_insert_sql(
            f"INSERT INTO {quote(table.name)} SELECT * FROM {quote('out_' + table.name)}"
        )
        if table.name in SERVING_SCORE:
            t_env.execute_sql(redis_sink_ddl(settings, table, SERVING_SCORE[table.name]))
            statements.add_insert_sql(
                f"INSERT INTO {quote(table.name + '_serving')} "
                f"SELECT * FROM {quote('out_' + table.name)}"
            )
    return statements


def main(argv: list[str] | None = None) -> None:
    """Build and run the job; blocks while it runs."""
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    parser.add_argument("--explain", action="store_true", help="log the plan and exit")
    parser.add_argument("--compile-plan", metavar="PATH",
                        help="write Flink's compiled JSON plan (operators, state and its "
                             "retention) to PATH and exit; fails if an updating stream "
                             "carries a non-deterministic column")
    args = parser.parse_args(argv)
    configure_logging()
    settings = load_settings()
    t_env = create_table_env(settings, JOB_NAME, NDU_CHECK if args.compile_plan else None)
    source(t_env, settings)
    transform(t_env, settings)
    statements = sink(t_env, settings)
    if args.explain:
        log.info("plan:\n%s", statements.explain())
        return
    if args.compile_plan:
        Path(args.compile_plan).write_text(statements.compile_plan().as_json_string())
        log.info("compiled plan written to %s", args.compile_plan)
        return
    result = statements.execute()
    job_client = result.get_job_client()
    job_id = str(job_client.get_job_id()) if job_client is not None else "unknown"
    log.info("submitted %s as job %s", JOB_NAME, job_id)
    (settings.run / "lakehouse.jobid").parent.mkdir(parents=True, exist_ok=True)
    (settings.run / "lakehouse.jobid").write_text(job_id)
    result.wait()


if __name__ == "__main__":
    main()
