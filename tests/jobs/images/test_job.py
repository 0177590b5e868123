"""The import's passes without a stack: an in-memory lake stands in for HDFS and Hudi."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from infra.lake import LakeUnavailable
from infra.settings import GridLakeSettings
from jobs.images.checks import Device, ImportBatchError, sha256
from jobs.images.job import Lake, run_import
from lakehouse.contracts.tables import ODS_EQUIPMENT_IMAGE
from tests.jobs.images.images_data import image_bytes, write_batch, write_descriptions

ASSETS = ["TX-00001", "TX-00002", "SUB-01"]
DEVICES = {"TX-00001": Device("transformer", "R1", "SUB-01"),
           "TX-00002": Device("transformer", "R2", "SUB-02"),
           "SUB-01": Device("substation", "R1", None)}


class MemLake(Lake):
    """HDFS files and index rows in dicts."""

    def __init__(self, settings: GridLakeSettings, fail: bool = False) -> None:
        super().__init__(settings)
        self.files: dict[str, bytes] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.commits = 0
        self.sends = 0
        self.fail = fail

    def devices(self) -> dict[str, Device]:
        return DEVICES

    def indexed(self) -> set[str]:
        return set(self.rows)

    def upload(self, path: str, data: bytes) -> bool:
        if self.fail:
            raise LakeUnavailable("WebHDFS unreachable")
        if path in self.files and len(self.files[path]) == len(data):
            return False
        self.files[path] = data
        self.sends += 1
        return True

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        self.commits += 1
        for r in rows:
            assert list(r) == ODS_EQUIPMENT_IMAGE.field_names
            self.rows[r["image_id"]] = r


def _by(result: Any) -> dict[str, Any]:
    return {f.file: f for f in result.files}


def test_import_reports_every_file_and_reimport_adds_nothing(
        settings: GridLakeSettings, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    rows = write_batch(folder, 12, ASSETS, extra_rows=[
        {"file": "gone.png", "asset_id": "TX-00001", "captured_ts": "2026-03-01",
         "camera": "visible"},
        {"file": "bad/text.png", "asset_id": "TX-00001", "captured_ts": "2026-03-01",
         "camera": "visible"},
        {"file": "zz/copy.png", "asset_id": "TX-00002", "captured_ts": "2026-03-02",
         "camera": "visible"},
        {"file": "bad/who.png", "asset_id": "TX-77777", "captured_ts": "2026-03-02",
         "camera": "visible"},
    ])
    (folder / "bad").mkdir()
    (folder / "zz").mkdir()
    (folder / "bad/text.png").write_text("not an image")
    (folder / "zz/copy.png").write_bytes((folder / rows[0]["file"]).read_bytes())
    (folder / "bad/who.png").write_bytes(image_bytes(999))
    (folder / "stray.png").write_bytes(image_bytes(998))
    lake = MemLake(settings)
    result = run_import(settings, [folder], batch_id="b1", lake=lake)
    got = _by(result)
    assert result.counts()["accepted"] == 12 and result.rows == 12 and lake.commits == 1
    assert (got["gone.png"].reason, got["bad/text.png"].reason, got["zz/copy.png"].reason,
            got["bad/who.png"].reason, got["stray.png"].reason) == (
        "missing_file", "not_an_image", "duplicate_in_batch", "unknown_asset",
        "no_description")
    # every good file once on "HDFS", its index row equal to the file
    assert len(lake.files) == 12 and lake.sends == 12
    for r in rows[:12]:
        data = (folder / r["file"]).read_bytes()
        row = lake.rows[sha256(data)]
        assert lake.files[row["path"]] == data
        assert row["path"].startswith(settings.images.hdfs_root + "/")
        assert (row["bytes"], row["width"], row["height"], row["source_file"],
                row["import_batch"]) == (len(data), 64, 48, r["file"], "b1")
        assert row["format"] == ("JPEG" if r["file"].endswith(".jpg") else "PNG")
        assert row["region_id"] == DEVICES[r["asset_id"]].region_id
        assert row["dt"] == r["captured_ts"][:10]
        assert got[r["file"]].status == "accepted" and got[r["file"]].path == row["path"]
    assert lake.rows[sha256((folder / rows[2]["file"]).read_bytes())]["substation_id"] == \
        "SUB-01"  # a substation is its own substation
    again = run_import(settings, [folder], batch_id="b2", lake=lake)
    assert again.counts()["already_imported"] == 12 and again.counts()["accepted"] == 0
    assert again.rows == 0 and lake.commits == 1 and lake.sends == 12
    assert {r["import_batch"] for r in lake.rows.values()} == {"b1"}
    # a file lost from HDFS comes back on the next import (its row stays as it was)
    lost = next(iter(lake.files))
    del lake.files[lost]
    run_import(settings, [folder], lake=lake)
    assert lost in lake.files and lake.sends == 13


def test_archive_and_report_files(settings: GridLakeSettings, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    write_batch(folder, 4, ASSETS, seed=3)
    arc = tmp_path / "b.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(folder, arcname=".")
    lake = MemLake(settings)
    result = run_import(settings, [arc], lake=lake)
    assert result.rows == 4 and len(lake.files) == 4
    result.write_report(tmp_path / "r.csv")
    result.write_report(tmp_path / "r.json")
    assert (tmp_path / "r.csv").read_text().count("\n") == 5
    assert '"accepted": 4' in (tmp_path / "r.json").read_text()


def test_batch_errors_write_nothing(settings: GridLakeSettings, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    rows = write_batch(folder, 3, ASSETS)
    write_descriptions(folder / "descriptions.csv", rows, ("file", "captured_ts", "camera"))
    lake = MemLake(settings)
    with pytest.raises(ImportBatchError, match="asset_id"):
        run_import(settings, [folder], lake=lake)
    assert not lake.files and not lake.rows
    (folder / "descriptions.csv").unlink()
    with pytest.raises(ImportBatchError, match="--descriptions"):
        run_import(settings, [folder], lake=lake)
    with pytest.raises(ImportBatchError, match="does not exist"):
        run_import(settings, [tmp_path / "nowhere"], lake=lake)


def test_lake_down_is_an_error_of_the_batch(settings: GridLakeSettings,
                                             tmp_path: Path) -> None:
    folder = tmp_path / "b"
    write_batch(folder, 3, ASSETS)
    lake = MemLake(settings, fail=True)
    with pytest.raises(LakeUnavailable):
        run_import(settings, [folder], lake=lake)
    assert not lake.rows


def test_a_failed_upload_is_not_indexed(settings: GridLakeSettings, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    rows = write_batch(folder, 5, ASSETS)
    bad = sha256((folder / rows[1]["file"]).read_bytes())

    class Flaky(MemLake):
        def upload(self, path: str, data: bytes) -> bool:
            if bad in path:
                raise LakeUnavailable("DataNode for it unreachable")
            return super().upload(path, data)

    lake = Flaky(settings)
    result = run_import(settings, [folder], lake=lake)
    got = _by(result)
    assert (got[rows[1]["file"]].status, got[rows[1]["file"]].reason) == \
        ("refused", "upload_failed")
    assert bad not in lake.rows and len(lake.rows) == 4 and result.rows == 4
    # the next import retries it
    lake2 = MemLake(settings)
    lake2.rows, lake2.files = lake.rows, lake.files
    again = run_import(settings, [folder], lake=lake2)
    assert again.rows == 1 and bad in lake2.rows
