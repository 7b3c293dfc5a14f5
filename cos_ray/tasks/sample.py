"""What a generator produces for one sample, before it is written as a VBVR-layout folder."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GeneratedSample:
    """One task sample with its ground truth.

    frames[0] is `first_frame.png` (what the model is conditioned on), frames[-1] is `final_frame.png`, and all of
    them, in order, are `ground_truth.mp4` (the solution drawn progressively).
    """

    prompt: str
    frames: np.ndarray  # (frames, H, W, 3) uint8 RGB
    foreground: np.ndarray  # (H, W) bool: the objects the task is about (markers, agent, symbols and the answer)
    meta: dict = field(default_factory=dict)  # family, parameters and the geometry its scorer reads (JSON-safe)

    def __post_init__(self):
        frames = np.asarray(self.frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 2:
            raise ValueError(f"frames: expected (frames >= 2, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        if self.foreground.shape != frames.shape[1:3]:
            raise ValueError(f"foreground: expected {frames.shape[1:3]}, got {self.foreground.shape}")
        self.frames = frames

    @property
    def first_frame(self) -> np.ndarray:
        return self.frames[0]  # (H, W, 3)

    @property
    def final_frame(self) -> np.ndarray:
        return self.frames[-1]  # (H, W, 3)
