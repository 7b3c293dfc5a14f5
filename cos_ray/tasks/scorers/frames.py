"""Bring any video or x̂0 filmstrip row to what the scorers compare: uint8 RGB frames at the ground truth's size.

Follows VBVR-EvalKit: at most 100 frames, evenly spaced, each resized (bilinear) to the ground-truth frame's size.
"""

from __future__ import annotations

import numpy as np

from cos_ray.errors import UsageError

MAX_FRAMES = 100


def as_uint8(video, what: str = "video") -> np.ndarray:
    """`# (frames, H, W, 3)` uint8, from uint8 or floats in [0, 1]; anything else is an error naming `what`."""
    video = np.asarray(video)
    if video.ndim == 3 and video.shape[-1] == 3:
        video = video[None]  # one frame
    if video.ndim != 4 or video.shape[-1] != 3 or len(video) == 0:
        raise UsageError(f"{what}: expected frames shaped (frames, H, W, 3), got {video.shape}")
    if video.dtype == np.uint8:
        return video
    if not np.issubdtype(video.dtype, np.floating) and not np.issubdtype(video.dtype, np.integer):
        raise UsageError(f"{what}: expected uint8 or floats in [0, 1], got {video.dtype}")
    return (np.clip(video.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)


def prepare(video, size_hw: tuple[int, int], what: str = "video") -> np.ndarray:
    """`# (frames <= 100, h, w, 3)` uint8 at `size_hw` = (h, w)."""
    import cv2

    video = as_uint8(video, what)
    if len(video) > MAX_FRAMES:
        video = video[np.linspace(0, len(video) - 1, MAX_FRAMES).astype(int)]
    h, w = size_hw
    if video.shape[1:3] == (h, w):
        return video
    return np.stack([cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=cv2.INTER_LINEAR) for f in video])


def read_rgb(path) -> np.ndarray:
    """`# (H, W, 3)` uint8 RGB of a PNG."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
