"""Procedural substation equipment images with labelled defects (issue 21).

No photo dataset can be downloaded here, so the simulator draws its own: visible-light
views of insulators, bushings, transformer tanks and switchgear with cracks, flashover
burns, rust, oil leaks and missing parts, and infrared views whose temperatures follow the
simulator's transformer thermal model (a loaded unit is hotter, a bad connection is a hot
spot). Sizes, lighting, noise, blur and camera angles vary; asset ids are the device
registry's. numpy and Pillow only.

* :func:`render` draws one :class:`ImageSpec` (pure in the spec);
* :func:`plan` decides a balanced or imbalanced set, :func:`iter_batch` yields its
  images in memory, :func:`generate_batch` writes the folder an import reads
  (``descriptions.csv`` plus images), :func:`archive_batch` packs it;
* :func:`example_sheet` draws every defect beside its normal twin (docs/images/).
"""

from mock_devices.images.batch import (
    ARCHIVES,
    COLUMNS,
    DESCRIPTIONS,
    SETS,
    BatchItem,
    archive_batch,
    generate_batch,
    iter_batch,
    plan,
    render,
)
from mock_devices.images.infrared import Thermogram, render_infrared
from mock_devices.images.sheet import example_sheet
from mock_devices.images.spec import (
    INFRARED_COMPONENTS,
    INFRARED_DEFECTS,
    VISIBLE_DEFECTS,
    ImageSpec,
)
from mock_devices.images.visible import render_visible

__all__ = [
    "ARCHIVES", "COLUMNS", "DESCRIPTIONS", "INFRARED_COMPONENTS", "INFRARED_DEFECTS", "SETS",
    "VISIBLE_DEFECTS", "BatchItem", "ImageSpec", "Thermogram", "archive_batch", "example_sheet",
    "generate_batch", "iter_batch", "plan", "render", "render_infrared", "render_visible",
]
