"""Pattern completion, the non-spatial family: a row-major sequence of coloured symbols repeats a short motif; the
last slot is empty and the answer is the symbol that continues the motif, faded in over the ground-truth video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cos_ray.errors import UsageError
from cos_ray.tasks import colors
from cos_ray.tasks.generators.common import CommonParams, check_int
from cos_ray.tasks.sample import GeneratedSample

SHAPES = ("circle", "square", "triangle", "diamond")
PALETTE = {"red": (220, 40, 40), "yellow": (230, 190, 0), "green": (40, 180, 60), "blue": (40, 80, 220)}  # RGB
COLUMNS = 3
PROMPT = ("Complete the pattern: draw the next symbol of the sequence in the empty square at the bottom right. "
          "The other symbols do not move.")


@dataclass(frozen=True)
class PatternParams(CommonParams):
    """length: slots including the empty one (rows of 3); period: motif length (None: 2 or 3 at random)."""

    length: int = 6
    period: int | None = None

    family = "pattern"

    def __post_init__(self):
        super().__post_init__()
        check_int("pattern", "length", self.length, 3, 9)
        if self.period is not None:
            check_int("pattern", "period", self.period, 2, 4)
            if self.period >= self.length:
                raise UsageError(f"pattern.period: must be below length ({self.length}) so the motif repeats, got {self.period}")


def draw_symbol(image: np.ndarray, shape: str, rgb, box) -> None:
    """Draw a filled symbol inside `box` = (x0, y0, x1, y1) with no anti-aliasing."""
    import cv2

    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.36
    if shape == "circle":
        cv2.circle(image, (int(round(cx)), int(round(cy))), int(round(r)), rgb, thickness=-1, lineType=cv2.LINE_8)
        return
    corners = {
        "square": [(-r, -r), (r, -r), (r, r), (-r, r)],
        "triangle": [(0, -r), (r, r * 0.8), (-r, r * 0.8)],
        "diamond": [(0, -r), (r, 0), (0, r), (-r, 0)],
    }[shape]
    poly = np.array([[int(round(cx + dx)), int(round(cy + dy))] for dx, dy in corners], dtype=np.int32)
    cv2.fillPoly(image, [poly], rgb, lineType=cv2.LINE_8)


def generate_pattern(rng: np.random.Generator, params: PatternParams) -> GeneratedSample:
    size, length = params.size, params.length
    period = params.period or int(rng.integers(2, 4))
    rows = -(-length // COLUMNS)
    margin = max(2, size // 32)
    slot = (size - 2 * margin) // max(COLUMNS, rows)
    ox, oy = (size - slot * COLUMNS) // 2, (size - slot * rows) // 2
    names = list(PALETTE)
    motif = []
    while len(motif) < period:  # distinct symbols, so the motif's period is exactly `period`
        symbol = (SHAPES[int(rng.integers(len(SHAPES)))], names[int(rng.integers(len(names)))])
        if symbol not in motif:
            motif.append(symbol)
    sequence = [motif[i % period] for i in range(length)]
    boxes = [(ox + (i % COLUMNS) * slot, oy + (i // COLUMNS) * slot, ox + (i % COLUMNS + 1) * slot,
              oy + (i // COLUMNS + 1) * slot) for i in range(length)]

    import cv2

    board = np.full((size, size, 3), colors.WHITE, dtype=np.uint8)  # (H, W, 3)
    pad = max(2, slot // 16)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        edge = colors.ANSWER_SLOT if i == length - 1 else colors.SLOT
        cv2.rectangle(board, (x0 + pad, y0 + pad), (x1 - pad - 1, y1 - pad - 1), edge, thickness=max(1, slot // 24))
        if i < length - 1:
            draw_symbol(board, sequence[i][0], PALETTE[sequence[i][1]], boxes[i])

    answer = np.zeros_like(board)
    draw_symbol(answer, sequence[-1][0], (255, 255, 255), boxes[-1])
    answer_mask = answer[..., 0] > 0  # (H, W)
    filled = board.copy()
    filled[answer_mask] = PALETTE[sequence[-1][1]]
    alphas = np.linspace(0.0, 1.0, params.frames)[:, None, None, None]  # (frames, 1, 1, 1)
    frames = np.round(board[None] * (1 - alphas) + filled[None] * alphas).astype(np.uint8)  # (frames, H, W, 3)

    foreground = answer_mask.copy()  # (H, W): every symbol, the answer included
    for i in range(length - 1):
        mask = np.zeros_like(board)
        draw_symbol(mask, sequence[i][0], (255, 255, 255), boxes[i])
        foreground |= mask[..., 0] > 0
    meta = {
        "family": "pattern", "params": {"length": length, "period": period, "size": size, "frames": params.frames},
        "sequence": [list(s) for s in sequence], "answer": list(sequence[-1]),
        "answer_hue": colors.hue_of(PALETTE[sequence[-1][1]]), "slots": [list(b) for b in boxes], "pad": pad,
    }
    return GeneratedSample(prompt=PROMPT, frames=frames, foreground=foreground, meta=meta)
