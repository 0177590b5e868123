"""A consumer group with committed offsets on the real Kafka, shared by the lag and the
``gridlake stream status`` integration tests."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from infra.settings import GridLakeSettings


@dataclass(frozen=True)
class CommittedGroup:
    """Topics written by :func:`committed_group` and the group that committed on them.

    Attributes:
        topic: 2 partitions, 15 records each; the group committed 11 and 15 (lag 4).
        other: 1 partition, 4 records; the group never committed (lag 4, uncommitted).
        group: The lakehouse job's group under the settings' prefix.

    """

    topic: str
    other: str
    group: str


def committed_group(s: GridLakeSettings) -> CommittedGroup:
    """Create and fill two topics under ``s``'s prefix; commit offsets on one of them."""
    topic, other = s.kafka.topic_prefix + "meter.readings", s.kafka.topic_prefix + "other"
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1), NewTopic(other, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap, acks="all")
    for i in range(30):
        producer.send(topic, value=b"x", partition=i % 2)
    for _ in range(4):
        producer.send(other, value=b"y", partition=0)
    producer.flush()
    producer.close()

    group = s.kafka.topic_prefix + "lakehouse"
    consumer = KafkaConsumer(bootstrap_servers=s.kafka.bootstrap, group_id=group,
                             enable_auto_commit=False)
    consumer.commit({
        TopicPartition(topic, 0): OffsetAndMetadata(11, "", -1),
        TopicPartition(topic, 1): OffsetAndMetadata(15, "", -1),
    })
    consumer.close()
    return CommittedGroup(topic, other, group)


def delete_topics(s: GridLakeSettings) -> None:
    """Delete every topic under ``s``'s prefix."""
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(s.kafka.topic_prefix)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()
