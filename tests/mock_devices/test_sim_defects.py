from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from infra.serde import dumps, loads
from mock_devices.config import ConfigError, FleetConfig, Record, parse_time_ms
from mock_devices.defects import DEFECT_TYPES, DefectConfig, DefectStage, event_time
from mock_devices.fleet import Fleet
from mock_devices.runner import fleet_stream, topic_intervals_ms
from tests.mock_devices.sim_helpers import CONTRACTS

START = parse_time_ms("2024-03-04T00:00")
CFG = FleetConfig(meters=150, seed=21, ess_interval_s=10, registry_changes_per_day=0)


def _clean() -> list[Record]:
    return list(Fleet(CFG, START, START + 3 * 3_600_000).records())


def _defected(rates: dict[str, float], seed: int = 5) -> list[Record]:
    stage = DefectStage(DefectConfig(rates=rates, seed=seed), topic_intervals_ms(CFG))
    return list(stage.apply(iter(_clean())))


@pytest.fixture(scope="module")
def clean() -> list[Record]:
    return _clean()


@pytest.fixture(scope="module")
def dirty() -> list[Record]:
    return _defected(dict.fromkeys(DEFECT_TYPES, 0.004))


def _labels(records: list[Record]) -> list[dict[str, Any]]:
    return [v for t, _, v in records if t == "sim.labels" and isinstance(v, dict)]


def test_every_defect_type_is_labelled(dirty: list[Record]) -> None:
    labels = _labels(dirty)
    kinds = Counter(lab["type"] for lab in labels)
    assert set(kinds) == set(DEFECT_TYPES)
    for lab in labels:
        assert CONTRACTS["sim.labels"].validate(lab) is None
        assert lab["kind"] == "defect" and lab["topic"] not in ("sim.labels", "device.registry")


def test_defects_are_reproducible(dirty: list[Record]) -> None:
    again = _defected(dict.fromkeys(DEFECT_TYPES, 0.004))
    assert [dumps(list(r)) if isinstance(r[2], dict) else r[2] for r in dirty] == [
        dumps(list(r)) if isinstance(r[2], dict) else r[2] for r in again
    ]


def test_clean_data_untouched_without_rates(clean: list[Record]) -> None:
    assert _defected({}) == clean


def test_duplicates_late_and_out_of_order(clean: list[Record], dirty: list[Record]) -> None:
    labels = _labels(dirty)
    stream = [
        (i, t, k, event_time(t, v))
        for i, (t, k, v) in enumerate(dirty)
        if isinstance(v, dict) and t != "sim.labels"
    ]
    positions: dict[tuple[str, str, int | None], list[int]] = {}
    for n, (_, t, k, ts) in enumerate(stream):
        positions.setdefault((t, k, ts), []).append(n)
    end = max(event_time(t, v) or 0 for t, _, v in clean if isinstance(v, dict))
    held = {
        (lab["topic"], lab["device_id"], lab["start_ts"])
        for lab in labels
        if lab["type"] in ("late", "out_of_order")
    }
    checked = 0
    for lab in labels:
        key = (lab["topic"], lab["device_id"], lab["start_ts"])
        if lab["type"] == "duplicate":
            assert len(positions[key]) == 2
        if lab["type"] in ("late", "out_of_order") and key in positions:
            (n,) = positions[key]
            arrives = json.loads(lab["detail"])["arrives_after_ts"]
            if arrives > end:
                continue
            # Held until the stream reached its release time ...
            assert stream[n - 1][3] is not None and stream[n - 1][3] <= arrives
            following = [ts for _, t, k, ts in stream[n + 1 :] if (t, k, ts) not in held][:1]
            assert not following or (following[0] or 0) >= arrives
            assert max(ts or 0 for _, _, _, ts in stream[:n]) > lab["start_ts"]
            # ... so a newer reading of the same device arrived before it.
            newer = [
                ts
                for _, t, k, ts in stream[:n]
                if (t, k) == key[:2] and (ts or 0) > lab["start_ts"]
            ]
            assert newer or lab["topic"] == "transformer.dga"
            checked += 1
    assert checked


def test_gaps_drop_and_stuck_repeats() -> None:
    dirty = _defected({"gap": 0.004, "stuck": 0.004})
    labels = _labels(dirty)
    assert {lab["type"] for lab in labels} == {"gap", "stuck"}
    for lab in labels:
        rows = [
            v
            for t, k, v in dirty
            if (t, k) == (lab["topic"], lab["device_id"])
            and isinstance(v, dict)
            and lab["start_ts"] <= (event_time(t, v) or 0) < lab["end_ts"]
        ]
        if lab["type"] == "gap":
            assert rows == []
        else:
            c = CONTRACTS[lab["topic"]]
            frozen = [
                {f: v for f, v in r.items() if f not in (c.key_field, "ts", "seq")} for r in rows
            ]
            assert rows and all(f == frozen[0] for f in frozen)
            assert len({r["ts"] for r in rows}) == len(rows)


def test_value_defects(dirty: list[Record]) -> None:
    bad = [v for _, _, v in dirty if isinstance(v, bytes)]
    for data in bad:
        with pytest.raises(ValueError):
            loads(data)
    known = {k for t, k, v in _clean()}
    for lab in _labels(dirty):
        detail = json.loads(lab["detail"])
        if lab["type"] == "out_of_range":
            f = CONTRACTS[lab["topic"]].field(detail["field"])
            assert (f.maximum is not None and detail["value"] > f.maximum) or (
                f.minimum is not None and detail["value"] < f.minimum
            )
        if lab["type"] == "spike":
            assert abs(detail["value"]) >= 5 * abs(detail["original"]) - 1e-9
        if lab["type"] == "unknown_device":
            assert lab["device_id"] not in known and detail["original"] in known
    assert len(bad) == sum(1 for lab in _labels(dirty) if lab["type"] == "malformed_json")


def test_registry_and_labels_never_defected(dirty: list[Record], clean: list[Record]) -> None:
    reg = [r for r in dirty if r[0] == "device.registry"]
    assert reg == [r for r in clean if r[0] == "device.registry"]


def test_fleet_stream_applies_stage() -> None:
    fleet = Fleet(CFG, START, START + 600_000)
    recs = list(fleet_stream(fleet, DefectConfig.parse("duplicate=1.0", seed=1)))
    telemetry = [r for r in recs if r[0] not in ("sim.labels", "device.registry")]
    labels = [r for r in recs if r[0] == "sim.labels"]
    assert len(telemetry) == 2 * len(labels)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dup=0.1", "unknown defect"),
        ("late", "name=rate"),
        ("late=x", "not a number"),
        ("late=2", "within"),
        ("all=0.2", "more than 1"),
    ],
)
def test_bad_defect_options(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DefectConfig.parse(text, seed=1)
