"""Consumer lag: how far a Kafka consumer group is behind the end of its topics.

The lag of a group on a partition is the partition's end offset minus the offset the group
committed; a partition without a commit counts end minus beginning (a job started now
would begin at the earliest retained record). A streaming job commits its offsets when a
checkpoint completes, after every sink flushed: once a group's lag is 0, everything
published before is in the lake (:func:`wait_caught_up`).

:func:`topic_lags` is the arithmetic (no service); :func:`consumer_lag` asks Kafka.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from infra.kafka_client import KafkaUnavailableError
from infra.settings import GridLakeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionLag:
    """Lag of the consumer group on one partition.

    Attributes:
        partition: Partition number.
        end_offset: Offset of the next record to be written.
        committed: Offset the group committed, or None when it committed none.
        lag: Records not yet consumed: ``end - committed``; without a commit
            ``end - beginning`` (the job starts at the earliest retained record).

    """

    partition: int
    end_offset: int
    committed: int | None
    lag: int


@dataclass(frozen=True)
class TopicLag:
    """Lag of the consumer group on one topic, summed over its partitions.

    Attributes:
        topic: Full topic name.
        exists: Whether the topic exists.
        end_offset: Sum of the partitions' end offsets.
        committed: Sum of the committed offsets (partitions without a commit count 0).
        lag: Sum of the partitions' lags.
        uncommitted: Partitions the group has no committed offset for.
        partitions: Per-partition detail.

    """

    topic: str
    exists: bool
    end_offset: int = 0
    committed: int = 0
    lag: int = 0
    uncommitted: int = 0
    partitions: tuple[PartitionLag, ...] = ()


def topic_lags(
    topics: Sequence[str],
    partitions: Mapping[str, Iterable[int]],
    end: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int],
    beginning: Mapping[tuple[str, int], int] | None = None,
) -> list[TopicLag]:
    """Lag per topic from per-partition offsets.

    Args:
        topics: Topics to report, in order.
        partitions: Partitions of each existing topic (a topic missing here, or with no
            partitions, is reported with ``exists=False``).
        end: End offset of every partition, keyed by ``(topic, partition)``.
        committed: Committed offset of the partitions the group committed.
        beginning: Earliest retained offset per partition (used where nothing was
            committed; 0 when absent).

    Returns:
        One :class:`TopicLag` per topic. Lag never goes below 0 (a committed offset
        beyond the end means the topic was recreated).

    """
    begin = beginning or {}
    out = []
    for topic in topics:
        parts = sorted(partitions.get(topic) or ())
        if not parts:
            out.append(TopicLag(topic=topic, exists=False))
            continue
        rows = []
        for p in parts:
            end_off = end.get((topic, p), 0)
            done = committed.get((topic, p))
            start = done if done is not None else begin.get((topic, p), 0)
            rows.append(PartitionLag(p, end_off, done, max(0, end_off - start)))
        out.append(
            TopicLag(
                topic=topic,
                exists=True,
                end_offset=sum(r.end_offset for r in rows),
                committed=sum(r.committed or 0 for r in rows),
                lag=sum(r.lag for r in rows),
                uncommitted=sum(1 for r in rows if r.committed is None),
                partitions=tuple(rows),
            )
        )
    return out


def _group_offsets(admin: Any, group_id: str, timeout_s: float) -> dict[Any, Any]:
    """Committed offsets of a group, retrying Kafka's retriable errors until ``timeout_s``.

    A fresh broker answers the first group request with COORDINATOR_NOT_AVAILABLE while
    it creates ``__consumer_offsets``; that is "not yet", not "unavailable".
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fetch = getattr(admin, "list_consumer_group_offsets", None)  # kafka-python 2.x
            if fetch is not None:
                return dict(fetch(group_id))
            # kafka-python 3.x
            return dict(admin.list_group_offsets({group_id: None}).get(group_id, {}))
        except KafkaError as err:
            if not err.retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def consumer_lag(
    settings: GridLakeSettings, group_id: str, topics: Sequence[str], timeout_s: float = 5.0
) -> list[TopicLag]:
    """Committed offsets of ``group_id`` against the end offsets of ``topics``.

    Raises:
        KafkaUnavailableError: Kafka cannot be reached or refuses the requests (the
            message names the bootstrap servers).

    """
    timeout_ms = int(timeout_s * 1000)
    common = {
        "bootstrap_servers": settings.kafka.bootstrap,
        "client_id": "gridlake-monitor",
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
    }
    admin = consumer = None
    try:
        admin = KafkaAdminClient(**common)
        raw = _group_offsets(admin, group_id, timeout_s)
        committed = {
            (tp.topic, tp.partition): int(om.offset)
            for tp, om in raw.items() if om is not None and om.offset >= 0
        }
        consumer = KafkaConsumer(
            **common, enable_auto_commit=False, allow_auto_create_topics=False
        )
        parts = {t: sorted(consumer.partitions_for_topic(t) or ()) for t in topics}
        tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
        end = consumer.end_offsets(tps, timeout_ms=timeout_ms) if tps else {}
        begin = consumer.beginning_offsets(tps, timeout_ms=timeout_ms) if tps else {}
    except Exception as err:  # kafka-python raises many unrelated error types
        text = str(err) if type(err).__name__ in str(err) else f"{type(err).__name__}: {err}"
        raise KafkaUnavailableError(f"Kafka {settings.kafka.bootstrap}: {text}") from err
    finally:
        for client in (consumer, admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken client
                    log.debug("closing a Kafka client failed", exc_info=True)
    return topic_lags(
        topics,
        parts,
        {(tp.topic, tp.partition): int(o) for tp, o in end.items()},
        committed,
        {(tp.topic, tp.partition): int(o) for tp, o in begin.items()},
    )


def wait_caught_up(
    settings: GridLakeSettings, group_id: str, topics: Sequence[str], timeout_s: float,
    poll_s: float = 0.5,
) -> list[tuple[float, int]]:
    """Block until ``group_id`` has committed the end of every topic in ``topics``.

    A streaming job commits its offsets when a checkpoint completes, after every sink
    flushed: once committed equals end, everything published is in the lake.

    Returns:
        The samples taken: (monotonic time, total lag), the last one with lag 0.

    Raises:
        TimeoutError: Still behind after ``timeout_s``; the message names the lag per topic.
        KafkaUnavailableError: Kafka cannot be reached.

    """
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        lags = consumer_lag(settings, group_id, topics, timeout_s=30)
        behind = {t.topic: t.lag for t in lags if t.lag}
        samples.append((time.monotonic(), sum(behind.values())))
        if not behind:
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group_id} did not catch up in {timeout_s:.0f} s: {behind}")
        time.sleep(poll_s)
