"""``gridlake simulate images``: a small batch, its archive, the summary, bad options."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ops.cli.simulate import app

runner = CliRunner()


def test_images_writes_a_batch_and_an_archive(tmp_path: Path) -> None:
    out = tmp_path / "batch"
    res = runner.invoke(app, ["images", str(out), "--count", "12", "--set", "imbalanced",
                              "--seed", "3", "--archive", "tar.gz", "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["images"] == 12 and sum(summary["counts"].values()) == 12
    with (out / "descriptions.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and all((out / r["file"]).is_file() for r in rows)
    with tarfile.open(tmp_path / "batch.tar.gz") as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    assert "descriptions.csv" in names and {r["file"] for r in rows} <= names


def test_images_prints_counts_per_label_and_camera(tmp_path: Path) -> None:
    res = runner.invoke(app, ["images", str(tmp_path / "b"), "--count", "10", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "normal" in res.output and "infrared" in res.output and "images/s" in res.output


@pytest.mark.parametrize("args,needle", [
    (["--set", "skewed"], "unknown --set"),
    (["--archive", "rar"], "unknown --archive"),
    (["--count", "0"], "at least 1"),
    (["--min-size", "400"], "size range"),
])
def test_images_bad_options_fail_with_one_line(tmp_path: Path, args: list[str],
                                               needle: str) -> None:
    res = runner.invoke(app, ["images", str(tmp_path / "b"), "--quiet", *args])
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not (tmp_path / "b" / "descriptions.csv").exists()


def test_image_examples_writes_a_contact_sheet(tmp_path: Path) -> None:
    path = tmp_path / "sheet.png"
    res = runner.invoke(app, ["image-examples", str(path), "--cell", "64"])
    assert res.exit_code == 0, res.output
    with Image.open(path) as im:
        # Five columns (normal + up to four defects) and six rows of captioned cells.
        assert im.format == "PNG" and im.size[0] == 5 * 68 + 4 and im.size[1] > 6 * 48
    assert runner.invoke(app, ["image-examples", str(path), "--cell", "8"]).exit_code == 2
