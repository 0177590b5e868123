"""Drive a record stream into a sink: pacing, rate limit, label routing, progress."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from infra.kafka_client import KafkaUnavailableError, PublishReport, Sink
from infra.serde import dumps
from lakehouse.contracts.messages import MESSAGES
from lakehouse.time import MINUTE_MS
from mock_devices.clock import Pacer
from mock_devices.config import FleetConfig, Record
from mock_devices.defects import LABEL_TOPIC, DefectConfig, DefectStage
from mock_devices.fleet import Fleet

log = logging.getLogger(__name__)

_TS_FIELD = {m.topic: m.event_time_field for m in MESSAGES}


@dataclass
class Progress:
    """A snapshot handed to the progress callback."""

    event_ms: int | None
    sent: int
    delivered: int
    failed: int
    elapsed_s: float
    labels: int


def topic_intervals_ms(config: FleetConfig) -> dict[str, int]:
    """Reporting interval of every telemetry topic for a fleet configuration."""
    return {
        "meter.readings": config.meter_interval_s * 1000,
        "scada.feeder": MINUTE_MS, "scada.substation": MINUTE_MS,
        "transformer.telemetry": MINUTE_MS, "transformer.dga": config.dga_interval_s * 1000,
        "ess.bms": config.ess_interval_s * 1000, "pv.inverter": MINUTE_MS,
    }


def fleet_stream(fleet: Fleet, defects: DefectConfig | None = None) -> Iterator[Record]:
    """The fleet's records, with the defect stage applied when any defect is enabled."""
    records = fleet.records()
    if defects is None or not defects.enabled:
        return records
    stage = DefectStage(defects, topic_intervals_ms(fleet.config))
    return stage.apply(records)


def run_stream(
    records: Iterable[Record],
    sink: Sink,
    *,
    pacer: Pacer | None = None,
    max_rate: float | None = None,
    max_seconds: float | None = None,
    labels_file: Path | None = None,
    labels_to_sink: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval_s: float = 0.25,
    should_stop: Callable[[], bool] | None = None,
) -> PublishReport:
    """Send every record to ``sink`` and return the sink's report.

    Args:
        records: The stream (topic without prefix, key, value).
        sink: Destination.
        pacer: Holds records until their event time is due (None: as fast as possible).
        max_rate: Upper bound on messages per second.
        max_seconds: Stop after this much wall time.
        labels_file: Also write label messages to this JSON-lines file.
        labels_to_sink: Whether label messages go to the sink (their own topic).
        on_progress: Called at most every ``progress_interval_s`` seconds.
        progress_interval_s: Interval of progress callbacks.
        should_stop: Polled with the progress check; True ends the run early.

    """
    fh: IO[bytes] | None = None
    if labels_file is not None:
        labels_file.parent.mkdir(parents=True, exist_ok=True)
        fh = labels_file.open("wb")
    paced = pacer is not None and pacer.paced
    if paced:
        assert pacer is not None
        pacer.start()
    t0 = time.perf_counter()
    next_report = t0 + progress_interval_s
    last_wait = -1
    event_ms: int | None = None
    labels = n = 0
    check_every = 256
    aborted: str | None = None
    try:
        for topic, key, value in records:
            if isinstance(value, dict):
                ts: Any = value.get(_TS_FIELD.get(topic, "ts"))
                if isinstance(ts, int):
                    if event_ms is None or ts > event_ms:
                        event_ms = ts
                    if paced and ts > last_wait:
                        assert pacer is not None
                        pacer.wait(ts)
                        last_wait = ts
            if topic == LABEL_TOPIC:
                labels += 1
                if fh is not None:
                    fh.write(dumps(value) + b"\n")
                if not labels_to_sink:
                    continue
            sink.send(topic, key, value)
            n += 1
            if n % check_every == 0:
                now = time.perf_counter()
                if max_rate:
                    ahead = n / max_rate - (now - t0)
                    if ahead > 0:
                        time.sleep(ahead)
                        now = time.perf_counter()
                if max_seconds is not None and now - t0 >= max_seconds:
                    break
                if now >= next_report:
                    next_report = now + progress_interval_s
                    if on_progress is not None:
                        s, d, f = sink.progress()
                        on_progress(Progress(event_ms, s, d, f, now - t0, labels))
                    if should_stop is not None and should_stop():
                        break
    except KeyboardInterrupt:
        log.warning("interrupted; flushing what was sent")
        aborted = "interrupted"
    except KafkaUnavailableError as e:
        log.error("%s; stopping the run", e)
        aborted = str(e)
    finally:
        if fh is not None:
            fh.close()
        report = sink.close()
    report.aborted = aborted
    if on_progress is not None:
        on_progress(Progress(event_ms, report.total_sent, report.total_delivered,
                             report.total_failed, time.perf_counter() - t0, labels))
    return report
