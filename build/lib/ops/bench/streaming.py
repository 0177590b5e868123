"""Benchmark of the lakehouse job: sustained throughput and ADS freshness.

One isolated run of the real job (own topics, tables and serving keys) measures two things:

* **Throughput**: a backlog of fleet telemetry (the simulator's default fleet over a span of
  simulated time, every topic) is published while the job runs; the figure is messages
  read from Kafka and committed through every layer (ODS ... ADS in Hudi, ADS in Redis) per
  second, from the first publish until the job's committed offsets reach the end of every
  topic (offsets are committed with the checkpoint that flushed all 40 sinks).
* **Freshness**: with the job caught up and the simulator's live fleet publishing, probe
  readings of freshly registered meters (event time = send time, unique register values)
  are sent one after another; the clock stops when the reading's 15-minute energy row in
  the serving copy (Redis) shows that register. This is event time to visible in ADS.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
import uuid
from typing import Any

from infra.kafka_client import Publisher
from infra.kafka_lag import wait_caught_up
from infra.serde import encode
from infra.settings import GridLakeSettings
from jobs.streaming import control
from jobs.streaming.lakehouse_job import GROUP_SUFFIX
from lakehouse.contracts.messages import MESSAGES, METER_READING
from lakehouse.contracts.serving import serving_key_prefix
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN
from lakehouse.time import MINUTE_MS, parse_time_ms
from mock_devices.clock import Pacer
from mock_devices.config import FleetConfig
from mock_devices.fleet import T_LABELS, T_REGISTRY, Fleet
from mock_devices.runner import run_stream
from mock_devices.topology import build_topology
from ops.bench.isolation import isolated_run

log = logging.getLogger(__name__)

JOB = "lakehouse"
BENCH_START = "2024-06-03T00:00:00"
#: How long one freshness probe may take to reach the serving copy before it counts as lost.
PROBE_TIMEOUT_S = 180


def _backlog(settings: GridLakeSettings, minutes: int) -> list[tuple[str, str, bytes]]:
    """The default fleet's messages over ``minutes`` of simulated time, serialised."""
    start = parse_time_ms(BENCH_START)
    cfg = FleetConfig(meters=settings.simulator.meters, seed=settings.simulator.seed)
    fleet = Fleet(cfg, start, start + minutes * MINUTE_MS)
    return [(topic, key, encode(value)) for topic, key, value in fleet.records()
            if topic != T_LABELS]


def _publish(settings: GridLakeSettings, records: list[tuple[str, str, bytes]]) -> float:
    """Publish ``records`` as fast as the producer goes; returns the publish rate (msg/s)."""
    pub = Publisher.from_settings(settings)
    t0 = time.monotonic()
    for topic, key, value in records:
        pub.send(topic, key, value)
    report = pub.close()
    if report.total_failed:
        raise RuntimeError(f"{report.total_failed} backlog messages were not delivered")
    return len(records) / (time.monotonic() - t0)


def measure_throughput(settings: GridLakeSettings, minutes: int) -> dict[str, Any]:
    """Publish a backlog of ``minutes`` of fleet telemetry and time the job through it."""
    records = _backlog(settings, minutes)
    topics = [settings.kafka.topic_prefix + m.topic for m in MESSAGES]
    group = settings.kafka.topic_prefix + GROUP_SUFFIX
    by_topic: dict[str, int] = {}
    for topic, _, _ in records:
        by_topic[topic] = by_topic.get(topic, 0) + 1
    log.info("backlog: %d messages (%s)", len(records), by_topic)
    t0 = time.monotonic()
    publish_rate = _publish(settings, records)
    samples = wait_caught_up(settings, group, topics, timeout_s=3600)
    elapsed = samples[-1][0] - t0
    peak_lag = max(lag for _, lag in samples)
    return {
        "messages": len(records),
        "messages_by_topic": by_topic,
        "simulated_minutes": minutes,
        "publish_msgs_per_s": round(publish_rate),
        "through_all_layers_s": round(elapsed, 1),
        "through_all_layers_msgs_per_s": round(len(records) / elapsed),
        "peak_lag": peak_lag,
    }


def _register_probe_meters(settings: GridLakeSettings, n: int, run: str) -> list[str]:
    """Register ``n`` new meters (copies of a fleet meter's topology); returns their ids."""
    registry = build_topology(FleetConfig(meters=settings.simulator.meters,
                                          seed=settings.simulator.seed)).registry
    template = next(r for r in registry.values() if r["device_type"] == "meter")
    pub = Publisher.from_settings(settings)
    ids = [f"MB-{run}-{i:03d}" for i in range(n)]
    now = int(time.time() * 1000)
    for device in ids:
        pub.send(T_REGISTRY, device, {**template, "device_id": device, "ts": now - MINUTE_MS})
    pub.close()
    return ids


def measure_freshness(settings: GridLakeSettings, probes: int, run: str) -> dict[str, Any]:
    """Event time → visible in the serving copy, for ``probes`` meter readings."""
    import redis
    from kafka import KafkaProducer

    devices = _register_probe_meters(settings, probes, run)
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    prefix = serving_key_prefix(settings.redis.key_prefix, ADS_METER_ENERGY_15MIN)
    base = {f.name: (1.0 if f.type.value == "double" else 1) for f in METER_READING.fields}
    # one acknowledged send per probe: no batching delay in the figure
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all", linger_ms=0)
    topic = settings.kafka.topic_prefix + METER_READING.topic
    latencies: list[float] = []
    lost = 0
    for i, device in enumerate(devices):
        ts = int(time.time() * 1000)
        register = 5000.0 + i + 0.125
        producer.send(topic, key=device.encode(), value=encode({
            **base, "device_id": device, "ts": ts, "energy_import_kwh": register,
            "energy_export_kwh": 0.0, "seq": 1,
        })).get(10)
        key = f"{prefix}{device}|{ts - ts % 900_000}"
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while time.monotonic() < deadline:
            got = client.hget(key, "register_last_kwh")
            if got is not None and abs(float(got) - register) < 1e-9:
                latencies.append(time.time() - ts / 1000)
                break
            time.sleep(0.02)
        else:
            lost += 1
    producer.close()
    if not latencies:
        raise RuntimeError(f"no probe reached the serving copy in {PROBE_TIMEOUT_S} s")
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {
        "probes": len(latencies),
        "lost": lost,
        "freshness_p50_s": round(statistics.median(latencies), 2),
        "freshness_p95_s": round(q[18], 2),
        "freshness_max_s": round(max(latencies), 2),
    }


def checkpoint_figures(history: list[dict[str, Any]], since_ms: float) -> dict[str, Any]:
    """Duration statistics of the completed checkpoints triggered at or after ``since_ms``.

    Args:
        history: Flink's checkpoint history (:func:`jobs.streaming.control.checkpoint_history`).
        since_ms: Epoch milliseconds; earlier checkpoints are left out.

    Returns:
        ``completed``, ``failed`` and, when any completed, ``duration_p50_s``/``max_s`` and
        the largest ``state_mb``.

    """
    recent = [c for c in history if c.get("trigger_timestamp", 0) >= since_ms]
    done = [c for c in recent if c.get("status") == "COMPLETED"]
    out: dict[str, Any] = {
        "completed": len(done),
        "failed": sum(1 for c in recent if c.get("status") == "FAILED"),
    }
    if done:
        durations = [c["end_to_end_duration"] / 1000 for c in done]
        out["duration_p50_s"] = round(statistics.median(durations), 2)
        out["duration_max_s"] = round(max(durations), 2)
        out["state_mb"] = round(max(c.get("state_size", 0) for c in done) / 2**20, 1)
    return out


def _live_fleet(settings: GridLakeSettings, stop: threading.Event) -> None:
    """The simulator's fleet in real time (background load while freshness is probed)."""
    now = int(time.time() * 1000)
    fleet = Fleet(FleetConfig(meters=settings.simulator.meters, seed=settings.simulator.seed),
                  now)
    pub = Publisher.from_settings(settings)
    # run_stream closes the publisher
    run_stream(fleet.records(), pub, pacer=Pacer("realtime", fleet.start_ms),
               should_stop=stop.is_set, labels_to_sink=False)


def bench_lakehouse(settings: GridLakeSettings, minutes: int = 60,
                    probes: int = 20) -> dict[str, Any]:
    """Throughput and freshness of the lakehouse job in an isolated run (module docstring).

    Args:
        settings: The running stack's settings.
        minutes: Simulated minutes of fleet telemetry in the throughput backlog.
        probes: Freshness probes.

    """
    run = "b" + uuid.uuid4().hex[:7]
    partitions = {m.topic: settings.kafka.partitions for m in MESSAGES}
    bench, env = isolated_run(settings, partitions, run=run,
                              checkpoint_interval_ms=settings.flink.checkpoint_interval_ms)
    t0 = time.monotonic()
    control.start(bench, JOB, extra_env=env, resume=False)
    try:
        control.wait_running(bench, JOB, timeout=600, checkpoints=1)
        startup = time.monotonic() - t0
        result: dict[str, Any] = {
            "checkpoint_interval_ms": bench.flink.checkpoint_interval_ms,
            "parallelism": bench.flink.parallelism,
            "partitions_per_topic": settings.kafka.partitions,
            "meters": settings.simulator.meters,
            "start_to_running_s": round(startup, 1),
        }
        result["throughput"] = measure_throughput(bench, minutes)
        stop = threading.Event()
        live = threading.Thread(target=_live_fleet, args=(bench, stop), daemon=True)
        live.start()
        probed_from = time.time() * 1000
        try:
            result["freshness"] = measure_freshness(bench, probes, run)
        finally:
            stop.set()
            live.join(timeout=30)
        result["freshness"]["checkpoints"] = checkpoint_figures(
            control.checkpoint_history(bench, JOB), since_ms=probed_from)
        log.info("lakehouse bench: %s", json.dumps(result))
        return result
    finally:
        control.stop(bench, JOB, savepoint=False)
