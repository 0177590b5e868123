"""An isolated run of the lakehouse job: its own topics, tables, serving keys and REST port.

Tests and benchmarks run the real job beside whatever else uses the stack; everything the
run touches is named after a run id, so nothing it writes mixes with other runs.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

from infra.settings import GridLakeSettings
from lakehouse.contracts.messages import MESSAGES


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports nothing listens on now.

    All sockets stay bound until every port is chosen: calling :func:`free_port` ``n``
    times may return the same port twice (the OS reuses a port just released).
    """
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def isolated_run(
    stack: GridLakeSettings,
    partitions: dict[str, int] | None = None,
    lake: dict[str, Any] | None = None,
    run: str | None = None,
    **flink: Any,
) -> tuple[GridLakeSettings, dict[str, str]]:
    """Settings + job environment of an isolated run; creates the run's topics.

    Args:
        stack: The running stack's settings.
        partitions: Partitions per topic suffix (1 when not named).
        lake: Hudi table-service settings to override (``LakeSettings`` fields).
        run: Run id (default: random); topics are ``t<run>.*``, tables under
            ``<lake_root parent>/test/<run>``.
        **flink: Flink settings to override (checkpoint interval 2 s unless given).

    Returns:
        The run's settings and the environment that gives the job process the same.

    """
    from kafka.admin import KafkaAdminClient, NewTopic

    run = run or uuid.uuid4().hex[:8]
    flink = {"rest_port": free_port(), "checkpoint_interval_ms": 2000, **flink}
    lake_root = f"/gridlake/test/{run}"
    env = {
        "GRIDLAKE_KAFKA__TOPIC_PREFIX": f"t{run}.",
        "GRIDLAKE_HDFS__LAKE_ROOT": lake_root,
        "GRIDLAKE_REDIS__KEY_PREFIX": f"t{run}:",
        "GRIDLAKE_HOME": str(stack.home),
        **{f"GRIDLAKE_FLINK__{k.upper()}": str(v) for k, v in flink.items()},
        **{f"GRIDLAKE_LAKE__{k.upper()}": str(v) for k, v in (lake or {}).items()},
    }
    settings = stack.model_copy(
        update={
            "kafka": stack.kafka.model_copy(update={"topic_prefix": f"t{run}."}),
            "hdfs": stack.hdfs.model_copy(update={"lake_root": lake_root}),
            "redis": stack.redis.model_copy(update={"key_prefix": f"t{run}:"}),
            "flink": stack.flink.model_copy(update=flink),
            "lake": stack.lake.model_copy(update=lake or {}),
        }
    )
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    try:
        # The lakehouse job reads every topic, so every topic must exist.
        admin.create_topics([
            NewTopic(settings.kafka.topic_prefix + m.topic, (partitions or {}).get(m.topic, 1), 1)
            for m in MESSAGES
        ])
    finally:
        admin.close()
    return settings, env
