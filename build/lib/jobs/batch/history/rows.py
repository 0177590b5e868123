"""What an imported message becomes: its synthetic Kafka position and its table row.

An imported row has no Kafka position, so it gets one that is the same on every import of
the same file: topic ``import:<topic>`` (:func:`import_topic`), partition and offset base
from the file's SHA-256 (:func:`file_position`), the row's index in the low
:data:`ROW_BITS` bits of the offset. :func:`stored_row` makes its ODS row (valid) or its
quarantine row (rejected), as the stream's ODS step would.
"""

from __future__ import annotations

import json
from typing import Any

from lakehouse.contracts.schema import MessageContract, TableContract
from lakehouse.contracts.tables import ODS_TABLES, QUARANTINE
from lakehouse.time import dt_of

#: Prefix of the synthetic topic of imported rows (not a legal Kafka topic character).
IMPORT_TOPIC_PREFIX = "import:"
#: ``lateness`` of imported rows (see the ODS contract).
IMPORTED_LATENESS = "on_time"
#: Low bits of ``kafka_offset`` holding the row index within its file.
ROW_BITS = 32
#: Most data rows one file may hold.
MAX_ROWS = 1 << ROW_BITS


def import_topic(contract: MessageContract, topic_prefix: str) -> str:
    """The synthetic ``kafka_topic`` of rows imported for ``contract``."""
    return f"{IMPORT_TOPIC_PREFIX}{topic_prefix}{contract.topic}"


def file_position(sha256: str) -> tuple[int, int]:
    """``(kafka_partition, offset base)`` of a file from the hex SHA-256 of its bytes.

    The partition is the digest's first 31 bits, the offset base its next 31 bits shifted
    above :data:`ROW_BITS`; a row's offset is the base plus its index. Two different files
    share keys only if 62 bits of their digests agree.
    """
    digest = bytes.fromhex(sha256)
    partition = int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
    base = (int.from_bytes(digest[4:8], "big") & 0x7FFF_FFFF) << ROW_BITS
    return partition, base


def payload_json(raw: dict[str, Any]) -> str:
    """A raw row as the JSON text kept in quarantine's ``payload`` (values as they are)."""
    return json.dumps(raw, ensure_ascii=False, default=str)


def stored_row(
    contract: MessageContract, topic: str, partition: int, offset: int,
    values: dict[str, Any], reason: str | None, payload: str, ingest_ms: int,
) -> tuple[TableContract, dict[str, Any]]:
    """One imported message as ``(table, row)``: its ODS row, or its quarantine row.

    Args:
        contract: The message's contract.
        topic: Its synthetic ``kafka_topic`` (:func:`import_topic`).
        partition: Its ``kafka_partition``.
        offset: Its ``kafka_offset``.
        values: Its values as read (:func:`.files.check_row`).
        reason: Why the contract rejects it (None: valid, the row goes to ODS).
        payload: The raw message as JSON (:func:`payload_json`; quarantine rows only).
        ingest_ms: Its ``ingest_ts`` in epoch milliseconds.

    """
    position = {"kafka_topic": topic, "kafka_partition": partition, "kafka_offset": offset}
    if reason is None:
        event = values[contract.event_time_field]
        return ODS_TABLES[contract.name], {
            **values, **position, "ingest_ts": ingest_ms, "lateness": IMPORTED_LATENESS,
            "dt": dt_of(event),
        }
    return QUARANTINE, {**position, "reason": reason, "payload": payload,
                        "ingest_ts": ingest_ms, "dt": dt_of(ingest_ms)}
