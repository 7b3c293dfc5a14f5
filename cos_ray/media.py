"""Write videos and JSON atomically: a reader never sees half a file, a crash leaves no partial one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _atomic(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(staging)
        os.chmod(staging, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def write_video(path: str | Path, frames, fps: int) -> Path:
    """frames: `# (frames, height, width, 3)` floats in [0, 1] or uint8; written as H.264 mp4 with imageio-ffmpeg."""
    import imageio.v2 as imageio
    import numpy as np

    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)

    def write(staging: str) -> None:
        imageio.mimwrite(staging, list(frames), fps=fps, codec="libx264", quality=8, macro_block_size=1, format="FFMPEG")

    return _atomic(Path(path), write)


def write_json(path: str | Path, data) -> Path:
    return _atomic(Path(path), lambda staging: Path(staging).write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_video(path: str | Path):
    """`# (frames, height, width, 3)` uint8."""
    import imageio.v2 as imageio
    import numpy as np

    return np.stack(imageio.mimread(str(path), memtest=False, format="FFMPEG"))


def write_image(path: str | Path, pixels) -> Path:
    """pixels: `# (height, width, 3)` uint8 (or `# (height, width)` gray), written as PNG."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.asarray(pixels))
    return _atomic(Path(path), lambda staging: image.save(staging, format="PNG"))


def filmstrip_grid(filmstrip):
    """`# (steps, frames, h, w, 3) -> (steps * h, frames * w, 3)`: rows are steps, columns are frames."""
    steps, frames, height, width, channels = filmstrip.shape
    return filmstrip.transpose(0, 2, 1, 3, 4).reshape(steps * height, frames * width, channels)
