"""The pure checks of the image import, with real good and bad files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from jobs.images.checks import (
    REQUIRED_COLUMNS,
    Description,
    Device,
    ImageInfo,
    ImportBatchError,
    Refusal,
    check_description,
    image_path,
    inspect_image,
    normalise_name,
    parse_captured,
    read_descriptions,
    sha256,
)
from jobs.images.sources import Sources
from tests.jobs.images.images_data import FIELDS, image_bytes, write_descriptions

MB = 1 << 20
DEVICES = {"TX-00001": Device("transformer", "RGN-01", "SUB-01"),
           "M-1": Device("meter", "RGN-01", "SUB-01")}
ROW = {"file": "a.png", "asset_id": "TX-00001", "captured_ts": "2026-03-01T10:00:00Z",
       "camera": "visible", "inspector": "", "component": "", "label": ""}


def _reason(got: ImageInfo | Refusal | Description) -> str:
    assert isinstance(got, Refusal), got
    return got.reason


def test_good_png_and_jpeg_are_identified() -> None:
    for fmt in ("PNG", "JPEG", "BMP", "TIFF", "WEBP"):
        data = image_bytes(1, fmt, (40, 30))
        info = inspect_image(data, MB, 10_000)
        assert isinstance(info, ImageInfo), (fmt, info)
        assert (info.format, info.width, info.height, info.bytes) == (fmt, 40, 30, len(data))
        assert info.image_id == sha256(data)
    info = inspect_image(image_bytes(1, "JPEG"), MB, 10_000)
    assert isinstance(info, ImageInfo)
    assert image_path("/img/", info) == f"/img/{info.image_id[:2]}/{info.image_id}.jpg"


def test_text_file_named_png_is_not_an_image() -> None:
    assert _reason(inspect_image(b"hello, I am text\n" * 10, MB, 10_000)) == "not_an_image"
    assert _reason(inspect_image(b"", MB, 10_000)) == "not_an_image"


def test_truncated_png_and_jpeg() -> None:
    png = image_bytes(2, "PNG", (200, 200))
    assert _reason(inspect_image(png[: len(png) // 2], MB, 10**6)) == "truncated"
    jpg = image_bytes(2, "JPEG", (200, 200))
    assert _reason(inspect_image(jpg[: len(jpg) // 2], MB, 10**6)) == "truncated"
    # a flipped byte in a PNG chunk: its CRC no longer matches
    broken = bytearray(png)
    broken[len(png) // 2] ^= 0xFF
    assert _reason(inspect_image(bytes(broken), MB, 10**6)) == "truncated"


def test_limits_and_formats() -> None:
    png = image_bytes(3, "PNG", (100, 100))
    assert _reason(inspect_image(png, len(png) - 1, 10**6)) == "too_large"
    assert isinstance(inspect_image(png, len(png), 10**6), ImageInfo)
    assert _reason(inspect_image(png, MB, 100 * 100 - 1)) == "too_many_pixels"
    # a huge but tiny-on-disk PNG: refused from its header, never decoded
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4000, 4000), dtype=np.uint8)).save(buf, "PNG")
    assert _reason(inspect_image(buf.getvalue(), MB, 10**6)) == "too_many_pixels"
    gif = io.BytesIO()
    Image.new("P", (10, 10)).save(gif, "GIF")
    got = inspect_image(gif.getvalue(), MB, 10**6)
    assert _reason(got) == "unsupported_format" and "GIF" in got.detail  # type: ignore[union-attr]


def test_description_rows() -> None:
    ok = check_description(ROW, DEVICES)
    assert ok == Description("TX-00001", 1_772_359_200_000, "visible", None, None, None)
    assert check_description({**ROW, "camera": "Infrared", "label": "Crack",
                              "inspector": "ann"}, DEVICES) == Description(
        "TX-00001", 1_772_359_200_000, "infrared", "ann", None, "crack")
    assert _reason(check_description({**ROW, "asset_id": "TX-99999"}, DEVICES)) == \
        "unknown_asset"
    assert _reason(check_description({**ROW, "asset_id": "M-1"}, DEVICES)) == "unknown_asset"
    assert _reason(check_description({**ROW, "camera": "uv"}, DEVICES)) == "bad_camera"
    assert _reason(check_description({**ROW, "label": "broken"}, DEVICES)) == "bad_label"
    for bad in ("yesterday", "", "2026-13-01", "99999999999999999999"):
        assert _reason(check_description({**ROW, "captured_ts": bad}, DEVICES)) == "bad_time"
    assert parse_captured("1772359200000") == 1_772_359_200_000
    assert parse_captured("2026-03-01T10:00:00") == 1_772_359_200_000  # naive: UTC


def test_names() -> None:
    assert normalise_name("./a\\b/c.png") == "a/b/c.png"
    for bad in ("/etc/passwd", "../x.png", "a/../../x", "", "."):
        assert normalise_name(bad) is None


def test_description_file_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    write_descriptions(path, [ROW], tuple(f for f in FIELDS if f != "camera"))
    with pytest.raises(ImportBatchError, match="camera"):
        read_descriptions(path)
    # optional columns may be absent; values come back as text, empty for missing
    write_descriptions(path, [ROW], REQUIRED_COLUMNS)
    frame = read_descriptions(path)
    assert list(frame.columns) == list(FIELDS)
    assert frame.iloc[0]["label"] == "" and frame.iloc[0]["asset_id"] == "TX-00001"
    pq = tmp_path / "d.parquet"
    pd.DataFrame([{**ROW, "captured_ts": pd.Timestamp("2026-03-01T10:00:00Z")}]).to_parquet(pq)
    got = read_descriptions(pq).iloc[0].to_dict()
    assert parse_captured(got["captured_ts"]) == 1_772_359_200_000
    with pytest.raises(ImportBatchError, match="cannot be read"):
        (tmp_path / "x.parquet").write_text("not parquet")
        read_descriptions(tmp_path / "x.parquet")
    with pytest.raises(ImportBatchError, match="does not exist"):
        read_descriptions(tmp_path / "none.csv")


def test_archives_unpack_and_refuse(tmp_path: Path) -> None:
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("descriptions.csv", "file,asset_id,captured_ts,camera\n")
        zf.writestr("x/a.png", image_bytes(5, size=(8, 8)))
        zf.writestr("big.png", b"0" * 5000)
    with Sources([z], max_bytes=4000) as (src,):
        assert set(src.files) == {"x/a.png"} and src.descriptions is not None
        assert src.files["x/a.png"].read_bytes() == image_bytes(5, size=(8, 8))
        assert src.refused["big.png"].reason == "too_large"
        root = src.root
    assert not root.exists()  # scratch folder removed
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.png", b"x")
    with pytest.raises(ImportBatchError, match="outside"), Sources([evil], MB):
        pass
    (tmp_path / "bad.tgz").write_bytes(b"not a tar")
    with pytest.raises(ImportBatchError, match="cannot be read"), \
            Sources([tmp_path / "bad.tgz"], MB):
        pass
