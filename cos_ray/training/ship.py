"""`python -m cos_ray.training.ship RUN_DIR`: copy a run's export into the shipped preset directory
(cos_ray/model/presets/tiny-reasoner), refusing more than 25 MB; MODEL_CARD.md and the card's figures there are kept.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from cos_ray.errors import UsageError

LIMIT_BYTES = 25 * 1024 * 1024
KEEP = ("MODEL_CARD.md", "*.png")


def size_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def ship(run_dir: Path, target: Path | None = None) -> Path:
    from cos_ray.model.checkpoint import inspect_checkpoint
    from cos_ray.model.source import SHIPPED_PRESETS

    export = Path(run_dir) / "export"
    if not (export / "model_index.json").is_file():
        raise UsageError(f"{export}: no exported pipeline (a run writes it at each checkpoint)")
    inspect_checkpoint(export)  # what the loader will check
    size = size_of(export)
    if size > LIMIT_BYTES:
        raise UsageError(f"{export}: {size / 2**20:.1f} MiB, over the 25 MiB a shipped preset may take")
    target = Path(target or SHIPPED_PRESETS["tiny-reasoner"])
    kept = {p.name: p.read_bytes() for pattern in KEEP for p in target.glob(pattern)} if target.is_dir() else {}
    staging = target.with_name(f".{target.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(export, staging)
    for name, data in kept.items():
        (staging / name).write_bytes(data)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    try:
        print(ship(Path(sys.argv[1])))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
