"""Consumer lag (infra.kafka_lag): the arithmetic on offsets, the group-offset retries, and
(``-m integration``) the lag of a group on the real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka.errors import CoordinatorNotAvailableError, GroupAuthorizationFailedError

from infra.kafka_client import KafkaUnavailableError
from infra.kafka_lag import _group_offsets, consumer_lag, topic_lags
from infra.settings import GridLakeSettings
from tests.infra.kafka_offsets import committed_group, delete_topics


def test_topic_lag_is_end_minus_committed() -> None:
    lags = topic_lags(
        ["a", "b", "gone"],
        {"a": [0, 1], "b": [0]},
        end={("a", 0): 100, ("a", 1): 50, ("b", 0): 10},
        committed={("a", 0): 90, ("a", 1): 50},
        beginning={("b", 0): 4},
    )
    a, b, gone = lags
    assert (a.exists, a.end_offset, a.committed, a.lag, a.uncommitted) == (True, 150, 140, 10, 0)
    assert [(p.partition, p.lag) for p in a.partitions] == [(0, 10), (1, 0)]
    # nothing committed: the job would start at the earliest retained record
    assert (b.lag, b.committed, b.uncommitted, b.partitions[0].committed) == (6, 0, 1, None)
    assert not gone.exists and gone.lag == 0
    # a committed offset past the end (topic recreated) never gives a negative lag
    (c,) = topic_lags(["c"], {"c": [0]}, {("c", 0): 5}, {("c", 0): 9})
    assert c.lag == 0


def test_group_offsets_retries_a_coordinator_still_loading() -> None:
    class Admin:
        """Answers like a fresh broker: twice 'coordinator not available', then offsets."""

        def __init__(self, error: Exception) -> None:
            self.calls, self.error = 0, error

        def list_group_offsets(self, groups: dict) -> dict:
            self.calls += 1
            if self.calls < 3:
                raise self.error
            return {next(iter(groups)): {"tp": 5}}

    admin = Admin(CoordinatorNotAvailableError())
    assert _group_offsets(admin, "g", timeout_s=5) == {"tp": 5} and admin.calls == 3
    with pytest.raises(GroupAuthorizationFailedError):  # not retriable: raised at once
        _group_offsets(Admin(GroupAuthorizationFailedError()), "g", timeout_s=5)


def test_unreachable_kafka_is_named(settings: GridLakeSettings) -> None:
    with pytest.raises(KafkaUnavailableError, match=settings.kafka.bootstrap):
        consumer_lag(settings, "g", ["t"], timeout_s=1)


# ---------------------------------------------------------------------------------------
# Integration: real Kafka
# ---------------------------------------------------------------------------------------
@pytest.fixture
def isolated(stack: GridLakeSettings) -> Iterator[GridLakeSettings]:
    """The stack's settings with this test's own topic prefix (its topics removed after)."""
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(
        update={"kafka": stack.kafka.model_copy(update={"topic_prefix": f"m{run}."})})
    yield settings
    delete_topics(settings)


@pytest.mark.integration
def test_lag_of_a_group_that_committed(isolated: GridLakeSettings) -> None:
    s = isolated
    g = committed_group(s)
    topic, other = g.topic, g.other
    lags = {t.topic: t for t in consumer_lag(s, g.group,
                                             [topic, other, s.kafka.topic_prefix + "x"])}
    t = lags[topic]
    assert (t.end_offset, t.committed, t.lag, t.uncommitted) == (30, 26, 4, 0)
    assert [(p.partition, p.end_offset, p.committed, p.lag) for p in t.partitions] == [
        (0, 15, 11, 4), (1, 15, 15, 0)]
    assert (lags[other].lag, lags[other].uncommitted) == (4, 1)  # never committed
    assert not lags[s.kafka.topic_prefix + "x"].exists
