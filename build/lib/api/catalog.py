"""The device catalog: the latest version of every device, from the registry topic.

The ``device.registry`` topic is log-compacted and keyed by device id, so reading it from
the beginning gives every device's latest version: the same records that flow into
``dim_device``. A background thread reads it (no consumer group: every worker reads the
whole topic) and then follows it, so a device created through the API — or by any other
producer — appears in every worker. Records that violate the message contract are skipped,
as the streaming job quarantines them.

The catalog answers what the API must know on every request without a lake query: does
an entity exist, and which region is it in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from infra.serde import loads
from infra.settings import GridLakeSettings
from lakehouse.contracts.messages import DEVICE_REGISTRY

log = logging.getLogger(__name__)


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether registry record ``a`` supersedes ``b`` (higher version, then later ts)."""
    return (a.get("version", 0), a.get("ts", 0)) >= (b.get("version", 0), b.get("ts", 0))


class DeviceCatalog:
    """Latest registry record per device, kept up to date from Kafka."""

    def __init__(self, settings: GridLakeSettings) -> None:
        self.topic = settings.kafka.topic_prefix + DEVICE_REGISTRY.topic
        self.bootstrap = settings.kafka.bootstrap
        self._devices: dict[str, dict[str, Any]] = {}
        self._regions: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = "not started"
        self.skipped = 0
        self._on_move: list[Callable[[], None]] = []

    # ----------------------------------------------------------------------- state
    @property
    def loaded(self) -> bool:
        """Whether the topic was read up to its end at least once."""
        return self._loaded.is_set()

    def wait_loaded(self, timeout: float) -> bool:
        """Block until loaded (or timeout); returns :attr:`loaded`."""
        return self._loaded.wait(timeout)

    def apply(self, record: dict[str, Any]) -> bool:
        """Take a registry record; returns whether it became the device's current one."""
        if DEVICE_REGISTRY.validate(record) is not None:
            self.skipped += 1
            return False
        with self._lock:
            cur = self._devices.get(record["device_id"])
            if cur is not None and not _newer(record, cur):
                return False
            self._devices[record["device_id"]] = dict(record)
            self._regions.add(record["region_id"])
        if cur is not None and cur.get("region_id") != record["region_id"]:
            for callback in self._on_move:
                callback()
        return True

    def on_region_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when a device changes region (who may see it changes)."""
        self._on_move.append(callback)

    def get(self, device_id: str) -> dict[str, Any] | None:
        """The device's current record (a copy), or None."""
        with self._lock:
            rec = self._devices.get(device_id)
            return dict(rec) if rec is not None else None

    def devices(self) -> list[dict[str, Any]]:
        """Every device's current record (copies), by id."""
        with self._lock:
            return [dict(self._devices[k]) for k in sorted(self._devices)]

    def regions(self) -> set[str]:
        """Every region a device is (or was) in."""
        with self._lock:
            return set(self._regions)

    def __len__(self) -> int:
        return len(self._devices)

    def entity(self, entity_type: str, entity_id: str) -> tuple[bool, str | None]:
        """(known, region) of an indicator entity: a region or a device of that type."""
        if entity_type == "region":
            return entity_id in self._regions, entity_id
        rec = self._devices.get(entity_id)
        if rec is None or rec.get("device_type") != entity_type:
            return False, None
        return True, rec.get("region_id")

    def region_of(self, entity_type: str | None, entity_id: str) -> str | None:
        """Region of an entity (None when unknown); a region is its own region."""
        if entity_type == "region":
            return entity_id
        rec = self._devices.get(entity_id)
        return None if rec is None else rec.get("region_id")

    # ---------------------------------------------------------------------- reading
    def start(self) -> None:
        """Start following the topic in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="device-catalog",
                                            daemon=True)
            self._thread.start()

    def stop(self, wait_s: float = 0.3) -> None:
        """Stop following; waits at most ``wait_s``.

        A daemon thread still connecting to an unreachable broker ends on its own once
        the attempt fails.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait_s)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._follow()
                return
            except Exception as err:  # noqa: BLE001 - Kafka errors of any kind: retry
                self.error = f"{type(err).__name__}: {err}"
                log.warning("device catalog: %s; retrying in %.1f s", self.error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _follow(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","), enable_auto_commit=False,
            group_id=None, client_id="gridlake-api-catalog", request_timeout_ms=10_000,
            consumer_timeout_ms=1000,
        )
        try:
            parts = consumer.partitions_for_topic(self.topic)
            deadline = time.monotonic() + 10
            while not parts and time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.2)  # metadata of a topic created a moment ago
                parts = consumer.partitions_for_topic(self.topic)
            if not parts:
                raise RuntimeError(f"topic {self.topic} does not exist")
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            ends = consumer.end_offsets(tps)
            self.error = None
            while not self._stop.is_set():
                for batch in consumer.poll(timeout_ms=250, max_records=5000).values():
                    for msg in batch:
                        self._take(msg.value)
                if not self._loaded.is_set() and all(
                        consumer.position(tp) >= ends[tp] for tp in tps):
                    log.info("device catalog loaded: %d devices from %s", len(self), self.topic)
                    self._loaded.set()
        finally:
            consumer.close()

    def _take(self, value: bytes | None) -> None:
        if not value:
            return
        try:
            record = loads(value)
        except ValueError:
            self.skipped += 1
            return
        if isinstance(record, dict):
            self.apply(record)
        else:
            self.skipped += 1
