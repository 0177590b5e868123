from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from infra.kafka_client import JsonlSink, KafkaUnavailableError, NullSink, Publisher
from infra.serde import loads
from mock_devices.runner import run_stream


class FakeFuture:
    def __init__(self) -> None:
        self.ok: list[Any] = []
        self.err: list[Any] = []

    def add_callback(self, f: Any, *args: Any) -> None:
        self.ok.append((f, args))

    def add_errback(self, f: Any, *args: Any) -> None:
        self.err.append((f, args))


class Meta:
    def __init__(self, topic: str) -> None:
        self.topic = topic


class FakeProducer:
    """Resolves futures at flush; ``fail`` decides per (topic, attempt) whether it fails."""

    def __init__(self, fail: Any = None, refuse_sends: bool = False, **config: Any) -> None:
        self.config = config
        self.fail = fail or (lambda topic, n: False)
        self.refuse = refuse_sends
        self.pending: list[tuple[str, bytes, bytes, FakeFuture]] = []
        self.delivered: list[tuple[str, bytes, bytes]] = []
        self.attempts: dict[bytes, int] = {}
        self.closed = False

    def send(self, topic: str, value: bytes, key: bytes) -> FakeFuture:
        if self.refuse:
            raise KafkaTimeoutError("no metadata")
        fut = FakeFuture()
        self.pending.append((topic, key, value, fut))
        return fut

    def flush(self, timeout: float | None = None) -> None:
        pending, self.pending = self.pending, []
        for topic, key, value, fut in pending:
            n = self.attempts.get(value, 0)
            self.attempts[value] = n + 1
            if self.fail(topic, n):
                for f, args in fut.err:
                    f(*args, RuntimeError("broker said no"))
            else:
                self.delivered.append((topic, key, value))
                for f, args in fut.ok:
                    f(*args, Meta(topic))

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def _publisher(producer: FakeProducer, sleeps: list[float] | None = None) -> Publisher:
    return Publisher(
        "k:9092",
        "t.",
        producer_factory=lambda **cfg: producer,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


RECS = [("meter.readings", f"M{i}", {"device_id": f"M{i}", "ts": i}) for i in range(10)] + [
    ("ess.bms", "E1", b"{broken")
]


def test_counts_per_topic_and_config() -> None:
    prod = FakeProducer()
    pub = _publisher(prod)
    report = run_stream(iter(RECS), pub)
    assert report.sent == {"meter.readings": 10, "ess.bms": 1}
    assert report.delivered == report.sent and report.total_failed == 0
    assert {t for t, _, _ in prod.delivered} == {"t.meter.readings", "t.ess.bms"}
    assert prod.delivered[0][1] == b"M0" and loads(prod.delivered[0][2])["device_id"] == "M0"
    assert prod.delivered[-1][2] == b"{broken"
    assert pub.config["acks"] == "all" and pub.config["compression_type"] == "gzip"
    assert prod.closed


def test_transient_failures_are_resent() -> None:
    prod = FakeProducer(fail=lambda topic, n: n == 0 and topic == "t.ess.bms")
    sleeps: list[float] = []
    report = run_stream(iter(RECS), _publisher(prod, sleeps))
    assert report.total_delivered == 11 and report.total_failed == 0 and report.retried == 1
    assert sleeps == [1.0]
    assert report.errors == ["RuntimeError: broker said no"]


def test_permanent_failures_are_counted_not_dropped() -> None:
    prod = FakeProducer(fail=lambda topic, n: topic == "t.meter.readings")
    sleeps: list[float] = []
    report = run_stream(iter(RECS), _publisher(prod, sleeps))
    assert report.failed == {"meter.readings": 10}
    assert report.delivered == {"ess.bms": 1}
    assert report.retried == 30 and sleeps == [1.0, 2.0, 4.0]
    assert report.to_dict()["total_failed"] == 10


def test_unreachable_kafka_backs_off_then_fails_clearly() -> None:
    sleeps: list[float] = []
    calls: list[int] = []

    def factory(**cfg: Any) -> Any:
        calls.append(1)
        raise KafkaTimeoutError("Unable to bootstrap")

    with pytest.raises(KafkaUnavailableError, match="unreachable after 4 attempts"):
        Publisher("k:9092", "t.", connect_attempts=4, producer_factory=factory, sleep=sleeps.append)
    assert len(calls) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_configuration_errors_are_not_retried() -> None:
    def factory(**cfg: Any) -> Any:
        raise ValueError("Unrecognized configs")

    with pytest.raises(ValueError):
        Publisher("k:9092", "t.", producer_factory=factory)


def test_kafka_going_away_stops_the_run_and_reports() -> None:
    prod = FakeProducer(refuse_sends=True)
    report = run_stream(iter(RECS), _publisher(prod))
    assert report.aborted and "stopped accepting" in report.aborted
    assert report.total_sent == 3 and report.total_failed == 3


def test_file_and_null_sinks(tmp_path: Path) -> None:
    path = tmp_path / "out" / "x.jsonl"
    report = run_stream(iter(RECS), JsonlSink(path))
    lines = [loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) == 11 and report.total_delivered == 11
    assert loads(lines[0]["value"]) == RECS[0][2] and lines[-1]["value"] == "{broken"
    assert run_stream(iter(RECS), NullSink()).sent == {"meter.readings": 10, "ess.bms": 1}
