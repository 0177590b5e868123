"""Planning a history import: every file checked and counted before anything is written.

:func:`plan_import` reads every row of every file once (:mod:`.files`) and counts where
each would go: ODS or quarantine, which ``dt`` partitions, which reasons. Nothing is
written; a bad kind, format or file fails the whole import here.
:func:`followup_request` is the backfill that recomputes what the imported rows feed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from jobs.batch.backfill import DEVICE_TYPES, BackfillRequest, Scope
from jobs.batch.history.files import (
    HistoryError,
    SourceFile,
    contract_for,
    open_source,
    walk,
)
from jobs.batch.history.rows import file_position, import_topic
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.schema import MessageContract
from lakehouse.time import dt_of

log = logging.getLogger(__name__)

#: Quarantined rows a plan lists by line, per file.
EXAMPLES = 5


@dataclass
class FilePlan:
    """What importing one file writes.

    Attributes:
        path: The file.
        format: ``csv`` or ``parquet``.
        sha256: Hex SHA-256 of its bytes.
        kafka_partition: The ``kafka_partition`` of its rows.
        rows: Data rows.
        valid: Rows for ODS.
        quarantined: Rows for quarantine.
        reasons: Quarantine reason → rows.
        ods_days: ODS ``dt`` partitions (event days).
        quarantine_days: Quarantine ``dt`` partitions (days of their ``ingest_ts``).
        first_event_ms: The first readable event time in file order (None: none).
        same_as: An earlier file of the import with identical bytes (this one is skipped).
        examples: The first :data:`EXAMPLES` quarantined rows as ``(line, reason)``.

    """

    path: Path
    format: str
    sha256: str
    kafka_partition: int
    rows: int = 0
    valid: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    ods_days: set[str] = field(default_factory=set)
    quarantine_days: set[str] = field(default_factory=set)
    first_event_ms: int | None = None
    same_as: Path | None = None
    examples: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ImportPlan:
    """Every file of one import, checked and counted; nothing written yet.

    Attributes:
        kind: Message kind (contract name).
        topic: The rows' synthetic ``kafka_topic``.
        files: Per file, in the order given.

    """

    kind: str
    topic: str
    files: list[FilePlan]

    @property
    def imported(self) -> list[FilePlan]:
        """Files that are written (not a copy of an earlier one)."""
        return [f for f in self.files if f.same_as is None]

    @property
    def rows(self) -> int:
        """Data rows written in all."""
        return sum(f.rows for f in self.imported)

    @property
    def valid(self) -> int:
        """Rows for ODS."""
        return sum(f.valid for f in self.imported)

    @property
    def quarantined(self) -> int:
        """Rows for quarantine."""
        return sum(f.quarantined for f in self.imported)

    @property
    def reasons(self) -> Counter[str]:
        """Quarantine reason → rows, over all files."""
        return sum((f.reasons for f in self.imported), Counter())

    @property
    def ods_days(self) -> list[str]:
        """ODS partitions written, sorted."""
        return sorted(set().union(*(f.ods_days for f in self.imported)))

    @property
    def quarantine_days(self) -> list[str]:
        """Quarantine partitions written, sorted."""
        return sorted(set().union(*(f.quarantine_days for f in self.imported)))


def plan_file(source: SourceFile, contract: MessageContract) -> FilePlan:
    """Read and check every row of one file; count where each would go.

    Raises:
        HistoryError: The file is malformed.

    """
    partition, _ = file_position(source.sha256)
    plan = FilePlan(source.path, source.format, source.sha256, partition)
    leading = 0  # quarantined rows before the first readable event time
    for row in walk(source, contract):
        plan.rows += 1
        if row.ingest_ms is not None and plan.first_event_ms is None:
            plan.first_event_ms = row.ingest_ms
        if row.reason is None:
            plan.valid += 1
            plan.ods_days.add(dt_of(row.values[contract.event_time_field]))
            continue
        plan.quarantined += 1
        plan.reasons[row.reason] += 1
        if len(plan.examples) < EXAMPLES:
            plan.examples.append((row.line, row.reason))
        if row.ingest_ms is None:
            leading += 1
        else:
            plan.quarantine_days.add(dt_of(row.ingest_ms))
    if leading:
        plan.quarantine_days.add(dt_of(plan.first_event_ms or 0))
    return plan


def plan_import(
    paths: Sequence[Path | str], kind: str, fmt: str | None = None, topic_prefix: str = "",
) -> ImportPlan:
    """Check every file of an import and count its rows; writes nothing.

    Every check of every file runs before anything is written: a bad kind, format or file
    fails the whole import.

    Args:
        paths: The files (all of kind ``kind``).
        kind: Message contract name, e.g. ``meter_reading``.
        fmt: ``csv`` or ``parquet`` for every file (default: from each file's extension).
        topic_prefix: The lake's Kafka topic prefix (``settings.kafka.topic_prefix``).

    Raises:
        HistoryError: Unknown kind or format, no files, or a file that cannot be imported.

    """
    contract = contract_for(kind)
    if not paths:
        raise HistoryError("no files to import")
    plans: list[FilePlan] = []
    seen: dict[str, Path] = {}
    for p in paths:
        source = open_source(p, contract, fmt)
        if source.sha256 in seen:
            first = next(f for f in plans if f.path == seen[source.sha256])
            copy = FilePlan(source.path, source.format, source.sha256, first.kafka_partition,
                            same_as=first.path)
            log.warning("%s has the same bytes as %s: imported once", source.path, first.path)
            plans.append(copy)
            continue
        seen[source.sha256] = source.path
        plan = plan_file(source, contract)
        log.info("%s: %d rows, %d valid, %d to quarantine", source.path, plan.rows,
                 plan.valid, plan.quarantined)
        plans.append(plan)
    return ImportPlan(kind, import_topic(contract, topic_prefix), plans)


def followup_request(plan: ImportPlan, today: date | None = None) -> BackfillRequest | None:
    """The backfill that recomputes what the imported ODS rows feed, or None.

    Days: the first imported event day up to the day after the last (its first readings
    compare with the imported last ones), ending at the latest today. A telemetry kind
    recomputes from DWD down, for its device type; the device registry from DIM down; any
    other kind from DWD down.
    """
    days = plan.ods_days
    if not days:
        return None
    today = today or datetime.now(UTC).date()
    start = date.fromisoformat(days[0])
    end = min(date.fromisoformat(days[-1]) + timedelta(days=2), today + timedelta(days=1))
    if start > today or end <= start:
        return None
    types = tuple(t for t, kinds in DEVICE_TYPES.items() if plan.kind in kinds)
    layer = "dim" if plan.kind == DEVICE_REGISTRY.name else "dwd"
    return BackfillRequest(start, end, layer, Scope(device_types=types))
