"""Geometry of the four components: a material map and a shading map, plus named anchors.

A scene is drawn in the object's own frame (the image frame before the camera moves) with
Pillow's ``ImageDraw`` on two 8-bit layers: ``mat`` (which material each pixel shows, 0 =
nothing) and ``shade`` (Lambert-like brightness, 128 = lit face-on). Cylindrical parts
(discs, sheds, caps) are drawn as concentric shapes that brighten towards the light, which
gives a rounded look for a handful of C-level draw calls. The visible renderer colours the
materials; the infrared one turns them into temperatures. The anchors (``parts``) tell the
defects where the discs, flanges, seams, fins, bolts and terminals are.

Every random choice of the geometry comes from the scene's generator in a fixed order; the
``missing`` argument (the ``missing_part`` defect) only decides which element is left out,
so a defective image and its normal twin differ in that element alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

# Material ids of the ``mat`` layer.
EMPTY, PORCELAIN, METAL, PAINT, DARK, COPPER, GLASS, PLATE, LAMP_RED, LAMP_GREEN = range(10)

Box = tuple[float, ...]


@dataclass
class Scene:
    """A drawn component in its own frame.

    Attributes:
        mat: Material id per pixel (uint8, ``EMPTY`` where nothing is drawn).
        shade: Brightness per pixel (float32, about 0.3 to 1.4; 1.0 lit face-on).
        parts: Anchors for the defects: lists of boxes ``(x0, y0, x1, y1)`` or points.
        warm_box: Box of the oil-filled volume (the infrared view's hot region).

    """

    mat: np.ndarray
    shade: np.ndarray
    parts: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)
    warm_box: Box = (0.0, 0.0, 0.0, 0.0)


class _Painter:
    """Draws shapes into the material and shading layers at once."""

    STEPS = 5

    def __init__(self, w: int, h: int, light: float) -> None:
        self.mat = Image.new("L", (w, h), EMPTY)
        self.shade = Image.new("L", (w, h), 128)
        self._m = ImageDraw.Draw(self.mat)
        self._s = ImageDraw.Draw(self.shade)
        self.light = light  # -1 (light from the left) .. 1 (from the right)

    def rect(self, box: Box, mat: int, shade: float = 0.9) -> None:
        self._m.rectangle(box, fill=mat)
        self._s.rectangle(box, fill=int(shade * 128))

    def ellipse(self, box: Box, mat: int, shade: float = 0.9) -> None:
        self._m.ellipse(box, fill=mat)
        self._s.ellipse(box, fill=int(shade * 128))

    def poly(self, pts: list[tuple[float, float]], mat: int, shade: float = 0.9) -> None:
        self._m.polygon(pts, fill=mat)
        self._s.polygon(pts, fill=int(shade * 128))

    def line(self, pts: list[tuple[float, float]], mat: int, width: int, shade: float = 0.6
             ) -> None:
        self._m.line(pts, fill=mat, width=width)
        self._s.line(pts, fill=int(shade * 128), width=width)

    def hole(self, box: Box, frac: float = 0.6) -> None:
        """The empty hole a missing bolt or fitting leaves."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        rx, ry = (box[2] - box[0]) * frac / 2, (box[3] - box[1]) * frac / 2
        self.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), DARK, 0.35)

    def outline(self, box: Box, mat: int, width: int, shade: float = 0.45) -> None:
        self._m.rectangle(box, outline=mat, width=width)
        self._s.rectangle(box, outline=int(shade * 128), width=width)

    def _graded(self, box: Box, mat: int, ellipse: bool, lo: float, hi: float) -> None:
        x0, y0, x1, y1 = box
        cx, half = (x0 + x1) / 2, (x1 - x0) / 2
        draw_m = self._m.ellipse if ellipse else self._m.rectangle
        draw_m(box, fill=mat)
        for i in range(self.STEPS):
            f = 1.0 - i / self.STEPS
            c = cx + self.light * half * (1.0 - f) * 0.55
            hw = half * f
            shrink = (y1 - y0) * (1.0 - f) * 0.18 if ellipse else 0.0
            b = (c - hw, y0 + shrink, c + hw, y1 - shrink)
            v = int((lo + (hi - lo) * i / (self.STEPS - 1)) * 128)
            (self._s.ellipse if ellipse else self._s.rectangle)(b, fill=v)

    def cyl_rect(self, box: Box, mat: int, lo: float = 0.45, hi: float = 1.3) -> None:
        """An upright cylinder seen from the side (shaded across its width)."""
        self._graded(box, mat, False, lo, hi)

    def cyl_ellipse(self, box: Box, mat: int, lo: float = 0.5, hi: float = 1.3) -> None:
        """A disc or shed seen slightly from above (shaded ellipse)."""
        self._graded(box, mat, True, lo, hi)

    def scene(self, parts: dict[str, list[tuple[float, ...]]], warm: Box) -> Scene:
        shade = np.asarray(self.shade, dtype=np.float32) / 128.0
        return Scene(np.asarray(self.mat).copy(), shade, parts, warm)


def _pick(missing: tuple[float, float] | None, n: int) -> int:
    return -1 if missing is None or n == 0 else min(n - 1, int(missing[0] * n))


def insulator(w: int, h: int, rng: np.random.Generator, light: float,
              missing: tuple[float, float] | None) -> Scene:
    """A suspension/post insulator string: porcelain or glass discs on a steel pin."""
    p = _Painter(w, h, light)
    n = int(rng.integers(5, 12))
    cx = w * rng.uniform(0.45, 0.55)
    r = w * rng.uniform(0.22, 0.36)
    y0, y1 = h * rng.uniform(0.08, 0.14), h * rng.uniform(0.86, 0.93)
    pitch = (y1 - y0) / n
    th = pitch * rng.uniform(0.5, 0.75)
    # Crossarm on top and the conductor clamp at the bottom.
    p.rect((0, y0 - h * 0.06, w, y0 - h * 0.01), METAL, 0.7)
    p.cyl_rect((cx - r * 0.09, y0 - h * 0.02, cx + r * 0.09, y1 + pitch * 0.2), METAL)
    gone = _pick(missing, n)
    discs: list[tuple[float, ...]] = []
    for j in range(n):
        yc = y0 + (j + 0.5) * pitch
        box = (cx - r, yc - th / 2, cx + r, yc + th / 2)
        if j != gone:
            p.ellipse((cx - r * 0.97, yc - th * 0.2, cx + r * 0.97, yc + th * 0.75),
                      PORCELAIN, 0.45)  # underside ribs in shadow
            p.cyl_ellipse(box, PORCELAIN)
            discs.append(box)
        p.cyl_ellipse((cx - r * 0.24, yc - th * 0.75, cx + r * 0.24, yc + th * 0.05), METAL)
    p.line([(cx, y1 + pitch * 0.2), (w, y1 + pitch * 0.5)], DARK, max(2, w // 60))
    return p.scene({"discs": discs, "axis": [(cx, y0, y1, r)],
                    "terminals": [(cx, y1 + pitch * 0.2)]}, (0, 0, 0, 0))


def _bushing_body(p: _Painter, cx: float, bottom: float, top: float, r: float, sheds: int,
                  gone: int, out: dict[str, list[tuple[float, ...]]]) -> None:
    """Porcelain sheds on a core above a flange, a metal cap and the terminal stud."""
    p.cyl_rect((cx - r * 0.45, top, cx + r * 0.45, bottom), PORCELAIN, 0.5, 1.2)
    pitch = (bottom - top) / sheds
    for j in range(sheds):
        yc = top + (j + 0.6) * pitch
        rr = r * (1.0 if j % 2 == 0 else 0.78) * (1.0 - 0.12 * (1 - j / sheds))
        box = (cx - rr, yc - pitch * 0.28, cx + rr, yc + pitch * 0.28)
        if len(out["sheds"]) != gone:
            p.ellipse((cx - rr * 0.96, yc - pitch * 0.1, cx + rr * 0.96, yc + pitch * 0.38),
                      PORCELAIN, 0.45)
            p.cyl_ellipse(box, PORCELAIN)
        out["sheds"].append(box)
    cap = (cx - r * 0.5, top - pitch * 0.9, cx + r * 0.5, top + pitch * 0.1)
    p.cyl_rect(cap, METAL)
    stud = (cx - r * 0.14, cap[1] - pitch * 0.9, cx + r * 0.14, cap[1])
    p.cyl_rect(stud, COPPER)
    out["terminals"].append((cx, stud[1] + pitch * 0.3))
    out["caps"].append(cap)


def bushing(w: int, h: int, rng: np.random.Generator, light: float,
            missing: tuple[float, float] | None) -> Scene:
    """One to three transformer bushings on the tank cover, flange bolts, line leads."""
    p = _Painter(w, h, light)
    count = int(rng.choice([1, 1, 2, 3]))
    lid = h * rng.uniform(0.8, 0.88)
    top = h * rng.uniform(0.16, 0.26)
    r = w * rng.uniform(0.18, 0.26) / (1 + 0.55 * (count - 1))
    sheds = int(rng.integers(6, 12))
    xs = [w * (k + 0.5) / count for k in range(count)]
    p.rect((0, lid, w, h), PAINT, 0.95)
    p.line([(0, lid), (w, lid)], DARK, max(1, h // 90))
    parts: dict[str, list[tuple[float, ...]]] = {"sheds": [], "terminals": [], "caps": [],
                                                 "bolts": [], "flanges": []}
    # missing[1] picks a shed (mostly) or a flange bolt.
    n_sheds, n_bolts = sheds * count, 5 * count
    gone_shed = _pick(missing, n_sheds) if missing and missing[1] < 0.75 else -1
    gone_bolt = _pick(missing, n_bolts) if missing and missing[1] >= 0.75 else -1
    for k, cx in enumerate(xs):
        flange = (cx - r * 0.8, lid - h * 0.06, cx + r * 0.8, lid)
        p.cyl_rect(flange, METAL, 0.4, 1.2)
        parts["flanges"].append(flange)
        for b in range(5):
            bx = flange[0] + (b + 0.5) * (flange[2] - flange[0]) / 5
            bolt = (bx - r * 0.07, lid - h * 0.025, bx + r * 0.07, lid - h * 0.005)
            if k * 5 + b != gone_bolt:
                p.cyl_ellipse(bolt, DARK, 0.8, 1.6)
            parts["bolts"].append(bolt)
        _bushing_body(p, cx, flange[1], top, r, sheds, gone_shed, parts)
        tx, ty = parts["terminals"][-1]
        p.line([(tx, ty), (tx + w * 0.15 * (1 if k % 2 else -1), 0)], DARK, max(2, w // 70))
    return p.scene(parts, (0, lid, w, h))


def transformer_tank(w: int, h: int, rng: np.random.Generator, light: float,
                     missing: tuple[float, float] | None) -> Scene:
    """A distribution transformer: tank, radiator fins, cover bolts, small bushings."""
    p = _Painter(w, h, light)
    both = bool(rng.random() < 0.6)
    rad_w = w * rng.uniform(0.14, 0.2)
    tx0 = rad_w + w * 0.05 if both else w * rng.uniform(0.08, 0.14)
    tx1 = w - tx0 if both else w - rad_w - w * 0.05
    ty0, ty1 = h * rng.uniform(0.3, 0.38), h * rng.uniform(0.84, 0.9)
    nf = int(rng.integers(4, 8))
    nb = int(rng.integers(6, 10))
    p.rect((tx0 - w * 0.02, ty1, tx1 + w * 0.02, min(h - 1, ty1 + h * 0.05)), DARK, 0.8)
    sides = [(w * 0.03, tx0)] + ([(tx1, w - w * 0.03)] if both else [(tx1, w - w * 0.03)])
    fins: list[tuple[float, ...]] = []
    for a, b in sides:
        for j in range(nf):
            fx0 = a + (b - a) * j / nf
            fins.append((fx0, ty0 + h * 0.05, fx0 + (b - a) / nf * 0.62, ty1 - h * 0.04))
    # missing[1] picks what is gone: a radiator fin, a cover bushing or a cover bolt.
    what = -1.0 if missing is None else missing[1]
    gone_fin = _pick(missing, len(fins)) if 0 <= what < 0.4 else -1
    gone_bushing = _pick(missing, 3) if 0.4 <= what < 0.8 else -1
    gone_bolt = _pick(missing, nb) if what >= 0.8 else -1
    for a, b in sides:  # radiator headers behind the fins
        p.rect((a, ty0 + h * 0.04, b, ty0 + h * 0.07), METAL, 0.7)
        p.rect((a, ty1 - h * 0.06, b, ty1 - h * 0.03), METAL, 0.7)
    for j, f in enumerate(fins):
        if j != gone_fin:
            p.cyl_rect(f, PAINT, 0.55, 1.15)
    p.cyl_rect((tx0, ty0, tx1, ty1), PAINT, 0.8, 1.05)
    cover = (tx0 - w * 0.015, ty0 - h * 0.035, tx1 + w * 0.015, ty0 + h * 0.005)
    p.rect(cover, PAINT, 0.75)
    seam_y = ty0 + h * 0.005
    p.line([(tx0, seam_y), (tx1, seam_y)], DARK, max(1, h // 100))
    bolts: list[tuple[float, ...]] = []
    for j in range(nb):
        bx = cover[0] + (j + 0.5) * (cover[2] - cover[0]) / nb
        bolt = (bx - w * 0.008, cover[1] + h * 0.008, bx + w * 0.008, cover[3] - h * 0.008)
        if j != gone_bolt:
            p.ellipse(bolt, METAL, 1.3)
        else:
            p.hole(bolt)
        bolts.append(bolt)
    plate = (tx0 + (tx1 - tx0) * 0.6, ty0 + (ty1 - ty0) * 0.25,
             tx0 + (tx1 - tx0) * 0.82, ty0 + (ty1 - ty0) * 0.4)
    p.rect(plate, PLATE, 1.0)
    p.cyl_rect(((tx0 + tx1) / 2 - w * 0.02, ty1 - h * 0.07, (tx0 + tx1) / 2 + w * 0.02,
                ty1 - h * 0.03), METAL)  # drain valve
    terminals: list[tuple[float, ...]] = []
    for k in range(3):  # small cover bushings
        cx = tx0 + (tx1 - tx0) * (0.25 + 0.25 * k)
        rr = w * 0.025
        terminals.append((cx, ty0 - h * 0.23))
        if k == gone_bushing:  # only the stud hole in the cover remains
            p.ellipse((cx - rr * 0.6, cover[1] - h * 0.006, cx + rr * 0.6, cover[1] + h * 0.006),
                      DARK, 0.5)
            continue
        p.cyl_rect((cx - rr * 0.5, ty0 - h * 0.2, cx + rr * 0.5, cover[1]), PORCELAIN)
        for s in range(3):
            y = ty0 - h * (0.07 + 0.045 * s)
            p.cyl_ellipse((cx - rr, y - h * 0.012, cx + rr, y + h * 0.012), PORCELAIN)
        p.cyl_rect((cx - rr * 0.3, ty0 - h * 0.25, cx + rr * 0.3, ty0 - h * 0.2), COPPER)
    return p.scene({"fins": fins, "bolts": bolts, "seams": [(tx0, seam_y, tx1, seam_y)],
                    "tank": [(tx0, ty0, tx1, ty1)], "terminals": terminals},
                   (tx0, ty0, tx1, ty1))


def switchgear(w: int, h: int, rng: np.random.Generator, light: float,
               missing: tuple[float, float] | None) -> Scene:
    """A row of switchgear cabinets: doors, vents, windows, lamps, handles, bolts."""
    p = _Painter(w, h, light)
    n = int(rng.integers(1, 4))
    x0, x1 = w * rng.uniform(0.04, 0.12), w * rng.uniform(0.88, 0.96)
    y0, y1 = h * rng.uniform(0.06, 0.16), h * rng.uniform(0.86, 0.93)
    vents = int(rng.integers(3, 6))
    pw = (x1 - x0) / n
    handles: list[tuple[float, ...]] = []
    bolts: list[tuple[float, ...]] = []
    cabinets: list[tuple[float, ...]] = []
    vent_boxes: list[tuple[float, ...]] = []
    for k in range(n):
        a, b = x0 + k * pw, x0 + (k + 1) * pw
        cabinets.append((a, y0, b, y1))
        p.cyl_rect((a, y0, b, y1), PAINT, 0.85, 1.08)
        p.line([(a, y0), (a, y1)], DARK, max(1, w // 120))
        m = pw * 0.08
        door = (a + m, y0 + (y1 - y0) * 0.05, b - m, y1 - (y1 - y0) * 0.08)
        p.outline(door, DARK, max(1, w // 140))
        win = (a + pw * 0.3, y0 + (y1 - y0) * 0.12, b - pw * 0.3, y0 + (y1 - y0) * 0.28)
        p.rect(win, GLASS, 0.9)
        lr = pw * 0.035
        for i, lamp in enumerate((LAMP_RED, LAMP_GREEN)):
            lx = a + pw * (0.4 + 0.2 * i)
            ly = y0 + (y1 - y0) * 0.34
            p.ellipse((lx - lr, ly - lr, lx + lr, ly + lr), lamp, 1.2)
        p.rect((a + pw * 0.35, y0 + (y1 - y0) * 0.4, b - pw * 0.35, y0 + (y1 - y0) * 0.46),
               PLATE, 1.0)
        for v in range(vents):
            vy = y0 + (y1 - y0) * (0.68 + 0.035 * v)
            vb = (a + pw * 0.25, vy, b - pw * 0.25, vy + (y1 - y0) * 0.015)
            vent_boxes.append(vb)
        handles.append((b - m - pw * 0.12, y0 + (y1 - y0) * 0.45, b - m - pw * 0.07,
                        y0 + (y1 - y0) * 0.6))
        br = max(1.2, pw * 0.018)
        for bx, by in ((door[0] + br * 2, door[1] + br * 2), (door[2] - br * 2, door[1] + br * 2),
                       (door[0] + br * 2, door[3] - br * 2), (door[2] - br * 2, door[3] - br * 2)):
            bolts.append((bx - br, by - br, bx + br, by + br))
    for vent in vent_boxes:
        p.rect(vent, DARK, 0.6)
    by_handle = missing is not None and missing[1] < 0.75
    gone_h = _pick(missing, len(handles)) if by_handle else -1
    gone_b = _pick(missing, len(bolts)) if missing is not None and not by_handle else -1
    for j, hb in enumerate(handles):
        if j != gone_h:
            p.cyl_rect(hb, METAL, 0.5, 1.4)
        else:  # the two mounting holes of the handle remain
            hw = hb[2] - hb[0]
            p.hole((hb[0], hb[1], hb[2], hb[1] + hw), 0.7)
            p.hole((hb[0], hb[3] - hw, hb[2], hb[3]), 0.7)
    for j, bb in enumerate(bolts):
        if j != gone_b:
            p.ellipse(bb, METAL, 1.3)
        else:
            p.hole(bb)
    p.rect((x0, y1, x1, min(h - 1, y1 + h * 0.04)), DARK, 0.7)
    return p.scene({"cabinets": cabinets, "vents": vent_boxes, "handles": handles,
                    "bolts": bolts}, (0, 0, 0, 0))


DRAW = {"insulator": insulator, "bushing": bushing, "transformer_tank": transformer_tank,
        "switchgear": switchgear}
"""Scene function of every component."""
