"""Visible-light defects painted onto a component in its own frame.

Each painter draws a soft mask with Pillow (polylines, ellipses, blurred blotches), keeps
it on the materials where the defect can occur, and blends a colour into the image:

* ``crack``: a thin dark jagged line across one porcelain disc or shed, with a pale edge
  where the glaze chipped;
* ``flashover``: soot streaks along the insulation between the fittings and scorched
  spots (on switchgear: a soot plume above a vent);
* ``rust``: orange-brown blotches on painted or galvanised metal, near edges, seams and
  bolts where water stands;
* ``oil_leak``: a dark glossy stain running down from a flange, seam or valve.

``missing_part`` is geometry (the scene leaves the element out), ``hot_spot`` is infrared.
Severity (size, opacity) varies so that some defects are plain and some subtle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mock_devices.images.scene import METAL, PAINT, PORCELAIN, Scene

Painter = Callable[[np.ndarray, Scene, np.random.Generator, float], None]


def _layer(w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("L", (w, h), 0)
    return im, ImageDraw.Draw(im)


def _arr(im: Image.Image, blur: float = 0.0) -> np.ndarray:
    if blur > 0:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(im, dtype=np.float32) / 255.0


def _blend(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    m = mask[..., None]
    img *= 1.0 - m
    img += m * colour


def _blotches(w: int, h: int, box: tuple[float, ...], rng: np.random.Generator,
              cells: int, cover: float) -> np.ndarray:
    """Soft patchy mask inside ``box``: low-frequency noise over a threshold, faded out."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(w, max(x0 + 2, x1)), min(h, max(y0 + 2, y1))
    bw, bh = x1 - x0, y1 - y0
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    noise = np.asarray(Image.fromarray(grid).resize((bw, bh), Image.Resampling.BICUBIC),
                       dtype=np.float32) / 255.0
    fine = rng.random((bh, bw)).astype(np.float32)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    fall = 1.0 - ((xx / bw - 0.5) ** 2 + (yy / bh - 0.5) ** 2) * 3.2
    local = np.clip((noise - (1.0 - cover)) * 5.0, 0, 1) * np.clip(fall, 0, 1)
    local *= 0.65 + 0.35 * fine
    out = np.zeros((h, w), np.float32)
    out[y0:y1, x0:x1] = local
    return out


def _one_column(boxes: list[tuple[float, ...]], rng: np.random.Generator
                ) -> list[tuple[float, ...]]:
    """The discs or sheds of one string or bushing (the same centre line)."""
    pick = boxes[int(rng.integers(0, len(boxes)))]
    c = pick[0] + pick[2]
    return [b for b in boxes if abs(b[0] + b[2] - c) < 2]


def crack(img: np.ndarray, scene: Scene, rng: np.random.Generator, sev: float) -> None:
    """A thin dark jagged crack in the porcelain.

    On a disc the crack runs radially across its top face to the rim; on a bushing it
    runs along the housing over two to four sheds. It may branch and chip the rim.
    """
    h, w = scene.mat.shape
    sheds = scene.parts.get("sheds")
    boxes = sheds or scene.parts.get("discs") or []
    j = int(rng.integers(0, len(boxes)))
    span = int(rng.integers(3, 6)) if sheds else 1
    # Sheds of one bushing are consecutive in the list; stay within the same bushing.
    sel = [b for b in boxes[j:j + span] if abs((b[0] + b[2]) - (boxes[j][0] + boxes[j][2])) < 2]
    x0, x1 = min(b[0] for b in sel), max(b[2] for b in sel)
    y0, y1 = sel[0][1], sel[-1][3]
    bw, bh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    im, d = _layer(w, h)
    # Wide enough to stay visible at inspection resolution: at least ~1.2 px when the
    # frame is shrunk to 64 px (an open crack with its chipped glaze, not a hairline).
    width = max(2, int(round(max(w, h) / 64 * rng.uniform(1.2, 2.0))))
    if sheds:  # along the housing
        x, y = cx + bw * 0.15 * rng.uniform(-1, 1), y0 + bh * 0.1  # over the core
        steps = 3 * len(sel) + 1
        pts = [(x, y)]
        for i in range(steps):
            x = float(np.clip(x + bw * rng.uniform(-0.06, 0.06), cx - bw * 0.2, cx + bw * 0.2))
            pts.append((x, y0 + bh * (0.1 + 0.85 * (i + 1) / steps)))
    else:  # radially across the disc's top face to its rim
        side = 1.0 if rng.random() < 0.5 else -1.0
        x, y = cx + side * bw * rng.uniform(0.05, 0.2), y0 + bh * rng.uniform(0.1, 0.3)
        end_x = cx + side * bw * rng.uniform(0.3, 0.48)
        steps = int(rng.integers(4, 7))
        pts = [(x, y)]
        for i in range(steps):
            f = (i + 1) / steps
            pts.append((x + (end_x - x) * f + bw * rng.uniform(-0.03, 0.03),
                        y + (y1 - bh * 0.05 - y) * f + bh * rng.uniform(-0.12, 0.12)))
    d.line(pts, fill=255, width=width)
    if rng.random() < 0.7:  # a chip broken out of the rim where the crack ends
        ex, ey = pts[-1]
        r = max(1.5, bw * rng.uniform(0.06, 0.12))
        d.polygon([(ex - r, ey), (ex + r * rng.uniform(0.3, 1), ey - r), (ex + r, ey + r * 0.4),
                   (ex, ey + r * 0.6)], fill=210)
    if rng.random() < 0.5:  # a branch
        bx, by = pts[len(pts) // 2]
        d.line([(bx, by), (bx + bw * rng.uniform(-0.2, 0.2), by + bh * rng.uniform(0.1, 0.3))],
               fill=230, width=max(1, width - 1))
    band = np.zeros((h, w), np.float32)
    band[max(0, int(y0) - 1):min(h, int(y1) + 2), max(0, int(x0)):min(w, int(x1) + 1)] = 1.0
    mask = _arr(im) * (scene.mat == PORCELAIN) * band
    # The glaze chips along the crack and shows the pale porcelain body beside it.
    edge = np.clip(np.roll(mask, 1, axis=1) + np.roll(mask, -1, axis=0), 0, 1) * (1 - mask)
    a = 0.8 + 0.18 * sev
    img *= (1.0 - a * mask)[..., None]
    _blend(img, edge * scene.mat.astype(bool) * 0.55 * a, np.array([0.8, 0.78, 0.74],
                                                                     np.float32))


def flashover(img: np.ndarray, scene: Scene, rng: np.random.Generator, sev: float) -> None:
    """Soot streaks along the insulation and scorched spots (a plume on switchgear)."""
    h, w = scene.mat.shape
    im, d = _layer(w, h)
    soot = np.array([0.07, 0.055, 0.045], np.float32)
    if "vents" in scene.parts:
        vx0, vy0, vx1, vy1 = scene.parts["vents"][int(rng.integers(0, len(scene.parts["vents"])))]
        top = vy0 - h * rng.uniform(0.15, 0.35)
        spread = (vx1 - vx0) * rng.uniform(0.1, 0.4)
        d.polygon([(vx0, vy1), (vx1, vy1), (vx1 + spread, top), (vx0 - spread, top)],
                  fill=int(150 + 100 * sev))
        for _ in range(int(rng.integers(2, 5))):
            sx, sy = rng.uniform(vx0, vx1), rng.uniform(top, vy1)
            r = h * rng.uniform(0.015, 0.04)
            d.ellipse((sx - r, sy - r, sx + r, sy + r), fill=255)
        mask = _arr(im, max(1.0, h / 60)) * (scene.mat > 0)
        _blend(img, mask * (0.6 + 0.35 * sev), soot)
        return
    boxes = _one_column(scene.parts.get("discs") or scene.parts.get("sheds") or [], rng)
    cx = float(np.mean([(b[0] + b[2]) / 2 for b in boxes]))
    r = float(np.mean([(b[2] - b[0]) / 2 for b in boxes]))
    ya, yb = min(b[1] for b in boxes), max(b[3] for b in boxes)
    start = ya + (yb - ya) * rng.uniform(0.0, 0.4)
    end = min(yb, start + (yb - ya) * rng.uniform(0.4, 0.9))
    for _ in range(int(rng.integers(1, 4))):  # the arc's tracks down the surface
        x = cx + r * rng.uniform(-0.6, 0.6)
        pts = [(x, start)]
        for y in np.linspace(start, end, 8)[1:]:
            x = float(np.clip(x + r * rng.uniform(-0.15, 0.15), cx - r, cx + r))
            pts.append((x, float(y)))
        d.line(pts, fill=int(150 + 100 * sev), width=int(max(1, r * rng.uniform(0.12, 0.3))))
    for _ in range(int(rng.integers(2, 6))):
        b = boxes[int(rng.integers(0, len(boxes)))]
        sx = rng.uniform(b[0] + (b[2] - b[0]) * 0.2, b[2] - (b[2] - b[0]) * 0.2)
        sy = (b[1] + b[3]) / 2
        sr = (b[2] - b[0]) * rng.uniform(0.1, 0.25)
        d.ellipse((sx - sr, sy - sr * 0.6, sx + sr, sy + sr * 0.6), fill=255)
    mask = _arr(im, max(0.6, w / 160)) * (scene.mat > 0)
    _blend(img, mask * (0.55 + 0.4 * sev), soot)


def rust(img: np.ndarray, scene: Scene, rng: np.random.Generator, sev: float) -> None:
    """Orange-brown blotches on painted or galvanised metal, with runoff streaks below."""
    h, w = scene.mat.shape
    where = scene.parts.get("tank") or scene.parts.get("cabinets") or [(0, 0, w, h)]
    x0, y0, x1, y1 = where[int(rng.integers(0, len(where)))]
    bw, bh = (x1 - x0) * rng.uniform(0.45, 0.8), (y1 - y0) * rng.uniform(0.3, 0.55)
    # Water stands at the bottom edge and at seams; some patches start high on the wall.
    bx = rng.uniform(x0 - bw * 0.2, x1 - bw * 0.8)
    by = y1 - bh * rng.uniform(0.6, 1.0) if rng.random() < 0.6 else rng.uniform(y0, y1 - bh)
    box = (bx, by, bx + bw, by + bh)
    mask = _blotches(w, h, box, rng, int(rng.integers(4, 8)), rng.uniform(0.6, 0.8))
    im, d = _layer(w, h)
    for _ in range(int(rng.integers(0, 5))):  # rust-coloured runoff down the wall
        rx = rng.uniform(bx + bw * 0.1, bx + bw * 0.9)
        ry = by + bh * rng.uniform(0.3, 0.6)
        d.line([(rx, ry), (rx + rng.uniform(-1, 1), ry + (y1 - ry) * rng.uniform(0.3, 1.0))],
               fill=int(rng.integers(90, 170)), width=max(1, int(w / 120)))
    mask = np.maximum(mask, _arr(im, 0.5)) * np.isin(scene.mat, (PAINT, METAL))
    tone = _blotches(w, h, box, rng, 6, 0.9)
    light = np.clip(scene.shade, 0.5, 1.3)[..., None]
    orange = np.array([0.68, 0.32, 0.09], np.float32)
    brown = np.array([0.33, 0.15, 0.06], np.float32)
    colour = (orange + (brown - orange) * tone[..., None]) * light
    m = (np.clip(mask * 1.4, 0, 1) * (0.6 + 0.4 * sev))[..., None]
    img *= 1.0 - m
    img += m * colour


def oil_leak(img: np.ndarray, scene: Scene, rng: np.random.Generator, sev: float) -> None:
    """A dark glossy stain running down from a gasket: bushing cap or flange, tank seam."""
    h, w = scene.mat.shape
    starts: list[tuple[float, float, float, bool]] = []
    for f in scene.parts.get("flanges", []):  # from the flange gasket onto the cover
        starts.append((rng.uniform(f[0] + (f[2] - f[0]) * 0.2, f[2] - (f[2] - f[0]) * 0.2),
                       f[1] + (f[3] - f[1]) * 0.3, (f[2] - f[0]) * 0.45, True))
    for c in scene.parts.get("caps", []):  # from the cap gasket down the sheds
        starts.append((rng.uniform(c[0] + (c[2] - c[0]) * 0.3, c[2] - (c[2] - c[0]) * 0.3),
                       c[3], (c[2] - c[0]) * 0.5, False))
    for s in scene.parts.get("seams", []):
        starts.append((rng.uniform(s[0] + (s[2] - s[0]) * 0.1, s[2] - (s[2] - s[0]) * 0.1),
                       s[1], (s[2] - s[0]) * 0.08, False))
    x, y, width, pool = starts[int(rng.integers(0, len(starts)))]
    width *= rng.uniform(1.0, 1.6)
    bottom = y + (h - y) * (rng.uniform(0.7, 1.0) if pool else rng.uniform(0.3, 0.85))
    im, d = _layer(w, h)
    d.polygon([(x - width * 0.3, y), (x + width * 0.3, y), (x + width * 0.6, y + (bottom - y)
               * 0.45), (x - width * 0.6, y + (bottom - y) * 0.45)], fill=255)
    for _ in range(int(rng.integers(2, 5))):  # runs of different lengths
        rx = x + width * rng.uniform(-0.55, 0.55)
        ry = y + (bottom - y) * rng.uniform(0.6, 1.0)
        d.line([(rx, y + (bottom - y) * 0.3), (rx, ry)], fill=255,
               width=int(max(1, width * rng.uniform(0.08, 0.2))))
        d.ellipse((rx - width * 0.1, ry - width * 0.1, rx + width * 0.1, ry + width * 0.1),
                  fill=255)
    if pool:  # oil pools on the cover below the flange
        pw, ph = width * rng.uniform(0.8, 1.6), (bottom - y) * rng.uniform(0.15, 0.3)
        py = y + (bottom - y) * rng.uniform(0.45, 0.7)
        d.ellipse((x - pw, py - ph, x + pw, py + ph), fill=255)
    mask = _arr(im, max(0.5, w / 200)) * (scene.mat > 0)
    oil = np.array([0.09, 0.065, 0.035], np.float32)
    _blend(img, mask * (0.5 + 0.42 * sev), oil)
    hl, dh = _layer(w, h)  # a glossy highlight down the wet film
    dh.line([(x + width * 0.15, y + 2), (x + width * 0.25, y + (bottom - y) * 0.5)], fill=255,
            width=1)
    img += (_arr(hl, 0.6) * mask * 0.35)[..., None]


def weathering(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Harmless marks of a normal unit: grey grime, dust and bird droppings.

    They are drawn from the scene's own stream (normal and defective twins both have
    them), so a model has to tell rust and oil from dirt rather than spot any blotch.
    """
    h, w = scene.mat.shape
    if rng.random() < 0.5:
        bw, bh = w * rng.uniform(0.15, 0.5), h * rng.uniform(0.1, 0.35)
        bx, by = rng.uniform(0, w - bw), rng.uniform(h * 0.2, h - bh)
        mask = _blotches(w, h, (bx, by, bx + bw, by + bh), rng, 5, rng.uniform(0.4, 0.7))
        img *= (1.0 - 0.22 * mask * (scene.mat > 0))[..., None]
    if rng.random() < 0.25:
        im, d = _layer(w, h)
        ys, xs = np.nonzero(scene.mat)
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(0, len(ys)))
            r = max(0.8, w * rng.uniform(0.004, 0.012))
            d.ellipse((xs[k] - r, ys[k] - r, xs[k] + r, ys[k] + r * 2), fill=220)
        _blend(img, _arr(im) * (scene.mat > 0), np.array([0.9, 0.9, 0.86], np.float32))


PAINTERS: dict[str, Painter] = {"crack": crack, "flashover": flashover, "rust": rust,
                                "oil_leak": oil_leak}
"""Painter of every visible defect drawn on the surface (``missing_part`` is geometry)."""
