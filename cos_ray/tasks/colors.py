"""The colours tasks are drawn in and the HSV bands scorers detect them by: one source, so the two never drift apart.

The bands are VBVR-EvalKit's (OpenCV HSV: hue 0-179, saturation and value 0-255): a generated maze is read by
EvalKit's maze scorer and by ours alike. Frames in cos-ray are RGB.
"""

from __future__ import annotations

import numpy as np

# Drawing colours, RGB.
WHITE = (255, 255, 255)
WALL = (0, 0, 0)  # gray 0; EvalKit's walls are gray <= 50
GRID_LINE = (205, 205, 205)
START = (0, 200, 0)  # hue 60
GOAL = (220, 0, 0)  # hue 0
PATH = (255, 165, 0)  # hue 19: orange
AGENT = (160, 32, 240)  # hue 138: purple
SLOT = (190, 190, 190)
ANSWER_SLOT = (90, 90, 90)

WALL_GRAY_MAX = 50
SATURATED = (100, 100)  # minimum saturation and value of a coloured pixel
GREEN_BANDS = [((35, 100, 100), (85, 255, 255))]
RED_BANDS = [((0, 100, 100), (10, 255, 255)), ((160, 100, 100), (180, 255, 255))]
ORANGE_BANDS = [((10, 100, 100), (30, 255, 255))]
PURPLE_BANDS = [((125, 100, 100), (155, 255, 255))]


def to_hsv(frame: np.ndarray) -> np.ndarray:
    """`# (H, W, 3)` RGB uint8 -> `# (H, W, 3)` OpenCV HSV uint8."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV)


def band_mask(frame: np.ndarray, bands) -> np.ndarray:
    """`# (H, W)` bool: pixels of `frame` (RGB uint8) inside any of the HSV bands."""
    import cv2

    hsv = to_hsv(frame)
    mask = np.zeros(frame.shape[:2], dtype=bool)
    for low, high in bands:
        mask |= cv2.inRange(hsv, np.array(low, np.uint8), np.array(high, np.uint8)) > 0
    return mask


def wall_mask(frame: np.ndarray) -> np.ndarray:
    """`# (H, W)` bool: near-black pixels (gray <= 50), EvalKit's walls."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) <= WALL_GRAY_MAX


def saturated_mask(frame: np.ndarray) -> np.ndarray:
    """`# (H, W)` bool: clearly coloured pixels (saturation and value >= 100)."""
    hsv = to_hsv(frame)
    return (hsv[..., 1] >= SATURATED[0]) & (hsv[..., 2] >= SATURATED[1])


def hue_of(rgb) -> int:
    """OpenCV hue (0-179) of one RGB colour."""
    return int(to_hsv(np.array([[rgb]], dtype=np.uint8))[0, 0, 0])


def hue_distance(hue: np.ndarray, target: int) -> np.ndarray:
    """Circular distance on OpenCV's 180-step hue circle."""
    diff = np.abs(hue.astype(np.int16) - int(target))
    return np.minimum(diff, 180 - diff)
