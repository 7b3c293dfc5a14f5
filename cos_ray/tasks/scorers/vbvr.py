"""The five VBVR-Bench dimensions and their weights, as VBVR-EvalKit's base evaluator computes them.

SSIM is scikit-image's with EvalKit's settings (gray, 11x11 Gaussian window of sigma 1.5, population covariance);
PSNR is scikit-image's over the three channels. Frames are RGB uint8 at the ground truth's size.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = {
    "first_frame_consistency": 0.15,
    "final_frame_accuracy": 0.35,
    "temporal_smoothness": 0.15,
    "visual_quality": 0.10,
    "task_specific": 0.25,
}


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)  # (H, W) uint8


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(_gray(a), _gray(b), gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(b, a, data_range=255))


def linear(value: float, low: float, high: float) -> float:
    """value mapped linearly from [low, high] to [0, 1], clipped."""
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def first_frame_consistency(first: np.ndarray, reference: np.ndarray) -> float:
    """SSIM vs the task's first frame, piecewise: >= 0.95 -> 1; 0.85-0.95 -> 0.8-1; 0.70-0.85 -> 0.5-0.8; below -> 0-0.5."""
    s = ssim(first, reference)
    if s >= 0.95:
        return 1.0
    if s >= 0.85:
        return 0.8 + (s - 0.85) / 0.10 * 0.2
    if s >= 0.70:
        return 0.5 + (s - 0.70) / 0.15 * 0.3
    return max(0.0, s / 0.70 * 0.5)


def final_frame_accuracy(last: np.ndarray, reference: np.ndarray) -> float:
    """0.7 SSIM + 0.3 PSNR mapped from 20-40 dB to 0-1, last frame vs final_frame.png."""
    return float(np.clip(0.7 * ssim(last, reference) + 0.3 * linear(psnr(last, reference), 20.0, 40.0), 0.0, 1.0))


def temporal_smoothness(video: np.ndarray) -> float:
    """From the mean |difference| of consecutive frames in [0, 1]: 0.6 (1 - min(1, std/0.1)) + 0.4 (1 - min(1, max/0.3))."""
    import cv2

    if len(video) < 2:
        return 1.0
    diffs = np.array([cv2.absdiff(a, b).mean() / 255.0 for a, b in zip(video[:-1], video[1:])])  # (frames - 1,)
    return float(0.6 * (1 - min(1.0, diffs.std() / 0.1)) + 0.4 * (1 - min(1.0, diffs.max() / 0.3)))


def visual_quality(video: np.ndarray) -> float:
    """Per sampled frame 0.6 min(1, Laplacian variance / 1000) + 0.4 (1 - min(1, mean |gray - 5x5 blur| / 30))."""
    import cv2

    scores = []
    for frame in video[:: max(1, len(video) // 10)]:
        gray = _gray(frame)
        sharpness = min(1.0, cv2.Laplacian(gray, cv2.CV_64F).var() / 1000)
        noise = np.abs(gray.astype(float) - cv2.GaussianBlur(gray, (5, 5), 0).astype(float)).mean()
        scores.append(0.6 * sharpness + 0.4 * (1 - min(1.0, noise / 30)))
    return float(np.mean(scores))


def dimensions(video: np.ndarray, first_reference: np.ndarray, final_reference: np.ndarray) -> dict[str, float]:
    """The four task-independent dimensions of `video` `# (frames, H, W, 3)` uint8 at the references' size."""
    return {
        "first_frame_consistency": first_frame_consistency(video[0], first_reference),
        "final_frame_accuracy": final_frame_accuracy(video[-1], final_reference),
        "temporal_smoothness": temporal_smoothness(video) if len(video) > 1 else 0.5,
        "visual_quality": visual_quality(video),
    }


def weighted(dims: dict[str, float]) -> float:
    """The VBVR score: the weighted mean of the five dimensions, each clipped to [0, 1]."""
    total = sum(WEIGHTS[k] for k in dims)
    return float(np.clip(sum(WEIGHTS[k] * float(np.clip(v, 0, 1)) for k, v in dims.items()) / total, 0.0, 1.0))
