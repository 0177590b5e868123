from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.images.data import (
    ImageDataError,
    ImageDecodeError,
    augment,
    decode_image,
    label_of,
    load_folder,
    split_indices,
    to_tensor,
)
from tests.ml.images.image_helpers import write_set


def _png(w: int, h: int, colour: tuple[int, int, int] = (200, 10, 10), mode: str = "RGB",
         fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), colour if mode == "RGB" else 128).save(buf, fmt)
    return buf.getvalue()


def test_decode_resizes_plainly_to_rgb() -> None:
    arr = decode_image(_png(80, 40), 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    assert tuple(arr[16, 16]) == (200, 10, 10)  # plain resize: no padding bars
    grey = decode_image(_png(20, 20, mode="L", fmt="JPEG"), 16)
    assert grey.shape == (16, 16, 3) and abs(int(grey[8, 8, 0]) - 128) <= 2


def test_decode_errors_say_why() -> None:
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(b"hello, this is text", 32)
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"", 32)
    data = _png(64, 64, colour=(1, 2, 3))
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                                                dtype=np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, "PNG")
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(buf.getvalue()[: len(buf.getvalue()) // 2], 32)
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(data, 32, max_pixels=64 * 63)


def test_labels() -> None:
    assert [label_of(v) for v in ("normal", "crack", "hot_spot", "", None, float("nan"))] \
        == [0, 1, 1, -1, -1, -1]


def test_folder_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    desc = write_set(tmp_path / "set", 20, 0.5, seed=1, size=24)
    (tmp_path / "set" / "img" / "0003.png").write_text("not a png")
    (tmp_path / "set" / "img" / "0005.png").unlink()
    data = load_folder(tmp_path / "set", 16)  # the folder finds descriptions.csv
    assert len(data) == 18 and data.images.shape == (18, 16, 16, 3)
    assert {s.item for s in data.skipped} == {"img/0003.png", "img/0005.png"}
    assert "not an image" in next(s.reason for s in data.skipped if s.item.endswith("3.png"))
    assert data.labels.tolist() == [1] * 8 + [0] * 10
    assert data.lineage["sha256"] and data.lineage["skipped"] == 2
    assert data.lineage["defect"] == 8 and data.lineage["path"] == str(desc)


def test_description_file_problems(tmp_path: Path) -> None:
    desc = write_set(tmp_path / "set", 4, seed=2, size=16)
    desc.write_text("file,camera\nimg/0000.png,visible\n")
    with pytest.raises(ImageDataError, match="asset_id"):
        load_folder(desc, 16)
    with pytest.raises(ImageDataError, match="no descriptions"):
        load_folder(tmp_path, 16)
    desc.write_text("file,asset_id,captured_ts,camera\n../../etc/passwd,TX-1,2024-01-01,visible\n")
    with pytest.raises(ImageDataError, match="no usable image"):
        load_folder(desc, 16)


def test_split_is_stratified_seeded_and_disjoint() -> None:
    labels = np.array([0] * 900 + [1] * 100)
    tr, va, te = split_indices(labels, seed=5)
    assert (len(tr), len(va), len(te)) == (800, 100, 100)
    assert labels[va].sum() == 10 and labels[te].sum() == 10  # the class ratio is kept
    assert len(set(tr) | set(va) | set(te)) == 1000
    again = split_indices(labels, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again, strict=True))
    assert not np.array_equal(split_indices(labels, seed=6)[2], te)


def test_augment_flips_and_jitters_within_range() -> None:
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8))
    out = augment(x, torch.Generator().manual_seed(0), brightness=0.1)
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.equal(out, x)
    ratio = (out.sum() / x.sum()).item()
    assert 0.85 < ratio < 1.15
