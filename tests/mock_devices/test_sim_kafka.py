"""Round trip through the real local Kafka: a run publishes exactly what it counted."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest

from infra.kafka_client import Publisher, create_topics, delete_topics
from infra.serde import loads
from lakehouse.contracts.registry import all_topics
from mock_devices.config import FleetConfig, parse_time_ms
from mock_devices.defects import DefectConfig
from mock_devices.faults import parse_fault
from mock_devices.fleet import Fleet
from mock_devices.runner import fleet_stream, run_stream
from tests.mock_devices.sim_helpers import CONTRACTS


@pytest.mark.integration
def test_run_publishes_exactly_the_counted_messages(stack: Any) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    bootstrap = stack.kafka.bootstrap
    prefix = f"{stack.kafka.topic_prefix}test-sim-{uuid.uuid4().hex[:8]}."
    specs = [(t.name, t.compacted) for t in all_topics()]
    created = create_topics(
        bootstrap,
        prefix,
        specs,
        partitions=stack.kafka.partitions,
        replication_factor=stack.kafka.replication_factor,
    )
    try:
        start = parse_time_ms("2024-06-01T10:00")
        fleet = Fleet(
            FleetConfig(meters=120, seed=5, ess_interval_s=10),
            start,
            start + 3_600_000,
            [parse_fault("feeder_outage")],
        )
        stream = fleet_stream(fleet, DefectConfig.parse("all=0.002,malformed_json=0.01", seed=5))
        report = run_stream(stream, Publisher.from_settings(stack, topic_prefix=prefix))
        assert report.total_failed == 0 and report.aborted is None
        assert report.total_delivered == report.total_sent > 1_000

        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=2000,
        )
        tps = [
            TopicPartition(prefix + name, p)
            for name, _ in specs
            for p in range(stack.kafka.partitions)
        ]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        counts: Counter[str] = Counter()
        invalid = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in tps):
            for rec in consumer:
                topic = rec.topic[len(prefix) :]
                counts[topic] += 1
                try:
                    value = loads(rec.value)
                except ValueError:
                    invalid += 1
                    continue
                if CONTRACTS[topic].validate(value) is not None:
                    invalid += 1
        consumer.close()
        assert dict(counts) == report.sent
        labels = report.sent["sim.labels"]
        assert 0 < invalid <= labels  # only defects (malformed, out-of-range...) are invalid

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            res = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, prefix + "device.registry")]
            )
            text = repr(res)
            assert "cleanup.policy" in text and "compact" in text
        finally:
            admin.close()
    finally:
        delete_topics(bootstrap, created)
