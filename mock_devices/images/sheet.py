"""A contact sheet of examples: every component normal and with each of its defects."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mock_devices.images.batch import render
from mock_devices.images.spec import INFRARED_COMPONENTS, VISIBLE_DEFECTS, ImageSpec


def example_sheet(seed: int = 1, cell: int = 128) -> Image.Image:
    """One row per component: normal, then each defect (same scene); infrared rows last.

    The infrared rows show a lightly loaded, a heavily loaded and a lightly loaded unit
    with a hot spot (the same scene), so the thermal model's effect is visible beside the
    defect's.
    """
    rows: list[list[tuple[str, np.ndarray]]] = []
    for r, (comp, defects) in enumerate(VISIBLE_DEFECTS.items()):
        base = ImageSpec(seed=seed * 100 + r, camera="visible", component=comp, width=cell,
                         height=cell)
        rows.append([(f"{comp}: {d or 'normal'}",
                      render(ImageSpec(**{**base.__dict__, "defect": d})))
                     for d in (None, *defects)])
    ir_h = cell * 3 // 4
    for r, comp in enumerate(INFRARED_COMPONENTS):
        row = []
        for defect, k in ((None, 0.3), (None, 1.2), ("hot_spot", 0.3)):
            spec = ImageSpec(seed=seed * 100 + 50 + r, camera="infrared", component=comp,
                             defect=defect, width=cell, height=ir_h, load_factor=k,
                             ambient_c=20.0)
            row.append((f"IR {defect or 'normal'}, load {k}", render(spec)))
        rows.append(row)
    pad, text = 4, 12
    width = max(len(r) for r in rows) * (cell + pad) + pad
    height = sum(im.shape[0] + text + pad for r in rows for im in [r[0][1]]) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=9)
    y = pad
    for row in rows:
        x = pad
        for caption, im in row:
            d.text((x, y), caption, fill=(0, 0, 0), font=font)
            sheet.paste(Image.fromarray(im), (x, y + text))
            x += cell + pad
        y += row[0][1].shape[0] + text + pad
    return sheet
