"""The live local stack: every service answers, ``up`` is idempotent, HDFS survives the
loss of a DataNode, and ``down``/``up`` keeps Kafka and HDFS data.

Needs the stack (the session fixture reuses a running one or starts it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from infra.lake import WebHdfs
from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack.manager import Stack
from lakehouse.contracts.registry import all_topics

pytestmark = pytest.mark.integration


def cli(settings: GridLakeSettings, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``gridlake <args>`` against the test stack; returns (result, seconds)."""
    env = {**os.environ, "GRIDLAKE_HOME": str(settings.home)}
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "ops.cli.main", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return res, time.monotonic() - t0


def status_json(settings: GridLakeSettings) -> dict[str, dict[str, Any]]:
    res, _ = cli(settings, "status", "--json")
    return {row["name"]: row for row in json.loads(res.stdout)}


def hdfs_client(settings: GridLakeSettings) -> WebHdfs:
    return WebHdfs.from_settings(settings, timeout=30)


def nn_state(settings: GridLakeSettings) -> dict[str, Any]:
    return Stack(settings).namenode.state()


def poll(predicate: Any, timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true (deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def scratch_topic(stack: GridLakeSettings) -> Iterator[str]:
    name = f"{stack.kafka.topic_prefix}scratch.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    yield name
    admin.delete_topics([name])
    admin.close()


def produce(settings: GridLakeSettings, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    for v in values:
        producer.send(topic, v)
    producer.flush(timeout=30)
    producer.close()


def consume_all(settings: GridLakeSettings, topic: str, expected: int) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=20000,
    )
    got: list[bytes] = []
    for msg in consumer:
        got.append(msg.value)
        if len(got) >= expected:
            break
    consumer.close()
    return got


def test_every_service_is_healthy(stack: GridLakeSettings) -> None:
    rows = status_json(stack)
    assert set(rows) >= {"kafka", "namenode", "datanode-slave1", "datanode-slave2", "redis"}
    # the apps (stream, API, ML service, simulator) are not started by the test stack
    bad = {n: r["detail"] for n, r in rows.items() if r["kind"] == "service" and not r["healthy"]}
    assert not bad
    assert rows["datanode-slave1"]["role"] == "slave1" and rows["namenode"]["role"] == "master"


def test_kafka_produce_consume(stack: GridLakeSettings, scratch_topic: str) -> None:
    produce(stack, scratch_topic, [b"hello", b"grid"])
    assert consume_all(stack, scratch_topic, 2) == [b"hello", b"grid"]


def test_contract_topics_exist(stack: GridLakeSettings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    wanted = {stack.kafka.topic_prefix + t.name for t in all_topics()}
    assert wanted <= existing


def test_hdfs_write_read_replicated(stack: GridLakeSettings) -> None:
    client = hdfs_client(stack)
    path = f"{stack.hdfs.lake_root}/_tests/{uuid.uuid4().hex}.txt"
    client.write(path, b"volts,amps\n230.1,4.2\n")
    assert client.read(path) == b"volts,amps\n230.1,4.2\n"
    status, root = client.status(path), client.status(stack.hdfs.lake_root)
    assert status is not None and status.replication == 2
    assert root is not None and root.is_dir
    client.delete(path)


def test_redis_set_get(stack: GridLakeSettings) -> None:
    import redis

    r = redis.Redis.from_url(stack.redis.url)
    key = f"{stack.redis.key_prefix}test:{uuid.uuid4().hex}"
    r.set(key, "42", ex=60)
    assert r.get(key) == b"42"
    r.delete(key)
    r.close()


def test_up_twice_is_harmless_and_fast(stack: GridLakeSettings) -> None:
    before = {n: r["pid"] for n, r in status_json(stack).items()}
    res, seconds = cli(stack, "up")
    assert res.returncode == 0, res.stderr
    assert seconds < 10, f"warm up took {seconds:.1f} s"
    res2, _ = cli(stack, "up")
    assert res2.returncode == 0, res2.stderr
    after = {n: r["pid"] for n, r in status_json(stack).items()}
    assert after == before


@pytest.mark.slow
def test_hdfs_survives_losing_a_datanode(stack: GridLakeSettings) -> None:
    client = hdfs_client(stack)
    old = f"{stack.hdfs.lake_root}/_tests/before-loss-{uuid.uuid4().hex}.txt"
    client.write(old, b"written with two datanodes")

    victim = Stack(stack).service("datanode-slave1")
    pid = victim.pid()
    assert pid is not None, "the stack's DataNode slave1 is not GridLake-started"
    os.kill(pid, signal.SIGKILL)
    # The NameNode notices through missed heartbeats (stale after 3 s, dead after ~20 s);
    # WebHDFS then routes reads and writes around the lost node.
    poll(
        lambda: (
            nn_state(stack).get("NumStaleDataNodes", 0) >= 1
            or nn_state(stack)["NumLiveDataNodes"] == 1
        ),
        60,
        "the NameNode to notice the lost DataNode",
    )
    assert client.read(old) == b"written with two datanodes"
    new = f"{stack.hdfs.lake_root}/_tests/after-loss-{uuid.uuid4().hex}.txt"
    client.write(new, b"written with one datanode")
    assert client.read(new) == b"written with one datanode"

    res, _ = cli(stack, "up")
    assert res.returncode == 0, res.stdout + res.stderr
    assert Stack(stack).service("datanode-slave1").pid() not in (None, pid)
    assert nn_state(stack)["NumLiveDataNodes"] == 2
    client.delete(old)
    client.delete(new)


@pytest.mark.slow
def test_down_then_up_keeps_kafka_and_hdfs_data(stack: GridLakeSettings) -> None:
    """Runs last in this module: it restarts every service."""
    topic = f"{stack.kafka.topic_prefix}scratch.persist.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    produce(stack, topic, [b"m1", b"m2", b"m3"])
    client = hdfs_client(stack)
    path = f"{stack.hdfs.lake_root}/_tests/persist-{uuid.uuid4().hex}.txt"
    client.write(path, b"survives restarts")

    res, _ = cli(stack, "down")
    assert res.returncode == 0, res.stderr
    rows = status_json(stack)
    assert all(r["pid"] is None and not r["healthy"] for r in rows.values() if r["managed"])

    res, seconds = cli(stack, "up")
    assert res.returncode == 0, res.stdout + res.stderr
    assert hdfs_client(stack).read(path) == b"survives restarts"
    assert consume_all(stack, topic, 3) == [b"m1", b"m2", b"m3"]
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.delete_topics([topic])
    admin.close()
    hdfs_client(stack).delete(path)
