"""Data defects for the downstream quality rules, applied as a stage on a message stream.

The stage is seeded separately from generation, so clean data plus labelled defects are
reproducible. Each defect is drawn per eligible message with its configured probability
(at most one per message) and recorded as a label message on ``sim.labels`` placed in
the stream just before the affected message:

* ``duplicate``: the message is sent twice;
* ``out_of_order``: held back for 1-3 of the device's reporting intervals, so it arrives
  after a newer reading of the same device;
* ``late``: held back 30 minutes to 3 hours of event time (beyond watermarks);
* ``gap``: this and the device's following messages are dropped for 10 minutes-2 hours;
* ``stuck``: the device repeats this message's values (new ``ts`` and ``seq``) for
  30 minutes-3 hours;
* ``spike``: one numeric value multiplied by 5-20;
* ``out_of_range``: one value set beyond the contract's minimum or maximum;
* ``malformed_json``: the message bytes are truncated (not parseable);
* ``unknown_device``: the device id (and key) replaced by one not in the registry.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infra.serde import dumps
from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import FieldType, MessageContract
from lakehouse.time import MINUTE_MS
from mock_devices.config import ConfigError, Record

DEFECT_TYPES: tuple[str, ...] = (
    "duplicate", "out_of_order", "late", "gap", "stuck", "spike", "out_of_range",
    "malformed_json", "unknown_device",
)
LABEL_TOPIC = "sim.labels"
TELEMETRY_TOPICS: frozenset[str] = frozenset(
    m.topic for m in MESSAGES if m.topic not in (LABEL_TOPIC, "device.registry")
)
_CONTRACTS: dict[str, MessageContract] = {m.topic: m for m in MESSAGES}


def event_time(topic: str, value: dict[str, Any]) -> int | None:
    """Event time of a message by its topic's contract (None when unknown)."""
    c = _CONTRACTS.get(topic)
    ts = value.get(c.event_time_field if c else "ts")
    return ts if isinstance(ts, int) else None


@dataclass(frozen=True)
class DefectConfig:
    """Probabilities of each defect per eligible message, and their extents.

    Attributes:
        rates: Probability per message of each defect type.
        seed: Seed of the defect stage.
        topics: Topics eligible for defects (telemetry only by default).
        gap_ms: Range of gap durations.
        stuck_ms: Range of stuck durations.
        late_ms: Range of lateness.

    """

    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 42
    topics: frozenset[str] = TELEMETRY_TOPICS
    gap_ms: tuple[int, int] = (10 * MINUTE_MS, 120 * MINUTE_MS)
    stuck_ms: tuple[int, int] = (30 * MINUTE_MS, 180 * MINUTE_MS)
    late_ms: tuple[int, int] = (30 * MINUTE_MS, 180 * MINUTE_MS)

    def __post_init__(self) -> None:
        for name, rate in self.rates.items():
            if name not in DEFECT_TYPES:
                raise ConfigError(
                    f"unknown defect {name!r}; choose from {', '.join(DEFECT_TYPES)}"
                )
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"defect rate of {name} must be within 0..1, got {rate}")
        if sum(self.rates.values()) > 1.0:
            raise ConfigError("defect rates add up to more than 1")
        unknown = set(self.topics) - set(_CONTRACTS)
        if unknown:
            raise ConfigError(f"unknown topic(s) for defects: {sorted(unknown)}")

    @property
    def enabled(self) -> bool:
        """Whether any defect has a positive rate."""
        return any(r > 0 for r in self.rates.values())

    @classmethod
    def parse(cls, text: str, seed: int) -> DefectConfig:
        """Parse ``"duplicate=0.001,late=0.0005"``; ``"all=0.001"`` sets every type.

        Raises:
            ConfigError: On syntax errors, unknown names or bad rates.

        """
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(f"defect {part!r} must look like name=rate")
            try:
                rate = float(value)
            except ValueError:
                raise ConfigError(f"defect rate {value!r} is not a number") from None
            names = DEFECT_TYPES if name.strip() == "all" else (name.strip(),)
            for n in names:
                rates[n] = rate
        return cls(rates=rates, seed=seed)


class DefectStage:
    """Applies defects to a record stream; see the module docstring.

    Args:
        config: Defect rates and extents.
        intervals_ms: Reporting interval of each topic (for out-of-order delays).

    """

    def __init__(self, config: DefectConfig, intervals_ms: Mapping[str, int]) -> None:
        self.config = config
        self._rng = np.random.default_rng([config.seed, 11])
        self._intervals = dict(intervals_ms)
        names = [n for n in DEFECT_TYPES if config.rates.get(n, 0.0) > 0]
        self._names = names
        self._cum = np.cumsum([config.rates[n] for n in names]) if names else np.zeros(0)
        self._u = np.empty(0)
        self._ui = 0
        self._held: list[tuple[int, int, Record]] = []
        self._counter = 0
        self._windows: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = {}
        self.labels = 0
        self.counts: dict[str, int] = {n: 0 for n in DEFECT_TYPES}

    def _uniform(self) -> float:
        if self._ui >= len(self._u):
            self._u = self._rng.random(8192)
            self._ui = 0
        u = float(self._u[self._ui])
        self._ui += 1
        return u

    def _label(self, kind: str, topic: str, key: str, start: int, end: int,
               detail: dict[str, Any]) -> Record:
        self.labels += 1
        self.counts[kind] += 1
        label_id = f"D{self.labels:08d}"
        lab: dict[str, Any] = {"label_id": label_id, "kind": "defect", "type": kind,
               "device_id": key, "topic": topic, "start_ts": start, "end_ts": end,
               "detail": json.dumps(detail, sort_keys=True), "seed": self.config.seed}
        return (LABEL_TOPIC, label_id, lab)

    def apply(self, records: Iterable[Record]) -> Iterator[Record]:
        """Yield the stream with defects applied and their labels inserted."""
        topics = self.config.topics
        for rec in records:
            topic, key, value = rec
            ts = event_time(topic, value) if isinstance(value, dict) else None
            if ts is not None and self._held:
                yield from self._release(ts)
            if topic not in topics or not isinstance(value, dict) or ts is None:
                yield rec
                continue
            yield from self._defect(topic, key, value, ts)
        yield from self._release(None)

    def _release(self, ts: int | None) -> Iterator[Record]:
        held = self._held
        while held and (ts is None or held[0][0] <= ts):
            yield heapq.heappop(held)[2]

    def _hold(self, until: int, rec: Record) -> None:
        self._counter += 1
        heapq.heappush(self._held, (until, self._counter, rec))

    def _defect(self, topic: str, key: str, value: dict[str, Any], ts: int) -> Iterator[Record]:
        win = self._windows.get((topic, key))
        if win is not None:
            kind, until, snapshot = win
            if ts < until:
                # Inside a gap or stuck window: no further defect on this device.
                if kind == "stuck":
                    yield (topic, key, {**value, **snapshot})
                return
            del self._windows[(topic, key)]
        if not self._names:
            yield (topic, key, value)
            return
        u = self._uniform()
        if u >= self._cum[-1]:
            yield (topic, key, value)
            return
        kind = self._names[int(np.searchsorted(self._cum, u, side="right"))]
        rng = self._rng
        contract = _CONTRACTS[topic]
        if kind == "duplicate":
            yield self._label(kind, topic, key, ts, ts + 1, {})
            yield (topic, key, value)
            yield (topic, key, dict(value))
        elif kind in ("out_of_order", "late"):
            if kind == "late":
                delay = int(rng.integers(*self.config.late_ms))
            else:
                delay = int(self._intervals.get(topic, MINUTE_MS) * rng.uniform(1.05, 3.0))
            yield self._label(kind, topic, key, ts, ts + 1, {"arrives_after_ts": ts + delay})
            self._hold(ts + delay, (topic, key, value))
        elif kind in ("gap", "stuck"):
            span = self.config.gap_ms if kind == "gap" else self.config.stuck_ms
            until = ts + int(rng.integers(*span))
            frozen = {} if kind == "gap" else {
                k: v for k, v in value.items()
                if k not in (contract.key_field, contract.event_time_field, "seq")
            }
            self._windows[(topic, key)] = (kind, until, frozen)
            yield self._label(kind, topic, key, ts, until, {})
            if kind == "stuck":
                yield (topic, key, value)
        elif kind in ("spike", "out_of_range"):
            yield from self._corrupt_value(kind, contract, key, value, ts)
        elif kind == "malformed_json":
            data = dumps(value)
            cut = int(rng.integers(1, max(len(data) - 1, 2)))
            yield self._label(kind, topic, key, ts, ts + 1, {"bytes": cut})
            yield (topic, key, data[:cut])
        else:  # unknown_device
            prefix = key.split("-", 1)[0]
            fake = f"{prefix}-X{int(rng.integers(0, 10**6)):06d}"
            yield self._label(kind, topic, fake, ts, ts + 1, {"original": key})
            yield (topic, fake, {**value, contract.key_field: fake})

    def _corrupt_value(self, kind: str, contract: MessageContract, key: str,
                       value: dict[str, Any], ts: int) -> Iterator[Record]:
        rng = self._rng
        fields = [f for f in contract.fields
                  if f.type is FieldType.DOUBLE and isinstance(value.get(f.name), float | int)
                  and "energy" not in f.name
                  and (kind == "spike" or f.maximum is not None or f.minimum is not None)]
        if not fields:
            yield (contract.topic, key, value)
            return
        f = fields[int(rng.integers(0, len(fields)))]
        old = float(value[f.name])
        if kind == "spike":
            new = old * float(rng.uniform(5.0, 20.0)) if old != 0 else float(rng.uniform(50, 500))
        elif f.maximum is not None:
            new = f.maximum * 1.5 + 10.0
        else:
            assert f.minimum is not None
            new = f.minimum - abs(f.minimum) * 0.5 - 10.0
        new = float(f"{new:.6g}")
        yield self._label(kind, contract.topic, key, ts, ts + 1,
                          {"field": f.name, "original": old, "value": new})
        yield (contract.topic, key, {**value, f.name: new})
