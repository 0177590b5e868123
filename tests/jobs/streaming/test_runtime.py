"""The local Flink runtime as configured by settings, run for real (no service needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.settings import GridLakeSettings
from jobs.streaming.control import job_env
from jobs.streaming.runtime import flink_log_dir, keep_previous_flink_logs

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]

# A keyed join and aggregate: RocksDB instances named after their operators, under the
# job's working folder.
JOB = textwrap.dedent("""
    from infra.settings import GridLakeSettings
    from jobs.streaming.runtime import create_table_env

    t = create_table_env(GridLakeSettings(), "runtime-check")
    t.execute_sql(
        "CREATE TABLE s (k INT, v INT) WITH ('connector' = 'datagen', "
        "'number-of-rows' = '500', 'fields.k.min' = '1', 'fields.k.max' = '5')")
    t.execute_sql(
        "CREATE TABLE o (k INT, n BIGINT, PRIMARY KEY (k) NOT ENFORCED) "
        "WITH ('connector' = 'blackhole')")
    t.execute_sql(
        "INSERT INTO o SELECT a.k, COUNT(*) FROM s a LEFT JOIN s b ON a.k = b.k GROUP BY a.k"
    ).wait()
""")


def test_stateful_job_runs_under_a_deep_home(tmp_path: Path) -> None:
    # CI clones into a deeper folder than a developer's: with a RocksDB log folder set, each
    # log was named after its instance's whole path, passed 255 bytes and failed every task.
    home = tmp_path / ("deep-" * 12) / "work" / "main" / ".gridlake"
    settings = GridLakeSettings(_env_file=None)  # type: ignore[call-arg]
    if not any((settings.jars / "flink").glob("gridlake-flink-connectors*.jar")):
        pytest.skip("Flink jars not built (gridlake setup)")
    deep = settings.model_copy(update={"home": home, "jars_dir": settings.jars})
    env = job_env(deep, {
        "GRIDLAKE_HOME": str(home), "GRIDLAKE_JARS_DIR": str(settings.jars),
        "GRIDLAKE_FLINK__PARALLELISM": "1",
    })
    done = subprocess.run([sys.executable, "-c", JOB], env=env, capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    # the gateway's own log is in the home, not in the pyflink package
    assert list(flink_log_dir(deep).glob("flink-*.log"))


def test_earlier_flink_logs_are_kept_newest_first(tmp_path: Path) -> None:
    settings = GridLakeSettings(home=tmp_path)
    log_dir = flink_log_dir(settings)
    log_dir.mkdir(parents=True)
    current = log_dir / "flink-root-python-host.log"
    for run in ("run1", "run2", "run3", "run4"):
        current.write_text(run)
        keep_previous_flink_logs(settings, keep=3)
    assert not current.exists()
    assert [(log_dir / f"{current.name}.{n}").read_text() for n in (1, 2, 3)] == [
        "run4", "run3", "run2"]
    assert sorted(p.name for p in log_dir.iterdir()) == [f"{current.name}.{n}" for n in (1, 2, 3)]
