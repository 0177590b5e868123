"""Load ADS rows into the lake and the serving copy through the streaming job's own sinks.

``python -m tests.api.serving_load <dir>`` reads ``<dir>/<table>.jsonl`` (one row per line,
timestamps as epoch milliseconds) for each ADS table and runs one bounded Flink job that
writes every row through the ``gridlake-hudi`` sink (the Hudi table) and the
``gridlake-redis`` sink (the serving copy), with the DDL the lakehouse job renders
(:func:`jobs.common.ddl.hudi_sink_ddl`, :func:`jobs.common.ddl.redis_sink_ddl`). The
stored bytes are therefore exactly what the pipeline stores; only the row values come from
the test's oracle instead of the pipeline's SQL. Settings come from the environment
(``GRIDLAKE_*``), as for any job.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.logs import configure_logging
from infra.settings import REPO_ROOT, GridLakeSettings, load_settings
from infra.stack.hdfs import write_client_conf
from jobs.common.ddl import FLINK_TYPES, hudi_sink_ddl, quote, redis_sink_ddl, sql_string
from jobs.common.flink_env import flink_launch_env
from lakehouse.contracts import FieldType, TableContract
from lakehouse.contracts.tables import ADS_TABLES, SERVING_SCORE

log = logging.getLogger(__name__)


def write_inputs(folder: Path, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Write ``table name → rows`` as the job's input files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table_rows in rows.items():
        with (folder / f"{name}.jsonl").open("w") as fh:
            for row in table_rows:
                fh.write(json.dumps(row) + "\n")


def run(settings: GridLakeSettings, folder: Path, env: dict[str, str], timeout: float = 300,
        ) -> None:
    """Run the loader as its own process (the job's JVM needs the Flink launch env)."""
    full = {**flink_launch_env(settings.jars, "768m"), **env,
            "PYTHONPATH": str(REPO_ROOT)}
    # like the streaming job (jobs.streaming.control.job_env): the Hudi writer's Hadoop
    # client takes the stack's dfs.replication from the class path
    full["HADOOP_CLASSPATH"] = os.pathsep.join(
        [full["HADOOP_CLASSPATH"], str(write_client_conf(settings))])
    proc = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "tests.api.serving_load", str(folder)], cwd=REPO_ROOT,
        env=full, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"serving load failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _source_ddl(table: TableContract, path: Path) -> str:
    cols = ",\n  ".join(
        f"{quote(f.name)} {'BIGINT' if f.type is FieldType.TIMESTAMP else FLINK_TYPES[f.type]}"
        for f in table.fields
    )
    return (
        f"CREATE TEMPORARY TABLE {quote('in_' + table.name)} (\n  {cols}\n) WITH (\n"
        f"  'connector' = 'filesystem', 'path' = {sql_string(path.as_uri())},"
        " 'format' = 'json'\n)"
    )


def _select(table: TableContract) -> str:
    cols = ", ".join(
        f"TO_TIMESTAMP_LTZ({quote(f.name)}, 3)" if f.type is FieldType.TIMESTAMP
        else quote(f.name) for f in table.fields
    )
    return f"SELECT {cols} FROM {quote('in_' + table.name)}"


def main(argv: list[str] | None = None) -> None:
    """Run the bounded load job over the files in the folder named on the command line."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    folder = Path((argv or sys.argv[1:])[0])
    configure_logging()
    settings = load_settings()
    conf = Configuration()
    for key, value in {"parallelism.default": "1", "table.local-time-zone": "UTC",
                       "rest.port": "0", "execution.runtime-mode": "batch"}.items():
        conf.set_string(key, value)
    t_env = TableEnvironment.create(
        EnvironmentSettings.new_instance().in_batch_mode().with_configuration(conf).build()
    )
    statements = t_env.create_statement_set()
    for table in ADS_TABLES:
        path = folder / f"{table.name}.jsonl"
        if not path.exists():
            continue
        t_env.execute_sql(_source_ddl(table, path))
        # the oracle's rows carry their own updated_ts (the feed tests order changes by it)
        t_env.execute_sql(hudi_sink_ddl(settings, table, stamp=False))
        t_env.execute_sql(redis_sink_ddl(settings, table, SERVING_SCORE[table.name], stamp=False))
        statements.add_insert_sql(f"INSERT INTO {quote(table.name)} {_select(table)}")
        statements.add_insert_sql(
            f"INSERT INTO {quote(table.name + '_serving')} {_select(table)}"
        )
    statements.execute().wait()
    log.info("loaded %s", sorted(p.stem for p in folder.glob("*.jsonl")))


if __name__ == "__main__":
    main()
