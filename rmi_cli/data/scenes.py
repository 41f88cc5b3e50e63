"""Procedural street scenes for the `synthetic` dataset (NumPy, a few ms per 96x128 image).

A scene is a horizon with sky above and pavement below, a road in perspective with dashed lane
marks, buildings with window grids, trees, cars on the road, people on the pavement, poles 1-3 px
wide with signs, sagging wires 1-2 px thick, and now and then a small void blob. Colours depend
on the class but are jittered per image and per object, several classes share hues (poles and
buildings are grey, wires are as dark as car windows, lane marks are as light as signs), and a
smooth texture plus pixel noise cover everything: a model has to use shape and context, and the
thin structures are where pixel-wise and structure-aware losses differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmi_cli.constants import IGNORE_INDEX

CLASS_NAMES = (
    "sky",
    "building",
    "road",
    "pavement",
    "vegetation",
    "pole",
    "wire",
    "sign",
    "car",
    "person",
)
SKY, BUILDING, ROAD, PAVEMENT, VEGETATION, POLE, WIRE, SIGN, CAR, PERSON = range(len(CLASS_NAMES))

# Typical RGB per class; each image jitters the whole palette, and most objects jitter again.
BASE_COLOURS = np.array(
    [
        [140, 165, 200],  # sky
        [135, 120, 110],  # building
        [95, 95, 100],  # road
        [150, 140, 125],  # pavement
        [70, 110, 55],  # vegetation
        [120, 120, 118],  # pole: as grey as the buildings on purpose
        [55, 55, 60],  # wire
        [190, 60, 50],  # sign (its colour is redrawn per sign)
        [120, 120, 130],  # car (redrawn per car)
        [110, 90, 80],  # person (redrawn per person)
    ],
    dtype=np.float32,
)
RoadEdges = tuple[np.ndarray, np.ndarray, np.ndarray]  # left x, right x, depth in [0, 1]; (H, 1)
SIGN_COLOURS = np.array([[200, 40, 40], [40, 70, 190], [220, 190, 40], [225, 225, 220]], np.float32)


@dataclass
class Canvas:
    """The label map and colour layer being painted, plus the scene's shared geometry."""

    label: np.ndarray  # (H, W) uint8
    colour: np.ndarray  # (H, W, 3) float32
    yy: np.ndarray  # (H, 1) row coordinates
    xx: np.ndarray  # (1, W) column coordinates
    horizon: float
    palette: np.ndarray  # (C, 3) this image's class colours
    rng: np.random.Generator

    def paint(self, mask: np.ndarray, cls: int, colour: np.ndarray) -> None:
        self.label[mask] = cls
        self.colour[mask] = colour if colour.ndim == 1 else colour[mask]

    def jitter(self, cls: int, sigma: float = 12.0) -> np.ndarray:
        return self.palette[cls] + self.rng.normal(0.0, sigma, 3).astype(np.float32)


def render_scene(
    height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: image uint8 (H, W, 3) and label uint8 (H, W) (void = 255)."""
    canvas = Canvas(
        label=np.full((height, width), SKY, np.uint8),
        colour=np.empty((height, width, 3), np.float32),
        yy=np.arange(height, dtype=np.float32)[:, None],
        xx=np.arange(width, dtype=np.float32)[None, :],
        horizon=float(rng.uniform(0.35, 0.55) * height),
        palette=BASE_COLOURS + rng.normal(0.0, 20.0, BASE_COLOURS.shape).astype(np.float32),
        rng=rng,
    )
    _sky_and_ground(canvas)
    _buildings(canvas)
    road_edges = _road(canvas)
    _vegetation(canvas)
    _cars(canvas, road_edges)
    _people(canvas)
    pole_tops = _poles_and_signs(canvas)
    _wires(canvas, pole_tops)
    _clutter(canvas)
    return _finish(canvas), canvas.label


def _sky_and_ground(c: Canvas) -> None:
    # Sky brightens towards the horizon, as it does outdoors.
    glow = np.clip(c.yy / max(c.horizon, 1.0), 0.0, 1.0)[..., None] * 35.0
    c.colour[:] = c.palette[SKY] + glow
    ground = np.broadcast_to(c.yy >= c.horizon, c.label.shape)
    c.paint(ground, PAVEMENT, c.palette[PAVEMENT])


def _buildings(c: Canvas) -> None:
    width = c.label.shape[1]
    for _ in range(c.rng.integers(2, 6)):
        left = c.rng.uniform(-0.1, 0.9) * width
        right = left + c.rng.uniform(0.1, 0.35) * width
        top = c.horizon * (1.0 - c.rng.uniform(0.15, 0.95))
        bottom = c.horizon + c.rng.uniform(0.0, 0.06) * c.label.shape[0]
        mask = (c.xx >= left) & (c.xx < right) & (c.yy >= top) & (c.yy < bottom)
        wall = c.jitter(BUILDING, 18.0)
        period_x, period_y = c.rng.integers(5, 10), c.rng.integers(6, 11)
        windows = ((c.xx - left) % period_x < period_x / 2) & (
            (c.yy - top) % period_y < period_y / 2
        )
        colour = np.where(windows[..., None], wall * 0.55 + 15.0, wall)
        c.paint(mask, BUILDING, np.broadcast_to(colour, c.colour.shape))


def _road(c: Canvas) -> RoadEdges:
    height, width = c.label.shape
    vanish = c.rng.uniform(0.35, 0.65) * width
    bottom_left = c.rng.uniform(-0.3, 0.25) * width
    bottom_right = c.rng.uniform(0.75, 1.3) * width
    depth = np.clip((c.yy - c.horizon) / max(height - c.horizon, 1.0), 0.0, 1.0)  # (H, 1)
    left = vanish + (bottom_left - vanish) * depth
    right = vanish + (bottom_right - vanish) * depth
    road = (c.yy >= c.horizon) & (c.xx >= left) & (c.xx <= right)
    c.paint(road, ROAD, c.palette[ROAD])
    centre = (left + right) / 2.0
    dashes = ((c.yy - c.horizon) // c.rng.integers(4, 8)) % 2 == 0
    marks = road & dashes & (np.abs(c.xx - centre) <= 0.4 + 1.6 * depth)
    c.paint(marks, ROAD, c.palette[SIGN] * 0.2 + 170.0)
    return left, right, depth


def _vegetation(c: Canvas) -> None:
    height, width = c.label.shape
    leaves = c.rng.normal(1.0, 0.25, c.colour.shape[:2]).astype(np.float32)[..., None]
    for _ in range(c.rng.integers(1, 4)):
        radius = c.rng.uniform(0.04, 0.12) * height
        cx, cy = c.rng.uniform(0.0, 1.0) * width, c.horizon - radius * c.rng.uniform(0.0, 1.5)
        mask = np.zeros(c.label.shape, bool)
        for _ in range(c.rng.integers(3, 7)):
            dx, dy = c.rng.normal(0.0, radius, 2)
            mask |= (c.xx - cx - dx) ** 2 + (c.yy - cy - dy * 0.6) ** 2 <= radius**2
        c.paint(mask, VEGETATION, np.broadcast_to(c.jitter(VEGETATION) * leaves, c.colour.shape))


def _blob(c: Canvas, cx: float, cy: float, a: float, b: float, power: float = 2.0) -> np.ndarray:
    return np.abs((c.xx - cx) / a) ** power + np.abs((c.yy - cy) / b) ** power <= 1.0


def _cars(c: Canvas, road: RoadEdges) -> None:
    left, right, _ = road
    height = c.label.shape[0]
    for _ in range(c.rng.integers(0, 4)):
        row = int(c.horizon + c.rng.uniform(0.15, 0.95) * (height - c.horizon))
        row = min(row, height - 1)
        half_w = max(1.5, 0.15 * float(right[row, 0] - left[row, 0]))
        half_h = half_w * c.rng.uniform(0.45, 0.65)
        low, high = float(left[row, 0]) + half_w, float(right[row, 0]) - half_w + 1.0
        if high < low:
            # The road is narrower than a car at this row (small images, rows at the horizon).
            # Checked after the draws above, so every scene that rendered before is unchanged.
            continue
        cx = c.rng.uniform(low, high)
        body = c.rng.uniform(30.0, 230.0, 3).astype(np.float32)
        c.paint(_blob(c, cx, row - half_h, half_w, half_h, 4.0), CAR, body)
        # The window band is as dark as a wire, so colour alone does not tell them apart.
        window = _blob(c, cx, row - 1.4 * half_h, half_w * 0.7, half_h * 0.35, 4.0)
        c.paint(window & (c.label == CAR), CAR, c.palette[WIRE] + 5.0)


def _people(c: Canvas) -> None:
    height, width = c.label.shape
    for _ in range(c.rng.integers(0, 3)):
        feet = c.horizon + c.rng.uniform(0.1, 0.9) * (height - c.horizon)
        tall = (0.12 + 0.3 * (feet - c.horizon) / max(height - c.horizon, 1.0)) * height
        cx = c.rng.uniform(0.02, 0.98) * width
        half_w = max(1.2, tall * 0.14)
        body = _blob(c, cx, feet - tall * 0.42, half_w, tall * 0.42)
        c.paint(body, PERSON, c.rng.uniform(20.0, 220.0, 3).astype(np.float32))
        head = _blob(c, cx, feet - tall * 0.9, half_w * 0.8, tall * 0.1)
        c.paint(head, PERSON, np.array([205.0, 160.0, 130.0], np.float32) * c.rng.uniform(0.5, 1.1))


def _poles_and_signs(c: Canvas) -> list[tuple[float, float]]:
    height, width = c.label.shape
    tops = []
    for _ in range(c.rng.integers(1, 4)):
        x, thick = c.rng.uniform(0.02, 0.96) * width, int(c.rng.integers(1, 4))
        base = c.horizon + c.rng.uniform(0.05, 0.6) * (height - c.horizon)
        top = max(0.0, base - c.rng.uniform(0.5, 1.1) * c.horizon)
        x0 = np.floor(x)
        mask = (c.xx >= x0) & (c.xx < x0 + thick) & (c.yy >= top) & (c.yy <= base)
        c.paint(mask, POLE, c.jitter(POLE, 15.0))
        tops.append((x0 + thick / 2.0, top))
        if c.rng.uniform() < 0.7:
            size = c.rng.uniform(2.0, 5.0)
            roundness = c.rng.choice([2.0, 8.0])  # a disc or a square
            sign = _blob(c, x0 + thick / 2.0, top + size * 2.0, size, size, roundness)
            colour = SIGN_COLOURS[c.rng.integers(len(SIGN_COLOURS))] + c.rng.normal(0, 15, 3)
            c.paint(sign, SIGN, colour.astype(np.float32))
    return tops


def _wires(c: Canvas, pole_tops: list[tuple[float, float]]) -> None:
    width = c.label.shape[1]
    for _ in range(c.rng.integers(1, 3)):
        if len(pole_tops) >= 2 and c.rng.uniform() < 0.6:
            i, j = c.rng.choice(len(pole_tops), 2, replace=False)
            (x0, y0), (x1, y1) = sorted([pole_tops[i], pole_tops[j]])
        else:
            x0, x1 = -1.0, float(width)
            y0, y1 = c.rng.uniform(0.0, 1.1, 2) * c.horizon
        x1 = max(x1, x0 + 2.0)
        u = np.clip((c.xx - x0) / (x1 - x0), 0.0, 1.0)
        sag = c.rng.uniform(0.0, 0.25) * c.horizon
        curve = y0 + (y1 - y0) * u + sag * 4.0 * u * (1.0 - u)  # (1, W)
        slope = np.gradient(curve, axis=1)
        # Vertical distance times cos(angle) is the distance across the wire, so a steep wire
        # is as thin as a flat one.
        across = np.abs(c.yy - curve) / np.sqrt(1.0 + slope**2)
        mask = (across <= c.rng.uniform(0.5, 1.0)) & (c.xx >= x0) & (c.xx <= x1)
        c.paint(mask, WIRE, c.jitter(WIRE, 10.0))


def _clutter(c: Canvas) -> None:
    height, width = c.label.shape
    if c.rng.uniform() < 0.5:
        cx, cy = c.rng.uniform(0, width), c.rng.uniform(0, height)
        a, b = c.rng.uniform(1.5, 6.0, 2)
        mask = _blob(c, cx, cy, a, b)
        c.paint(mask, IGNORE_INDEX, c.rng.uniform(0.0, 255.0, 3).astype(np.float32))


def _finish(c: Canvas) -> np.ndarray:
    height, width = c.label.shape
    coarse = c.rng.normal(0.0, 1.0, (height // 8 + 2, width // 8 + 2)).astype(np.float32)
    # Bilinear upsampling as two small matrix products: smooth shading at a few us per image.
    rows, cols = _lerp_matrix(height, coarse.shape[0]), _lerp_matrix(width, coarse.shape[1])
    texture = rows @ coarse @ cols.T
    noise = c.rng.normal(0.0, 7.0, c.colour.shape).astype(np.float32)
    image = (c.colour + 12.0 * texture[..., None] + noise) * c.rng.uniform(0.8, 1.2)
    return np.clip(image, 0.0, 255.0).astype(np.uint8)


def _lerp_matrix(size: int, coarse: int) -> np.ndarray:
    """(size, coarse) weights that linearly interpolate `coarse` knots over `size` samples."""
    position = np.linspace(0.0, coarse - 1.0, size, dtype=np.float32)
    knots = np.arange(coarse, dtype=np.float32)
    return np.maximum(0.0, 1.0 - np.abs(position[:, None] - knots[None, :]))
