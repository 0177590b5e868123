"""Helpers shared by the simulator tests (no test functions here)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import MessageContract
from mock_devices.config import Record

CONTRACTS: dict[str, MessageContract] = {m.topic: m for m in MESSAGES}


def by_topic(records: Iterable[Record]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, _, value in records:
        assert isinstance(value, dict)
        out[topic].append(value)
    return out


def index(records: Iterable[Record]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Messages keyed by (topic, key, event time)."""
    out = {}
    for topic, key, value in records:
        assert isinstance(value, dict)
        ts = value[CONTRACTS[topic].event_time_field]
        out[(topic, key, ts)] = value
    return out


Msg = tuple[str, str, dict[str, Any]]


def dicts(records: Iterable[Record]) -> list[Msg]:
    """The records as (topic, key, dict); fails on raw (malformed) values."""
    out: list[Msg] = []
    for topic, key, value in records:
        assert isinstance(value, dict)
        out.append((topic, key, value))
    return out


def labels_of(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Label messages of a stream."""
    return [v for t, _, v in records if t == "sim.labels" and isinstance(v, dict)]
