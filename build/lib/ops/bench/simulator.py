"""Publish-rate benchmark: the simulator against a plain kafka-python producer loop.

Three figures from one run, each over ``seconds`` of wall time:

* ``generate_only_msgs_per_s``: fleet generation plus JSON serialisation, no Kafka;
* ``simulator_msgs_per_s``: the simulator publishing through :class:`Publisher`
  (delivery callbacks, acks=all) into throw-away topics;
* ``producer_loop_msgs_per_s``: a bare ``KafkaProducer.send`` loop over pre-serialised
  messages of the simulator's own sizes, same producer settings: the ceiling that
  kafka-python itself allows on this machine.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from typing import Any

from infra.kafka_client import NullSink, Publisher, create_topics, delete_topics
from infra.serde import BACKEND, encode
from lakehouse.contracts.registry import all_topics
from lakehouse.time import parse_time_ms
from mock_devices.config import FleetConfig
from mock_devices.fleet import Fleet
from mock_devices.runner import run_stream

log = logging.getLogger(__name__)

BENCH_START = "2024-06-03T00:00:00"


def _fleet(meters: int, seed: int) -> Fleet:
    return Fleet(FleetConfig(meters=meters, seed=seed), parse_time_ms(BENCH_START))


def run_benchmark(settings: Any, seconds: float = 10.0, meters: int = 3000) -> dict[str, Any]:
    """Measure publish rates against the Kafka of ``settings``; see the module docstring.

    Args:
        settings: ``GridLakeSettings`` (kafka bootstrap and partitions, simulator producer
            settings and seed).
        seconds: Wall time of each measurement.
        meters: Fleet size of the simulated run.

    Returns:
        The measured rates and the settings they were measured with.

    """
    from kafka import KafkaProducer

    seed = settings.simulator.seed
    result: dict[str, Any] = {
        "seconds": seconds, "meters": meters, "serializer": BACKEND,
        "compression": settings.simulator.compression,
        "linger_ms": settings.simulator.linger_ms, "batch_size": settings.simulator.batch_size,
        "partitions": settings.kafka.partitions,
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }

    gen = run_stream(_fleet(meters, seed).records(), NullSink(), max_seconds=seconds)
    result["generate_only_msgs_per_s"] = round(gen.rate, 1)

    prefix = f"{settings.kafka.topic_prefix}bench-{uuid.uuid4().hex[:8]}."
    names = [(t.name, t.compacted) for t in all_topics()] + [("plain", False)]
    created = create_topics(settings.kafka.bootstrap, prefix, names,
                            partitions=settings.kafka.partitions,
                            replication_factor=settings.kafka.replication_factor)
    try:
        pub = Publisher.from_settings(settings, topic_prefix=prefix)
        sim = run_stream(_fleet(meters, seed).records(), pub, max_seconds=seconds)
        result.update({
            "simulator_msgs_per_s": round(sim.rate, 1),
            "simulator_delivered": sim.total_delivered,
            "simulator_failed": sim.total_failed,
            "mean_message_bytes": round(sim.bytes / max(sim.total_sent, 1), 1),
        })

        sample = [(key.encode(), encode(value))
                  for _, key, value in itertools.islice(_fleet(meters, seed).records(), 20_000)]
        pub_cfg = Publisher.from_settings(settings, topic_prefix=prefix, connect_attempts=1)
        cfg = dict(pub_cfg.config)
        pub_cfg.close()
        producer = KafkaProducer(**cfg)
        topic = prefix + "plain"
        n = 0
        t0 = time.perf_counter()
        deadline = t0 + seconds
        for key, data in itertools.cycle(sample):
            producer.send(topic, value=data, key=key)
            n += 1
            if n % 512 == 0 and time.perf_counter() >= deadline:
                break
        producer.flush()
        elapsed = time.perf_counter() - t0
        producer.close()
        result.update({
            "producer_loop_msgs_per_s": round(n / elapsed, 1),
            "producer_loop_messages": n,
        })
        result["simulator_share_of_ceiling"] = round(
            result["simulator_msgs_per_s"] / max(result["producer_loop_msgs_per_s"], 1e-9), 3
        )
    finally:
        try:
            delete_topics(settings.kafka.bootstrap, created)
        except Exception as e:  # cleaning up must not hide the measurement
            log.warning("could not delete the benchmark topics: %s", e)
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    try:
        import crc32c  # noqa: F401

        result["crc32c"] = "C extension"
    except ImportError:
        result["crc32c"] = "pure Python (kafka-python fallback)"
    log.info("benchmark: %s", result)
    return result
