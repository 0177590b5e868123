"""The Flink table environment every streaming job runs in, configured from settings."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from infra.settings import GridLakeSettings
from infra.stack import process

log = logging.getLogger(__name__)


def checkpoint_root(settings: GridLakeSettings, job_name: str) -> str:
    """Checkpoint directory of one pipeline.

    Scoped by job name and topic prefix, so isolated pipelines (tests, tenants) never
    pick up each other's checkpoints on recovery.
    """
    base = settings.flink.checkpoint_dir or (settings.home / "flink" / "checkpoints").as_uri()
    scope = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{job_name}-{settings.kafka.topic_prefix}")
    return f"{base.rstrip('/')}/{scope.strip('.')}"


def work_dir(settings: GridLakeSettings, pid: int) -> Path:
    """Working folder of the local mini-cluster run by job process ``pid``."""
    return settings.home / "flink" / "work" / str(pid)


def flink_log_dir(settings: GridLakeSettings) -> Path:
    """Folder of a local job's Flink log (``FLINK_LOG_DIR`` of the PyFlink gateway).

    Flink also moves each RocksDB instance's info log here (named after the instance's
    path) and deletes it when the operator closes cleanly.
    """
    return settings.home / "logs" / "flink"


def keep_previous_flink_logs(settings: GridLakeSettings, keep: int = 3) -> None:
    """Rename the Flink logs of earlier runs to ``<name>.1`` .. ``<name>.<keep>`` (newest 1).

    The PyFlink gateway truncates its log when a job starts, which would erase the only
    record of why the previous run failed or stalled.
    """
    log_dir = flink_log_dir(settings)
    if not log_dir.is_dir():
        return
    for current in log_dir.glob("flink-*.log"):
        for n in range(keep - 1, 0, -1):
            older = current.with_name(f"{current.name}.{n}")
            if older.exists():
                older.replace(current.with_name(f"{current.name}.{n + 1}"))
        current.replace(current.with_name(f"{current.name}.1"))


def sweep_work_dirs(settings: GridLakeSettings) -> int:
    """Remove what job processes that have ended left behind; return how many folders.

    Their working folders, and the RocksDB info logs Flink moved out of them, which only
    a clean close deletes.
    """
    root = settings.home / "flink" / "work"
    ended = [f for f in (root.glob("*") if root.is_dir() else ())
             if f.name.isdigit() and process.exited(int(f.name))]
    for folder in ended:
        shutil.rmtree(folder, ignore_errors=True)
    # RocksDB names a relocated log after its instance path, leading "/" dropped and every
    # other "/" made "_": the instances of one job all live under its working folder.
    prefixes = tuple(str(f.absolute()).lstrip("/").replace("/", "_") + "_" for f in ended)
    log_dir = flink_log_dir(settings)
    if prefixes and log_dir.is_dir():
        for log_file in log_dir.iterdir():
            if log_file.name.startswith(prefixes):
                log_file.unlink(missing_ok=True)
    return len(ended)


def flink_config(settings: GridLakeSettings, job_name: str) -> dict[str, str]:
    """Flink configuration of a streaming job.

    Checkpointing is exactly-once; checkpoints are retained on cancellation so a
    stopped job can resume. ``settings.flink.master`` chooses a local mini-cluster or a
    remote JobManager.
    """
    f = settings.flink
    checkpoints = checkpoint_root(settings, job_name)
    savepoints = f.savepoint_dir or (settings.home / "flink" / "savepoints").as_uri()
    conf = {
        "pipeline.name": job_name,
        "parallelism.default": str(f.parallelism),
        "execution.runtime-mode": "streaming",
        "execution.checkpointing.interval": f"{f.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.dir": checkpoints,
        "execution.checkpointing.savepoint-dir": savepoints,
        "execution.checkpointing.num-retained": "3",
        "restart-strategy.type": "exponential-delay",
        "table.local-time-zone": "UTC",
        "table.exec.state.ttl": f.state_ttl,
        "table.exec.mini-batch.enabled": "true",
        "table.exec.mini-batch.allow-latency": f.mini_batch_latency,
        "table.exec.mini-batch.size": "5000",
        # Shared views (checked, detail, summaries) become optimize blocks planned once
        # instead of once per sink: minutes → seconds for the multi-layer job.
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
        # The sink materializer stays on (Flink's default): multi-join changelogs can
        # deliver a row's retraction after its replacement, which an upsert sink alone
        # would turn into a lost row.
        "table.exec.sink.upsert-materialize": "AUTO",
        # ... and it matches retractions by value, so no column of an updating stream may be
        # non-deterministic (updated_ts is stamped by the sinks, FlinkDialect.stamp). Checked
        # when the plan is compiled (NDU_CHECK), not at every start: the check takes ~1 min.
        "state.backend.type": f.state_backend,
        # RocksDB's info logs at INFO level left 800 MB after a few runs (~60 stateful
        # operators). No state.backend.rocksdb.log.dir: with one set, each log is named after
        # its instance's whole path, which passes the 255-byte file name limit once the home
        # is a few characters deeper (every task failed in CI). Unset, Flink moves the logs
        # to its log folder only when the name fits, else they stay in the instance folder.
        "state.backend.rocksdb.log.level": "HEADER_LEVEL",
        "execution.checkpointing.incremental": "true",
        "taskmanager.memory.managed.size": f.managed_memory,
        "taskmanager.memory.network.min": f.network_memory,
        "taskmanager.memory.network.max": f.network_memory,
    }
    if f.master == "local":
        conf["rest.port"] = str(f.rest_port)
        conf["rest.address"] = "127.0.0.1"
        # The mini-cluster's working files (RocksDB's local state: hundreds of MB per run)
        # go to a folder named after this process, which start/stop sweep once it ended;
        # in the system temp folder they were left behind by every killed job.
        work = str(work_dir(settings, os.getpid()))
        conf["io.tmp.dirs"] = work
        conf["process.working-dir"] = work
    else:
        host, _, port = f.master.rpartition(":")
        conf.update({"execution.target": "remote", "rest.address": host, "rest.port": port})
    if f.resume_from:
        conf["execution.state-recovery.path"] = f.resume_from
    conf.update(prometheus_reporter(settings))
    return conf


#: Factory of Flink's Prometheus reporter (jar ``flink-metrics-prometheus``, resolved with
#: the connectors: ``jobs/streaming/connectors/pom.xml``).
PROMETHEUS_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"


def prometheus_reporter(settings: GridLakeSettings) -> dict[str, str]:
    """Flink options of the job's Prometheus reporter.

    Every job, operator and checkpoint metric at ``http://<host>:<flink.prometheus_port>/``;
    no options (no reporter) when the port is unset.
    """
    port = settings.flink.prometheus_port
    if not port:
        return {}
    return {"metrics.reporters": "prom",
            "metrics.reporter.prom.factory.class": PROMETHEUS_FACTORY,
            "metrics.reporter.prom.port": port}


NDU_CHECK = {"table.optimizer.non-deterministic-update.strategy": "TRY_RESOLVE"}
"""Planner option refusing a query whose updating stream carries a non-deterministic column
(``lakehouse --compile-plan`` sets it; the plan test runs that)."""


def create_table_env(settings: GridLakeSettings, job_name: str,
                     extra: dict[str, str] | None = None) -> Any:
    """A streaming TableEnvironment configured by :func:`flink_config` (plus ``extra``)."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    conf = Configuration()
    for key, value in {**flink_config(settings, job_name), **(extra or {})}.items():
        conf.set_string(key, value)
    env_settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(
        conf
    ).build()
    log.info("creating table environment for %s (master=%s)", job_name, settings.flink.master)
    return TableEnvironment.create(env_settings)
