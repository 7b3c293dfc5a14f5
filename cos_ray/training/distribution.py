"""A trained model's data distribution, written beside its weights as `training.json`, so that
`cos-ray tasks generate --for-model MODEL` writes samples from the distribution MODEL was trained on.

Pure Python (no torch): the tasks command reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

from cos_ray.errors import UsageError

FILE = "training.json"


def distribution_record(config) -> dict:
    """What training.json holds: the generator, its parameters and the training seed streams."""
    from cos_ray.training.data import TRAIN_SEED_BASE

    return {"family": config.data.family, "params": config.data.generator_params(), "seed": config.seed,
            "train_streams": f"numpy default_rng([{TRAIN_SEED_BASE} + seed, i]) for sample i",
            "held_out": f"cos-ray tasks generate seeds below {TRAIN_SEED_BASE}", "config": config.as_dict()}


def write_distribution(config, directory: Path) -> Path:
    path = Path(directory) / FILE
    path.write_text(json.dumps(distribution_record(config), indent=2) + "\n")
    return path


def model_distribution(model: str | Path) -> tuple[str, dict]:
    """(family, generator parameters) MODEL (a preset name or a directory) was trained on."""
    from cos_ray.model.source import SHIPPED_PRESETS, is_preset

    if is_preset(model) and str(model) not in SHIPPED_PRESETS:
        raise UsageError(f"--for-model: {model!r} has random weights and no training distribution; "
                         f"trained presets: {', '.join(SHIPPED_PRESETS)}")
    directory = Path(SHIPPED_PRESETS.get(str(model), model)).expanduser()
    path = directory / FILE
    try:
        record = json.loads(path.read_text())
        return record["family"], dict(record["params"])
    except FileNotFoundError:
        raise UsageError(f"--for-model: {path} does not exist (models trained by cos-ray carry it)") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--for-model: {path} is not a training record ({err})") from None
