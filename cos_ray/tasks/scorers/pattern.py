"""Pattern completion task-specific score: is the right symbol, in the right colour, in the empty slot?

answer 0.8: |saturated pixels of the answer's hue ∩ the true symbol| / |all saturated pixels ∪ the true symbol|
inside the answer slot (a wrong colour scores 0, a wrong shape partly, stray colour is penalised), the true symbol
read from final_frame.png; context 0.2: IoU of the coloured pixels outside the answer slot with the first frame's
(the given symbols stay put).
"""

from __future__ import annotations

import numpy as np

from cos_ray.tasks import colors

WEIGHTS = {"answer": 0.8, "context": 0.2}
HUE_TOLERANCE = 12  # OpenCV hue steps; the palette's hues are >= 25 apart


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def score_pattern(video: np.ndarray, first: np.ndarray, final: np.ndarray, meta: dict) -> tuple[float, dict]:
    """video `# (frames, H, W, 3)` uint8 at the task's size; meta: slot boxes, answer hue."""
    last = video[-1]
    x0, y0, x1, y1 = meta["slots"][-1]
    inset = meta["pad"] + max(2, (x1 - x0) // 10)  # inside the slot's outline
    box = np.zeros(last.shape[:2], dtype=bool)  # (H, W)
    box[y0 + inset: y1 - inset, x0 + inset: x1 - inset] = True

    truth = colors.saturated_mask(final) & box
    coloured = colors.saturated_mask(last)
    right_hue = coloured & (colors.hue_distance(colors.to_hsv(last)[..., 0], meta["answer_hue"]) <= HUE_TOLERANCE)
    union = ((coloured & box) | truth).sum()
    parts = {"answer": float((right_hue & truth).sum() / union) if union else 0.0}
    outside = np.zeros_like(box)
    outside[:] = True
    outside[y0:y1, x0:x1] = False
    parts["context"] = _iou(colors.saturated_mask(first) & outside, coloured & outside)
    return float(sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)), parts
