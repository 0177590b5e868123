"""Generated batches: label quotas, registry asset ids, the folder an import reads."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lakehouse.contracts.images import CAMERAS, DESCRIPTION_FIELDS, LABELS, NORMAL
from mock_devices.config import FleetConfig
from mock_devices.images import archive_batch, generate_batch, iter_batch, plan
from mock_devices.topology import build_topology

UNTIL = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind,defect_share", [("balanced", 0.5), ("imbalanced", 0.09)])
def test_label_and_camera_proportions(kind: str, defect_share: float) -> None:
    items = plan(1000, kind=kind, seed=4, until=UNTIL)
    labels = Counter(i.row["label"] for i in items)
    cameras = Counter(i.row["camera"] for i in items)
    assert set(labels) <= set(LABELS)
    assert abs(1 - labels[NORMAL] / 1000 - defect_share) < 0.01
    assert abs(cameras["infrared"] / 1000 - 0.2) < 0.01
    defects = {k: v for k, v in labels.items() if k != NORMAL}
    if kind == "balanced":  # every kind present, none dominating
        assert len(defects) == 6 and max(defects.values()) < 2.5 * min(defects.values())
    for i in items:  # hot spots are infrared only, infrared shows transformers only
        assert (i.row["label"] == "hot_spot") <= (i.row["camera"] == "infrared")
        assert i.row["camera"] in CAMERAS and i.spec.label == i.row["label"]


def test_assets_come_from_the_registry_and_times_from_the_period() -> None:
    reg = build_topology(FleetConfig()).registry
    items = plan(300, seed=2, until=UNTIL, days=5)
    for i in items:
        rec = reg[i.row["asset_id"]]
        want = "transformer" if i.row["component"] in ("bushing", "transformer_tank") else (
            "substation")
        assert rec["device_type"] == want
        assert "2026-11-26T00:00:00Z" <= i.row["captured_ts"] < "2026-12-01T00:00:00Z"
    assert len({i.row["asset_id"] for i in items}) > 20


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    a = list(iter_batch(12, seed=9, until=UNTIL))
    b = list(iter_batch(12, seed=9, until=UNTIL))
    c = list(iter_batch(12, seed=10, until=UNTIL))
    assert [r for r, _ in a] == [r for r, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert [r for r, _ in a] != [r for r, _ in c]


def test_generate_batch_writes_a_folder_an_import_can_read(tmp_path: Path) -> None:
    seen: list[int] = []
    desc = generate_batch(tmp_path / "b", 40, kind="imbalanced", seed=1, until=UNTIL,
                          jpeg_share=0.3, on_progress=lambda n, _t: seen.append(n))
    assert desc == tmp_path / "b" / "descriptions.csv" and seen[-1] == 40
    with desc.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == tuple(f.name for f in DESCRIPTION_FIELDS)
        rows = list(reader)
    assert len(rows) == 40 and len({r["file"] for r in rows}) == 40
    registry = build_topology(FleetConfig()).registry
    formats = Counter()
    for r in rows:
        assert "\\" not in r["file"]
        with Image.open(tmp_path / "b" / r["file"]) as im:
            im.load()
            formats[im.format] += 1
            assert im.mode == "RGB" and min(im.size) >= 72
            assert im.format == ("JPEG" if r["file"].endswith(".jpg") else "PNG")
        assert r["asset_id"] in registry
    assert formats["PNG"] and formats["JPEG"]
    files = {p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*.*")}
    assert files == {r["file"] for r in rows} | {"descriptions.csv"}
    zipped = archive_batch(tmp_path / "b", "zip")
    assert zipped == tmp_path / "b.zip" and zipped.stat().st_size > 10_000


@pytest.mark.parametrize("kwargs,needle", [
    ({"kind": "skewed"}, "unknown set"),
    ({"count": 0}, "at least 1"),
    ({"infrared_share": 1.5}, "within 0..1"),
    ({"size": (300, 100)}, "size range"),
])
def test_bad_batch_arguments_are_refused(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"count": 5, **kwargs}
    with pytest.raises(ValueError, match=needle):
        plan(**args)  # type: ignore[arg-type]


def test_parallel_workers_write_the_same_files(tmp_path: Path) -> None:
    one = generate_batch(tmp_path / "one", 10, seed=5, until=UNTIL)
    two = generate_batch(tmp_path / "two", 10, seed=5, until=UNTIL, workers=2)
    assert one.read_text() == two.read_text()
    for p in (tmp_path / "one").rglob("*.*"):
        assert p.read_bytes() == (tmp_path / "two" / p.relative_to(tmp_path / "one")).read_bytes()
    with pytest.raises(ValueError, match="workers"):
        generate_batch(tmp_path / "three", 2, workers=0)


def test_the_component_does_not_give_the_label_away() -> None:
    items = [i for i in plan(4000, seed=8, until=UNTIL) if i.row["camera"] == "visible"]
    for comp in ("insulator", "bushing", "transformer_tank", "switchgear"):
        labels = [i.row["label"] for i in items if i.row["component"] == comp]
        share = sum(lab != NORMAL for lab in labels) / len(labels)
        assert 0.46 < share < 0.54, (comp, share)  # without the mix: bushings 0.56
