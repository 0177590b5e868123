"""``gridlake bench`` / ``make bench``: the one harness for every benchmark.

Each benchmark is a function ``(settings) -> dict`` of figures; the harness runs the
selected ones, prints a table and writes ``.gridlake/bench/results.json`` (one object
per benchmark with the machine description), which docs/benchmarks.md quotes.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil

from api.service import admin_headers
from infra.settings import GridLakeSettings
from infra.stack import process
from infra.stack.manager import Stack
from jobs.streaming import control
from lakehouse.contracts.messages import METER_READING
from lakehouse.time import from_ms
from ops.bench import api as api_bench
from ops.bench import api_stall
from ops.bench import backfill as backfill_bench
from ops.bench import dashboard as dashboard_bench
from ops.bench import health as health_bench
from ops.bench import simulator as simulator_bench
from ops.bench import streaming as streaming_bench
from ops.run import run_all, stop_all

log = logging.getLogger(__name__)

Benchmark = Callable[[GridLakeSettings], dict[str, Any]]


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def bench_cold_up(settings: GridLakeSettings) -> dict[str, Any]:
    """Stop the stack, then time ``up`` to ready (jars cached), and a warm ``up``."""
    stack = Stack(settings)
    stop_all(settings)  # a true cold start: nothing of GridLake running
    t0 = time.monotonic()
    stack.up()
    cold = time.monotonic() - t0
    t0 = time.monotonic()
    stack.up()
    warm = time.monotonic() - t0
    return {"cold_up_s": round(cold, 1), "warm_up_s": round(warm, 2)}


def gridlake_processes(settings: GridLakeSettings) -> dict[str, list[psutil.Process]]:
    """Live processes GridLake started, by component (with their children)."""
    groups: dict[str, list[psutil.Process]] = {}
    for pid_file in sorted(settings.run.glob("*.pid")):
        proc = process.owned_process(process.read_pid_file(pid_file))
        if proc is not None:
            groups[pid_file.stem] = [proc, *proc.children(recursive=True)]
    return groups


#: Pid-file names of every part ``gridlake run`` starts (the memory figure names the ones
#: that were not running when it was taken).
PLATFORM_PARTS = ("redis", "namenode", "datanode-slave1", "datanode-slave2", "kafka",
                  "stream-lakehouse", "api", "ml", "simulator")


def bench_memory(settings: GridLakeSettings) -> dict[str, Any]:
    """Resident memory of every GridLake process (stack, streaming job, API, ML, simulator).

    ``not_running`` names the parts of the platform that had no process: a total without
    them is not the whole platform's.
    """
    out: dict[str, Any] = {}
    total = 0
    groups = gridlake_processes(settings)
    out["not_running"] = [p for p in PLATFORM_PARTS if p not in groups]
    for name, procs in groups.items():
        rss = 0
        for p in procs:
            try:
                rss += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        out[f"rss_mib.{name}"] = round(rss / 2**20)
        total += rss
    out["rss_mib.total"] = round(total / 2**20)
    return out


def bench_publish_to_api(settings: GridLakeSettings, probes: int = 60) -> dict[str, Any]:
    """Latency of a reading from Kafka publish to visible through the API.

    Needs the streaming job and the API running (``gridlake run``). Each probe is a
    reading of its own bench meter with a unique register value; the clock stops when
    the API returns that register for the reading's interval.
    """
    from kafka import KafkaProducer

    # Steady state: the job has caught up with the simulator's start-up burst and
    # completed checkpoints before the clock starts.
    done = control.status(settings).checkpoints_completed or 0
    control.wait_running(settings, checkpoints=done + 2)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all", linger_ms=0)
    topic = settings.kafka.topic_prefix + METER_READING.topic
    run = uuid.uuid4().hex[:6]
    now_ms = int(time.time() * 1000)
    base = {f.name: (1.0 if f.type.value == "double" else 1) for f in METER_READING.fields}
    pending: dict[str, tuple[float, float, int]] = {}
    latencies: list[float] = []

    client = httpx.Client(base_url=settings.api.base_url, timeout=5,
                          headers=admin_headers(settings))
    deadline = time.monotonic() + 300
    sent = 0
    while (sent < probes or pending) and time.monotonic() < deadline:
        if sent < probes and len(pending) < 8:
            device = f"BENCH-{run}-{sent:03d}"
            register = 1000.0 + sent + 0.123
            msg = {
                **base,
                "device_id": device,
                "ts": now_ms,
                "energy_import_kwh": register,
                "energy_export_kwh": 0.0,
                "seq": sent,
            }
            producer.send(topic, key=device.encode(), value=json.dumps(msg).encode()).get(10)
            pending[device] = (time.monotonic(), register, now_ms)
            sent += 1
        for device, (t_sent, register, ts) in list(pending.items()):
            start = from_ms(ts - ts % 900_000)
            end = from_ms(ts - ts % 900_000 + 900_000)
            r = client.get(
                f"/api/v1/meters/{device}/energy/15min",
                params={"start": start.isoformat(), "end": end.isoformat()},
            )
            if r.status_code == 429:  # over api.rate_limit_per_s: poll again next round
                break
            rows = r.json()["rows"]
            if rows and abs(rows[0]["register_last_kwh"] - register) < 1e-9:
                latencies.append(time.monotonic() - t_sent)
                del pending[device]
        time.sleep(0.05)
    producer.close()
    if not latencies:
        raise RuntimeError("no probe reached the API in 300 s: is `gridlake run` up?")
    q = statistics.quantiles(latencies, n=20)
    return {
        "probes": len(latencies),
        "lost": probes - len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(q[18], 2),
        "latency_max_s": round(max(latencies), 2),
        "checkpoint_interval_ms": settings.flink.checkpoint_interval_ms,
    }


def bench_lakehouse(settings: GridLakeSettings) -> dict[str, Any]:
    """Lakehouse job: messages/s through every layer and ADS freshness (isolated run)."""
    return streaming_bench.bench_lakehouse(settings)


def bench_simulator(settings: GridLakeSettings) -> dict[str, Any]:
    """Simulator publish rate into Kafka, with a plain kafka-python loop as the ceiling."""
    return simulator_bench.run_benchmark(settings, seconds=10.0,
                                         meters=settings.simulator.meters)


def bench_ml_lake(settings: GridLakeSettings) -> dict[str, Any]:
    """Scoring on the lake: DWD read time and scoring throughput (isolated lake)."""
    from ops.bench.ml_lake import run_lake_benchmark  # lazy: torch

    return run_lake_benchmark(settings)


def bench_ml(settings: GridLakeSettings) -> dict[str, Any]:
    """AnomalyBERT speed (small and published configurations), detection, transfer.

    Needs no stack: training and scoring speed on this CPU, detection on the seeded ESS
    site, fine-tuning on a second site.
    """
    from ops.bench.ml import run_benchmark  # lazy: torch

    return run_benchmark(settings)


def bench_images_ml(settings: GridLakeSettings) -> dict[str, Any]:
    """Image models: training time and CPU inference images/s of both (no stack).

    Quick by default (a generated batch of 400 images, 3 epochs); sizes from
    ``GRIDLAKE_BENCH_IMAGES_COUNT`` / ``_EPOCHS`` / ``_THREADS``. docs/images.md keeps the
    full-size metrics table.
    """
    from ops.bench import images_ml  # lazy: torch

    return images_ml.run_benchmark(**images_ml.options_from_env())


def bench_ml_ablation(settings: GridLakeSettings) -> dict[str, Any]:
    """AnomalyBERT ablation: old vs faithful degradations and each scaler.

    Several data sets and seeds, no stack; docs/ml.md keeps the table.
    """
    from ops.bench import ml_ablation  # lazy: torch

    results = ml_ablation.run_benchmark()
    table = settings.home / "bench" / "ml_ablation.md"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(ml_ablation.markdown(results) + "\n")
    log.info("ablation table: %s", table)
    return ml_ablation.flat(results)


def bench_backfill(settings: GridLakeSettings) -> dict[str, Any]:
    """Backfill rows/s over a simulated month vs the stream's replay time (isolated lake).

    Options from ``GRIDLAKE_BENCH_BACKFILL_DAYS`` / ``_METERS`` / ``_STREAM_MINUTES`` /
    ``_KEEP`` (see :func:`ops.bench.backfill.options_from_env`).
    """
    return backfill_bench.run_benchmark(settings, **backfill_bench.options_from_env())


def bench_health(settings: GridLakeSettings) -> dict[str, Any]:
    """Asset health index on a simulated month (in process, no stack; docs/health.md).

    Detection per fault type, false alarms, time to assess the default fleet.
    """
    return health_bench.run_benchmark()


def bench_images_import(settings: GridLakeSettings) -> dict[str, Any]:
    """Image import: images/s and MB/s for 2,000 generated images (isolated lake root).

    Count from ``GRIDLAKE_BENCH_IMAGES``; see :mod:`ops.bench.images`.
    """
    # lazy: Pillow, the simulator's topology
    from ops.bench import images

    return images.run_benchmark(settings)


def bench_api_filter_stall(settings: GridLakeSettings) -> dict[str, Any]:
    """/health latency idle and under worst-case filters (in process, no stack)."""
    return api_stall.run_benchmark(settings)


def bench_dashboard(settings: GridLakeSettings) -> dict[str, Any]:
    """The dashboard overview's requests at 16 clients, direct to the API and via Nginx."""
    return dashboard_bench.run_benchmark(settings)


def bench_dashboard_soak(settings: GridLakeSettings) -> dict[str, Any]:
    """The live overview's JS heap in Chromium while live points arrive (slope per minute).

    Duration from ``GRIDLAKE_BENCH_SOAK_S`` (default 600); see
    :func:`ops.bench.dashboard.run_soak`.
    """
    opts = dashboard_bench.soak_options()
    return dashboard_bench.run_soak(settings, seconds=opts["seconds"], sample_s=opts["sample_s"],
                                    point_s=opts["point_s"])


def bench_api(settings: GridLakeSettings) -> dict[str, Any]:
    """API latency and requests/s at 1, 16, 64 clients, with a raw Redis GET as the floor."""
    return api_bench.run_benchmark(settings)


#: Benchmarks that measure the running platform; ``gridlake run`` is ensured first.
NEEDS_PLATFORM = {"publish_to_api", "memory"}
#: Benchmarks that need the local stack (Kafka, HDFS, Redis) and start their own jobs.
NEEDS_STACK = {"lakehouse", "simulator", "ml_lake", "backfill", "images_import", "dashboard",
               "dashboard_soak"}

BENCHMARKS: dict[str, Benchmark] = {
    "cold_up": bench_cold_up,
    "simulator": bench_simulator,
    # before the platform benchmarks: the platform's own job would share the two cores
    "lakehouse": bench_lakehouse,
    "api": bench_api,
    "api_filter_stall": bench_api_filter_stall,
    "dashboard": bench_dashboard,
    "dashboard_soak": bench_dashboard_soak,
    "ml_lake": bench_ml_lake,
    "ml": bench_ml,
    "ml_ablation": bench_ml_ablation,
    "images_ml": bench_images_ml,
    "health": bench_health,
    "images_import": bench_images_import,
    "backfill": bench_backfill,
    "publish_to_api": bench_publish_to_api,
    "memory": bench_memory,
}


def run_benchmarks(settings: GridLakeSettings, names: list[str]) -> dict[str, Any]:
    """Run ``names`` in order and write the results file; returns the results."""
    results: dict[str, Any] = {
        "machine": machine(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": {},
    }
    platform_up = False
    for name in names:
        log.info("benchmark %s ...", name)
        t0 = time.monotonic()
        try:
            if name in NEEDS_PLATFORM and not platform_up:
                run_all(settings)
                platform_up = True
            elif name in NEEDS_STACK and not platform_up:
                Stack(settings).up()
            figures = BENCHMARKS[name](settings)
        except Exception as exc:  # noqa: BLE001 - a failed benchmark is reported, not fatal
            log.exception("benchmark %s failed", name)
            figures = {"error": str(exc)}
        figures["wall_s"] = round(time.monotonic() - t0, 1)
        results["results"][name] = figures
    out = settings.home / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    log.info("results written to %s", out)
    return results
