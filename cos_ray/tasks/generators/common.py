"""What every generator shares: image size and frame count parameters, checked once, and a few drawing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cos_ray.errors import UsageError

FPS = 16  # ground-truth videos play at the sampler's default rate


def check_int(family: str, name: str, value, low: int, high: int) -> None:
    """A parameter that must be an integer in [low, high]; the error names the family and the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise UsageError(f"{family}.{name}: expected an integer in {low}..{high}, got {value!r}")


@dataclass(frozen=True)
class CommonParams:
    """size: square side in pixels (even: H.264 needs it); frames: ground-truth video length (4k+1 suits Wan)."""

    size: int = 128
    frames: int = 17

    family = "task"

    def __post_init__(self):
        check_int(self.family, "size", self.size, 64, 2048)
        if self.size % 2:
            raise UsageError(f"{self.family}.size: expected an even number of pixels (H.264), got {self.size}")
        check_int(self.family, "frames", self.frames, 2, 241)


def fill_rect(image: np.ndarray, x0: float, y0: float, x1: float, y1: float, color) -> None:
    """Fill the axis-aligned box [x0, x1) x [y0, y1) (pixel units, clipped), with no anti-aliasing."""
    h, w = image.shape[:2]
    xa, xb = max(0, int(round(x0))), min(w, int(round(x1)))
    ya, yb = max(0, int(round(y0))), min(h, int(round(y1)))
    if xa < xb and ya < yb:
        image[ya:yb, xa:xb] = color


def draw_route(image: np.ndarray, points: np.ndarray, length: float, width: int, color) -> None:
    """Draw the first `length` pixels of an axis-aligned polyline `# (points, 2)` (x, y) as a band `width` wide."""
    half = width / 2
    left = length
    for (xa, ya), (xb, yb) in zip(points[:-1], points[1:]):
        if left <= 0:
            break
        seg = abs(xb - xa) + abs(yb - ya)
        t = min(1.0, left / seg) if seg else 1.0
        xe, ye = xa + (xb - xa) * t, ya + (yb - ya) * t
        fill_rect(image, min(xa, xe) - half, min(ya, ye) - half, max(xa, xe) + half, max(ya, ye) + half, color)
        left -= seg


def route_length(points: np.ndarray) -> float:
    """Length of an axis-aligned polyline `# (points, 2)`."""
    return float(np.abs(np.diff(points, axis=0)).sum())


def point_along(points: np.ndarray, length: float) -> np.ndarray:
    """`# (2,)` the point `length` pixels along an axis-aligned polyline `# (points, 2)`."""
    left = length
    for a, b in zip(points[:-1], points[1:]):
        seg = float(np.abs(b - a).sum())
        if left <= seg and seg > 0:
            return a + (b - a) * (left / seg)
        left -= seg
    return points[-1].astype(float)


def bfs(start, passable, neighbours) -> dict:
    """Breadth-first distances and parents from `start`: {cell: (distance, parent)} over `passable` cells."""
    from collections import deque

    seen = {start: (0, None)}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for nxt in neighbours(cell):
            if nxt not in seen and passable(nxt):
                seen[nxt] = (seen[cell][0] + 1, cell)
                queue.append(nxt)
    return seen


def walk_back(tree: dict, goal) -> list:
    """The cells from the BFS root to `goal`, in order."""
    cells = [goal]
    while tree[cells[-1]][1] is not None:
        cells.append(tree[cells[-1]][1])
    return cells[::-1]
