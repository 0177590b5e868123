"""Look-ups over every declared contract."""

from __future__ import annotations

from lakehouse.contracts.messages import MESSAGES
from lakehouse.contracts.schema import MessageContract, TableContract, TopicSpec
from lakehouse.contracts.tables import TABLES

QUARANTINE_TOPIC = TopicSpec(
    "quarantine", description="Messages rejected before reaching a table (dead letters)."
)


def all_topics() -> list[TopicSpec]:
    """Every topic GridLake creates (names without the configured prefix)."""
    topics = [
        TopicSpec(m.topic, compacted=m.compacted, description=m.description) for m in MESSAGES
    ]
    return [*topics, QUARANTINE_TOPIC]


def message(name: str) -> MessageContract:
    """The message contract called ``name``."""
    for m in MESSAGES:
        if m.name == name:
            return m
    raise KeyError(f"unknown message contract {name!r}")


def table(name: str) -> TableContract:
    """The table contract called ``name``."""
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(f"unknown table {name!r}")
