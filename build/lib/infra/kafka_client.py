"""Sinks for record streams: Kafka (:class:`Publisher`), JSON lines and a counting null sink.

:class:`Publisher` wraps kafka-python's ``KafkaProducer`` with batching and compression
from ``settings.simulator``, ``acks=all`` and idempotence. Every send gets delivery
callbacks that count successes and failures per topic; failed records are re-sent with
backoff when the run is closed, and whatever still fails is counted and reported, never
dropped silently. When Kafka cannot be reached the constructor retries with exponential
backoff and then raises :class:`KafkaUnavailableError` before anything is sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from kafka.errors import KafkaError

from infra.serde import BACKEND, dumps, encode

log = logging.getLogger(__name__)


class KafkaUnavailableError(RuntimeError):
    """Kafka could not be reached within the configured attempts."""


@dataclass
class PublishReport:
    """What a sink did with a stream.

    Attributes:
        destination: Where messages went (bootstrap servers, file path, "null").
        sent: Messages handed to the sink per topic (topic names without prefix).
        delivered: Messages acknowledged per topic.
        failed: Messages finally not delivered per topic.
        retried: Re-send attempts of failed messages.
        bytes: Serialised value bytes handed to the sink.
        elapsed_s: Wall time from the first send until everything was flushed.
        errors: A sample of delivery error messages.
        aborted: Why the run stopped early (Kafka went away), if it did.

    """

    destination: str
    sent: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    aborted: str | None = None

    @property
    def total_sent(self) -> int:
        """Messages handed to the sink."""
        return sum(self.sent.values())

    @property
    def total_delivered(self) -> int:
        """Messages acknowledged."""
        return sum(self.delivered.values())

    @property
    def total_failed(self) -> int:
        """Messages not delivered."""
        return sum(self.failed.values())

    @property
    def rate(self) -> float:
        """Delivered messages per second of wall time."""
        return self.total_delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "destination": self.destination, "sent": dict(self.sent),
            "delivered": dict(self.delivered), "failed": dict(self.failed),
            "retried": self.retried, "bytes": self.bytes,
            "elapsed_s": round(self.elapsed_s, 3), "rate_msgs_per_s": round(self.rate, 1),
            "total_sent": self.total_sent, "total_delivered": self.total_delivered,
            "total_failed": self.total_failed, "errors": self.errors[:10],
            "aborted": self.aborted,
        }


class Sink(Protocol):
    """Where a run's records go."""

    def send(self, topic: str, key: str, value: dict[str, Any] | bytes) -> None:
        """Hand one record over (topic without prefix)."""

    def progress(self) -> tuple[int, int, int]:
        """(sent, delivered, failed) so far."""

    def close(self) -> PublishReport:
        """Flush everything and report."""


class _CountingSink:
    def __init__(self, destination: str) -> None:
        self._report = PublishReport(destination)
        self._sent: Counter[str] = Counter()
        self._bytes = 0
        self._t0: float | None = None

    def progress(self) -> tuple[int, int, int]:
        n = sum(self._sent.values())
        return n, n, 0

    def _count(self, topic: str, data: bytes) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self._sent[topic] += 1
        self._bytes += len(data)

    def _finish(self) -> PublishReport:
        r = self._report
        r.sent = dict(self._sent)
        r.delivered = dict(self._sent)
        r.bytes = self._bytes
        r.elapsed_s = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        return r


class NullSink(_CountingSink):
    """Serialises and counts records, sends nothing (generation benchmarks, dry runs)."""

    def __init__(self) -> None:
        super().__init__("null")

    def send(self, topic: str, key: str, value: dict[str, Any] | bytes) -> None:
        """Serialise and count one record."""
        self._count(topic, encode(value))

    def close(self) -> PublishReport:
        """Report the counts."""
        return self._finish()


class JsonlSink(_CountingSink):
    """Writes ``{"topic", "key", "value"}`` lines to a file (``value`` is the JSON text)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] = path.open("wb")

    def send(self, topic: str, key: str, value: dict[str, Any] | bytes) -> None:
        """Write one record."""
        data = encode(value)
        self._count(topic, data)
        line = {"topic": topic, "key": key, "value": data.decode("utf-8", "replace")}
        self._fh.write(dumps(line) + b"\n")

    def close(self) -> PublishReport:
        """Close the file and report."""
        self._fh.close()
        return self._finish()


ProducerFactory = Callable[..., Any]


class Publisher:
    """Publishes records to Kafka; see the module docstring.

    Args:
        bootstrap: Kafka bootstrap servers.
        topic_prefix: Prefix of every topic name.
        linger_ms: Producer linger (batching delay).
        batch_size: Producer batch size in bytes.
        compression: Producer compression type ("gzip", "none", ...).
        connect_attempts: Connection attempts before giving up.
        backoff_s: First backoff between attempts (doubles each time).
        resend_attempts: Rounds of re-sending failed records at close.
        delivery_timeout_ms: Producer delivery timeout per record (internal retries).
        max_block_ms: How long a send may block on metadata or a full buffer.
        max_send_errors: Consecutive failing sends after which Kafka counts as gone and
            :meth:`send` raises :class:`KafkaUnavailableError`.
        connect_timeout_s: How long one connection attempt waits for the cluster.
        producer_factory: Builds the producer (tests pass a fake).
        sleep: Sleep function (tests pass a fake).

    """

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str,
        *,
        linger_ms: int = 20,
        batch_size: int = 262144,
        compression: str | None = "gzip",
        connect_attempts: int = 5,
        backoff_s: float = 1.0,
        resend_attempts: int = 3,
        delivery_timeout_ms: int = 120_000,
        max_block_ms: int = 30_000,
        max_send_errors: int = 3,
        connect_timeout_s: float = 5.0,
        producer_factory: ProducerFactory | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = topic_prefix
        self._sleep = sleep
        self._backoff = backoff_s
        self._resend_attempts = resend_attempts
        self.config: dict[str, Any] = {
            "bootstrap_servers": bootstrap.split(","),
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "compression_type": None if compression in (None, "", "none") else compression,
            "acks": "all",
            "enable_idempotence": True,
            "delivery_timeout_ms": delivery_timeout_ms,
            "request_timeout_ms": min(30_000, delivery_timeout_ms - linger_ms),
            "max_block_ms": max_block_ms,
            "bootstrap_timeout_ms": int(connect_timeout_s * 1000),
            "client_id": "gridlake-simulator",
        }
        if producer_factory is None:
            from kafka import KafkaProducer

            producer_factory = KafkaProducer
        self._producer = self._connect(producer_factory, connect_attempts)
        self._topics: dict[str, str] = {}
        self._logical: dict[str, str] = {}
        self._sent: Counter[str] = Counter()
        self._delivered: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._bytes = 0
        self._retry: list[tuple[str, bytes, bytes]] = []
        self._retry_lock = threading.Lock()
        self._errors: list[str] = []
        self._retried = 0
        self._t0: float | None = None
        self._max_send_errors = max_send_errors
        self._send_errors = 0

    @classmethod
    def from_settings(cls, settings: Any, *, topic_prefix: str | None = None,
                      **kwargs: Any) -> Publisher:
        """Build from ``GridLakeSettings`` (kafka and simulator sections)."""
        sim = settings.simulator
        return cls(
            settings.kafka.bootstrap,
            settings.kafka.topic_prefix if topic_prefix is None else topic_prefix,
            linger_ms=sim.linger_ms, batch_size=sim.batch_size, compression=sim.compression,
            **kwargs,
        )

    def _connect(self, factory: ProducerFactory, attempts: int) -> Any:
        delay = self._backoff
        last: Exception | None = None
        t0 = time.monotonic()
        for attempt in range(1, max(attempts, 1) + 1):
            try:
                return factory(**self.config)
            except (KafkaError, OSError) as e:
                last = e
                log.warning("Kafka at %s unreachable (attempt %d/%d): %s", self.bootstrap,
                            attempt, attempts, e)
                if attempt < attempts:
                    self._sleep(delay)
                    delay *= 2
        raise KafkaUnavailableError(
            f"Kafka at {self.bootstrap} is unreachable after {attempts} attempts over "
            f"{time.monotonic() - t0:.0f} s ({type(last).__name__}: {last}); nothing was sent"
        )

    def _full(self, topic: str) -> str:
        full = self._topics.get(topic)
        if full is None:
            full = self.prefix + topic
            self._topics[topic] = full
            self._logical[full] = topic
        return full

    def _on_ok(self, md: Any) -> None:
        self._delivered[self._logical.get(md.topic, md.topic)] += 1

    def _on_error(self, full: str, key: bytes, data: bytes, exc: BaseException) -> None:
        with self._retry_lock:
            self._retry.append((full, key, data))
            if len(self._errors) < 100:
                self._errors.append(f"{type(exc).__name__}: {exc}")

    def send(self, topic: str, key: str, value: dict[str, Any] | bytes) -> None:
        """Send one record asynchronously; delivery failures are re-sent at close.

        Raises:
            KafkaUnavailableError: After ``max_send_errors`` consecutive sends failed
                outright (no metadata, buffer full for ``max_block_ms``).

        """
        if self._t0 is None:
            self._t0 = time.perf_counter()
        full = self._full(topic)
        data = encode(value)
        kb = key.encode()
        self._sent[topic] += 1
        self._bytes += len(data)
        if self._send_raw(full, kb, data):
            self._send_errors = 0
            return
        self._send_errors += 1
        if self._send_errors >= self._max_send_errors:
            raise KafkaUnavailableError(
                f"Kafka at {self.bootstrap} stopped accepting messages "
                f"({self._errors[-1] if self._errors else 'send failed'})"
            )

    def _send_raw(self, full: str, kb: bytes, data: bytes) -> bool:
        try:
            fut = self._producer.send(full, value=data, key=kb)
        except Exception as e:  # metadata timeout or buffer full: re-sent at close
            self._on_error(full, kb, data, e)
            return False
        fut.add_callback(self._on_ok)
        fut.add_errback(self._on_error, full, kb, data)
        return True

    def progress(self) -> tuple[int, int, int]:
        """(sent, delivered, failed-so-far incl. pending retries)."""
        return sum(self._sent.values()), sum(self._delivered.values()), len(self._retry)

    def _flush(self) -> None:
        try:
            self._producer.flush()
        except Exception as e:  # a timed-out flush leaves failures to the errbacks
            log.warning("flush failed: %s", e)

    def close(self) -> PublishReport:
        """Flush, re-send failures with backoff, close the producer and report."""
        delay = self._backoff
        try:
            self._flush()
            for attempt in range(self._resend_attempts):
                with self._retry_lock:
                    pending, self._retry = self._retry, []
                if not pending:
                    break
                log.warning("re-sending %d failed records (round %d/%d)", len(pending),
                            attempt + 1, self._resend_attempts)
                self._sleep(delay)
                delay *= 2
                self._retried += len(pending)
                for n, (full, kb, data) in enumerate(pending):
                    if not self._send_raw(full, kb, data):
                        # Kafka refuses sends outright: keep the rest for the report.
                        with self._retry_lock:
                            self._retry.extend(pending[n + 1:])
                        break
                self._flush()
        finally:
            elapsed = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
            try:
                self._producer.close(timeout=10)
            except Exception as e:  # closing must not hide the report
                log.warning("closing the producer failed: %s", e)
        with self._retry_lock:
            for full, _, _ in self._retry:
                self._failed[self._logical.get(full, full)] += 1
            self._retry = []
        if self._failed:
            log.error("%d records were not delivered: %s", sum(self._failed.values()),
                      dict(self._failed))
        return PublishReport(
            destination=self.bootstrap, sent=dict(self._sent), delivered=dict(self._delivered),
            failed=dict(self._failed), retried=self._retried, bytes=self._bytes,
            elapsed_s=elapsed, errors=list(self._errors),
        )


def serializer_backend() -> str:
    """Name of the JSON library used for messages."""
    return BACKEND


def create_topics(
    bootstrap: str,
    prefix: str,
    topics: list[tuple[str, bool]],
    *,
    partitions: int = 2,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create ``prefix + name`` for each ``(name, compacted)`` that does not exist yet.

    Returns:
        The full names of the topics created now.

    Raises:
        KafkaUnavailableError: When Kafka cannot be reached.

    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","),
                                 client_id="gridlake-simulator-admin",
                                 request_timeout_ms=int(timeout_s * 1000),
                                 bootstrap_timeout_ms=int(timeout_s * 1000))
    except KafkaError as e:
        raise KafkaUnavailableError(f"Kafka at {bootstrap} is unreachable: {e}") from e
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(prefix + name, num_partitions=partitions,
                     replication_factor=replication_factor,
                     topic_configs={"cleanup.policy": "compact"} if compacted else {})
            for name, compacted in topics if prefix + name not in existing
        ]
        if new:
            try:
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in new]
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str], timeout_s: float = 30.0) -> None:
    """Delete topics (used by the benchmark to clean up after itself)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","),
                             client_id="gridlake-simulator-admin")
    try:
        admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()
