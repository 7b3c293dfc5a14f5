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


def shown_frames(total: int, count: int):
    """The frame indices a filmstrip of `count` columns shows of a `total`-frame video: evenly spaced, first and last
    included (what `cos_ray.engine.records.decode_filmstrip` decodes)."""
    import numpy as np

    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))


def labelled_filmstrip(filmstrip, steps: list[int], frames: list[int]):
    """`# (steps, frames, h, w, 3) -> (top + steps * h, left + frames * w, 3)`: the grid of `filmstrip_grid` with a
    white margin naming each row's denoising step (left) and each column's video frame (top), for people; readers of
    the tiles use the unlabelled grid the store keeps."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    grid = filmstrip_grid(filmstrip)
    rows, columns, height, width = filmstrip.shape[:4]
    font = ImageFont.load_default(size=max(9, min(14, height // 4)))
    left, top = int(font.getlength("step 00") + 8), int(font.size * 1.6)
    image = Image.new("RGB", (left + grid.shape[1], top + grid.shape[0]), "white")
    image.paste(Image.fromarray(np.ascontiguousarray(grid)), (left, top))
    draw = ImageDraw.Draw(image)
    for row, step in enumerate(steps):
        draw.text((4, top + row * height + height // 2), f"step {step}", fill="black", font=font, anchor="lm")
    for column, frame in enumerate(frames):
        draw.text((left + column * width + width // 2, top // 2), f"f{frame}", fill="black", font=font, anchor="mm")
    return np.asarray(image)
