"""A task sample's files judged before any GPU time: the first frame decodes, the prompt is UTF-8, the video is whole.

A zero-byte, truncated or non-PNG `first_frame.png` used to pass `cos-ray spec check` and fail its unit on a worker,
where it looked like a cluster fault (retried on fresh groups, the model reloaded each time). Everything here raises
or returns `InputError`s - deterministic, never retried - and `check_sample` collects every problem of a sample
instead of stopping at the first, so a spec check reports every bad sample of a folder at once.

Images are opened with PIL under a pixel limit (checked from the header, before any pixel is decoded), verified
(PIL's structural check: chunk CRCs of a PNG) and then fully decoded (verify() does not decode, and a truncated
image data stream only shows while decoding). The ground-truth video is checked structurally, without ffmpeg: an
MP4 is a sequence of boxes whose sizes must add up to the file, with `ftyp` first and a `moov` (the index) present -
a truncated file breaks that.
"""

from __future__ import annotations

import struct
from pathlib import Path

from cos_ray.errors import InputError

MAX_PIXELS = 4096 * 4096  # a first frame larger than this is refused before decoding (Wan2.2 runs 1280x720)
MIN_SIDE = 16  # the VAE (x8) and the patch grid (x2): a smaller side leaves no latent token
MAX_PROMPT_BYTES = 64 * 1024  # Wan's text encoder reads 512 tokens; a prompt file this big is not a prompt


def read_prompt(path: Path, sample: str, max_bytes: int = MAX_PROMPT_BYTES) -> str:
    """The stripped prompt; InputError when it is too long, not UTF-8 (with the byte's offset) or empty."""
    from cos_ray.bounded_read import FileRefused, read_bytes

    try:
        data = read_bytes(path, max_bytes, "prompt")  # a regular file only: a FIFO or /dev/zero is refused unread
    except FileRefused as err:
        raise InputError(f"task {sample}: {path.name} {err.reason}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"task {sample}: {path.name} is not UTF-8: byte 0x{data[err.start]:02x} at offset "
                         f"{err.start}; save it as UTF-8") from None
    text = text.removeprefix("\ufeff").strip()
    if not text:
        raise InputError(f"task {sample}: {path.name} is empty")
    return text


def open_image(path: Path, sample: str, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE):
    """The image, fully decoded and converted to RGB; InputError naming the file and what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    name = f"task {sample}: {path.name}"
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{name} is empty (0 bytes)")
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise InputError(f"{name} is {width}x{height}: more than {max_pixels:,} pixels")
            if min(width, height) < min_side:
                raise InputError(f"{name} is {width}x{height}: each side must be at least {min_side} pixels")
            image.verify()  # structure and checksums; leaves the image unusable
        with Image.open(path) as image:
            image.load()  # decodes every pixel: a truncated data stream fails here
            return image.convert("RGB")
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image PIL can read (expected a PNG)") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{name} is too large to decode ({err})") from None
    except (OSError, SyntaxError, ValueError, struct.error) as err:  # PIL reports broken files with these
        raise InputError(f"{name} cannot be decoded ({str(err)[:160] or type(err).__name__})") from None


def check_mp4(path: Path, sample: str) -> None:
    """InputError unless the file is a whole MP4: boxes covering the file exactly, `ftyp` first, a `moov` present."""
    name = f"task {sample}: {path.name}"
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, 2)
            offset, kinds = 0, []
            while offset < end:
                handle.seek(offset)
                header = handle.read(16)
                if len(header) < 8:
                    raise InputError(f"{name} is truncated (a box header cut at byte {offset:,})")
                size, kind = struct.unpack(">I4s", header[:8])
                if size == 1 and len(header) == 16:  # a 64-bit size follows
                    size = struct.unpack(">Q", header[8:16])[0]
                elif size == 0:  # the box runs to the end of the file
                    size = end - offset
                if size < 8 or offset + size > end:
                    raise InputError(f"{name} is truncated or not an MP4 (box {kind!r} at byte {offset:,} claims "
                                     f"{size:,} bytes, the file has {end - offset:,} left)")
                kinds.append(kind)
                offset += size
    except OSError as err:
        raise InputError(f"{name} cannot be read ({err.strerror or err})") from None
    if not kinds or kinds[0] != b"ftyp":
        raise InputError(f"{name} is not an MP4 (it does not start with an ftyp box)")
    if b"moov" not in kinds:
        raise InputError(f"{name} has no moov box (the index of the video): it was cut or never finished")


def check_sample(task) -> list[InputError]:
    """Every problem of one `cos_ray.tasks.folder.TaskInput`'s files (the prompt was read when the task was)."""
    problems = []
    sample = task.task_id
    images = [task.image_path, task.final_frame_path, task.foreground_mask_path]
    for path in (p for p in images if p is not None):
        try:
            open_image(path, sample, min_side=1 if path != task.image_path else MIN_SIDE)
        except InputError as err:
            problems.append(err)
    if task.ground_truth_path is not None:
        try:
            check_mp4(task.ground_truth_path, sample)
        except InputError as err:
            problems.append(err)
    if task.meta_path is not None:
        from cos_ray.tasks.folder import read_meta

        try:
            read_meta(task.meta_path, sample)  # bounded: size, nesting, a regular file
        except InputError as err:
            problems.append(err)
    return problems
