from __future__ import annotations

from pathlib import Path

import pytest

from infra.kafka_client import NullSink
from infra.serde import loads
from mock_devices.clock import Pacer, realtime_start
from mock_devices.config import ConfigError
from mock_devices.runner import Progress, run_stream


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 6))
        self.now += s


def test_accelerated_pacing() -> None:
    c = FakeClock()
    p = Pacer("accelerated", 0, speedup=60, clock=c, sleep=c.sleep)
    p.start()
    p.wait(0)
    p.wait(60_000)  # one simulated minute = one wall second
    p.wait(30_000)  # already due
    p.wait(3_600_000)
    assert c.sleeps == [1.0, 59.0]


def test_realtime_and_historical() -> None:
    c = FakeClock()
    p = Pacer("realtime", 0, speedup=100, clock=c, sleep=c.sleep)
    assert p.speedup == 1.0
    p.wait(2000)
    assert c.sleeps == [2.0]
    h = Pacer("historical", 0, clock=c, sleep=c.sleep)
    h.wait(10**9)
    assert c.sleeps == [2.0] and not h.paced
    assert realtime_start(125_000) == 120_000
    with pytest.raises(ConfigError):
        Pacer("warp", 0)
    with pytest.raises(ConfigError):
        Pacer("accelerated", 0, speedup=0)


RECS = [("meter.readings", "M1", {"device_id": "M1", "ts": i * 1000}) for i in range(1000)]
LABEL = ("sim.labels", "F1", {"label_id": "F1", "start_ts": 5})


def test_labels_to_file_and_optionally_to_sink(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    report = run_stream(
        iter([LABEL, *RECS[:3]]), NullSink(), labels_file=path, labels_to_sink=False
    )
    assert report.sent == {"meter.readings": 3}
    assert [loads(x) for x in path.read_bytes().splitlines()] == [LABEL[2]]
    report = run_stream(iter([LABEL, *RECS[:3]]), NullSink())
    assert report.sent == {"sim.labels": 1, "meter.readings": 3}


def test_progress_and_stop() -> None:
    seen: list[Progress] = []
    report = run_stream(
        iter(RECS * 50),
        NullSink(),
        on_progress=seen.append,
        progress_interval_s=0.0,
        should_stop=lambda: len(seen) >= 3,
    )
    assert report.total_sent < 50_000 and seen[-1].sent == report.total_sent
    assert seen[-1].event_ms == ((report.total_sent - 1) % 1000) * 1000


def test_rate_cap() -> None:
    import time

    t0 = time.perf_counter()
    report = run_stream(iter(RECS), NullSink(), max_rate=5000.0)
    assert time.perf_counter() - t0 >= 0.15 and report.total_sent == 1000
