"""What one generated image shows: :class:`ImageSpec`, and which defects fit which part."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lakehouse.contracts.images import CAMERAS, COMPONENTS, DEFECT_KINDS, NORMAL
from mock_devices.transformers import Thermal

VISIBLE_DEFECTS: dict[str, tuple[str, ...]] = {
    "insulator": ("crack", "flashover", "missing_part"),
    "bushing": ("crack", "flashover", "oil_leak", "missing_part"),
    "transformer_tank": ("rust", "oil_leak", "missing_part"),
    "switchgear": ("rust", "flashover", "missing_part"),
}
"""Defects a visible-light view of each component can show (physically plausible ones)."""

INFRARED_COMPONENTS: tuple[str, ...] = ("transformer_tank", "bushing")
"""Components of the infrared views (their temperatures follow the thermal model)."""

INFRARED_DEFECTS: tuple[str, ...] = ("hot_spot",)
"""The one defect an infrared view shows."""


@dataclass(frozen=True)
class ImageSpec:
    """Everything that decides one image; :func:`mock_devices.images.render` is pure in it.

    Attributes:
        seed: Seed of every random choice of the drawing (geometry, lighting, camera, noise).
        camera: ``visible`` or ``infrared``.
        component: One of :data:`~lakehouse.contracts.images.COMPONENTS`.
        defect: A defect kind, or None for a normal image. The defect's own randomness is
            drawn from a separate stream, so ``replace(spec, defect=None)`` is the same
            picture without the defect.
        width: Image width in pixels.
        height: Image height in pixels.
        load_factor: Transformer load (per unit of rating) of an infrared view.
        ambient_c: Ambient temperature (°C) of an infrared view.
        loss_ratio: Load-loss to no-load-loss ratio of the transformer (thermal model's R).

    """

    seed: int
    camera: str
    component: str
    defect: str | None = None
    width: int = 128
    height: int = 128
    load_factor: float = 0.7
    ambient_c: float = 20.0
    loss_ratio: float = 5.0

    def __post_init__(self) -> None:
        if self.camera not in CAMERAS:
            raise ValueError(f"unknown camera {self.camera!r}; choose from {CAMERAS}")
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown component {self.component!r}; choose from {COMPONENTS}")
        if self.camera == "infrared" and self.component not in INFRARED_COMPONENTS:
            raise ValueError(f"infrared views show {INFRARED_COMPONENTS}, not {self.component}")
        allowed = (INFRARED_DEFECTS if self.camera == "infrared"
                   else VISIBLE_DEFECTS[self.component])
        if self.defect is not None and self.defect not in allowed:
            known = "known" if self.defect in DEFECT_KINDS else "unknown"
            raise ValueError(f"{known} defect {self.defect!r} is not drawn on a {self.camera} "
                             f"{self.component}; choose from {allowed}")
        if not (16 <= self.width <= 4096 and 16 <= self.height <= 4096):
            raise ValueError(f"image size {self.width}x{self.height} is out of 16..4096")
        if not 0 <= self.load_factor <= 3:
            raise ValueError(f"load factor {self.load_factor} is out of 0..3")

    @property
    def label(self) -> str:
        """The description file's label: the defect kind or ``normal``."""
        return self.defect or NORMAL

    def oil_temperatures(self) -> tuple[float, float]:
        """Top-oil and hot-spot temperatures (°C) of the thermal model at steady state.

        The simulator's :class:`~mock_devices.transformers.Thermal` starts at the steady
        state of its first load, which is the state an inspection photo catches.
        """
        top, hot = Thermal(np.array([self.loss_ratio])).temperatures(
            np.array([self.load_factor]), np.array([self.ambient_c]), np.array([1.0]))
        return float(top[0]), float(hot[0])
