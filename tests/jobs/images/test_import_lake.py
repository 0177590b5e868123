"""The import on the real lake (HDFS, Spark, Hudi of the local stack; a lake root and an
image folder of its own): every good file once on HDFS with the stack's replication, the
index rows equal the files, the bad file reported, a re-import adds nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.lake import WebHdfs, lake_path, read_timeline
from infra.settings import GridLakeSettings
from infra.spark import read_table, spark_scope
from jobs.images.checks import sha256
from jobs.images.job import run_import
from lakehouse.contracts.tables import ODS_EQUIPMENT_IMAGE
from ops.bench.images import write_dim_device
from tests.api.conftest import Users, api_settings
from tests.jobs.images.images_data import image_bytes, write_batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGISTRY = [
    {"device_id": "TX-00001", "device_type": "transformer", "region_id": "R1",
     "substation_id": "SUB-01"},
    {"device_id": "TX-00002", "device_type": "transformer", "region_id": "R2",
     "substation_id": "SUB-02"},
    {"device_id": "SUB-01", "device_type": "substation", "region_id": "R1"},
]


@pytest.fixture(scope="module")
def lake(stack: GridLakeSettings) -> Iterator[tuple[GridLakeSettings, Any]]:
    root = f"/gridlake/test/images-{uuid.uuid4().hex[:8]}"
    settings = stack.model_copy(update={
        "hdfs": stack.hdfs.model_copy(update={"lake_root": f"{root}/lake"}),
        "images": stack.images.model_copy(update={"hdfs_root": f"{root}/files",
                                                  "upload_workers": 4}),
    })
    try:
        with spark_scope(settings, "test-images-import") as spark:
            write_dim_device(spark, settings, REGISTRY)
            yield settings, spark
    finally:
        with WebHdfs.from_settings(settings) as fs:
            fs.delete(root, recursive=True)


def _files(fs: WebHdfs, root: str) -> dict[str, Any]:
    out = {}
    for d in fs.list_status(root):
        for f in fs.list_status(f"{root}/{d.name}"):
            out[f"{root}/{d.name}/{f.name}"] = f
    return out


def test_import_batch_into_the_lake(lake: tuple[GridLakeSettings, Any],
                                    tmp_path: Path) -> None:
    settings, spark = lake
    folder = tmp_path / "batch"
    rows = write_batch(folder, 24, ["TX-00001", "TX-00002", "SUB-01"], extra_rows=[
        {"file": "broken.png", "asset_id": "TX-00001", "captured_ts": "2026-03-01T00:00:00Z",
         "camera": "visible"}])
    whole = image_bytes(7, "PNG", (300, 200))
    (folder / "broken.png").write_bytes(whole[: len(whole) * 2 // 3])

    result = run_import(settings, [folder], batch_id="it-1", spark=spark)
    by_file = {f.file: f for f in result.files}
    assert (by_file["broken.png"].status, by_file["broken.png"].reason) == \
        ("refused", "truncated")
    assert result.counts()["accepted"] == 24 and result.rows == 24

    with WebHdfs.from_settings(settings) as fs:
        stored = _files(fs, settings.images.hdfs_root)
        assert len(stored) == 24  # every good file exactly once
        # the stack's replication (2 DataNodes), not HDFS's default of 3
        assert {s.replication for s in stored.values()} == {settings.hdfs.replication}
        index = read_table(spark, settings, ODS_EQUIPMENT_IMAGE).toPandas()
        assert len(index) == 24 and index["image_id"].is_unique
        got = {r["image_id"]: r for r in index.to_dict("records")}
        for r in rows[:24]:
            data = (folder / r["file"]).read_bytes()
            row = got[sha256(data)]
            assert (row["bytes"], row["width"], row["height"], row["source_file"],
                    row["asset_id"], row["import_batch"]) == (
                len(data), 64, 48, r["file"], r["asset_id"], "it-1")
            assert row["region_id"] == {"TX-00001": "R1", "TX-00002": "R2",
                                        "SUB-01": "R1"}[r["asset_id"]]
            assert row["dt"] == r["captured_ts"][:10]
            assert stored[row["path"]].length == len(data)
            assert fs.read(row["path"]) == data
        base = lake_path(settings, "ods", ODS_EQUIPMENT_IMAGE.name)
        commits = len(read_timeline(fs, base).completed)

        again = run_import(settings, [folder], batch_id="it-2", spark=spark)
        assert again.counts()["already_imported"] == 24 and again.rows == 0
        assert again.uploaded == 0
        assert len(read_timeline(fs, base).completed) == commits  # no new commit
        assert len(_files(fs, settings.images.hdfs_root)) == 24
    index = read_table(spark, settings, ODS_EQUIPMENT_IMAGE).toPandas()
    assert len(index) == 24 and set(index["import_batch"]) == {"it-1"}


def test_api_serves_the_imported_images(lake: tuple[GridLakeSettings, Any],
                                        tmp_path: Path) -> None:
    """The API on the same lake: scoped listing, 404 outside, the same bytes."""
    settings, spark = lake
    folder = tmp_path / "b"
    rows = write_batch(folder, 6, ["TX-00001", "TX-00002"], seed=11)
    run_import(settings, [folder], batch_id="it-api", spark=spark)
    with TestClient(create_app(api_settings(settings, tmp_path / "api"))) as client:
        users = Users(client)
        r2 = users.headers("viewer", ["R2"])
        listed = client.get("/api/v1/images", headers=r2, params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        mine = {x["image_id"] for x in listed.json()["rows"]}
        assert {x["region_id"] for x in listed.json()["rows"]} == {"R2"}
        for r in rows:
            data = (folder / r["file"]).read_bytes()
            image_id = sha256(data)
            if r["asset_id"] == "TX-00002":
                assert image_id in mine
                got = client.get(f"/api/v1/images/{image_id}/content", headers=r2)
                assert got.status_code == 200 and got.content == data
            else:
                assert image_id not in mine
                assert client.get(f"/api/v1/images/{image_id}",
                                  headers=r2).status_code == 404
                assert client.get(f"/api/v1/images/{image_id}",
                                  headers=users.admin).status_code == 200
