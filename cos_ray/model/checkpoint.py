"""Inspect a local Wan2.2 checkpoint before any weights are read, whichever layout it was downloaded in.

Layouts are detected, not declared: a diffusers-format directory (`model_index.json`), the original Wan layout
(`high_noise_model/` + `low_noise_model/`, `.pth` text encoder and VAE; see `wan_original`), or ComfyUI-style single
files per expert over a base directory (see `comfy`). Every problem is reported at once with the component and file it concerns, so that a user who copied a 50 GiB
checkpoint incompletely learns it in a second rather than after minutes of loading. Pure Python (json + pathlib).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cos_ray.errors import CheckpointError

# Weight files accepted per kind of component, single file or sharded index, in the order diffusers tries them.
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "spiece.model")


@dataclass(frozen=True)
class CheckpointLayout:
    """What a checkpoint directory holds: its family and which experts it switches between."""

    path: Path
    family: str  # "a14b": two experts switched at boundary_ratio (Wan2.2-I2V-A14B, VBVR); "ti2v": TI2V-5B
    experts: tuple[str, ...]  # subfolders holding a WanTransformer3DModel, high-noise expert first
    boundary_ratio: float | None
    expand_timesteps: bool
    format: str = "diffusers"  # "diffusers", "wan-original" or "comfy" (single-file experts over a base directory)
    files: dict = field(default_factory=dict)  # component -> file or folder, for layouts other than diffusers'
    base_format: str = "diffusers"  # comfy: the layout of the base directory holding text encoder, VAE, tokenizer

    def describe(self) -> str:
        """One line for users: the layout found, e.g. 'original Wan layout (high_noise_model/, low_noise_model/)'."""
        if self.format == "wan-original":
            return "original Wan layout (" + ", ".join(
                Path(self.files[name]).name + ("/" if Path(self.files[name]).is_dir() else "")
                for name in (*self.experts, "text_encoder", "vae", "tokenizer")) + ")"
        if self.format == "comfy":
            experts = ", ".join(f"{expert}={Path(self.files[expert]).name}" for expert in self.experts)
            return f"ComfyUI single-file experts ({experts}) over a {self.base_format} base directory"
        return "diffusers format (model_index.json)"


def _read_json(path: Path, component: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{component}: missing {path.name} (expected {path})")
    from cos_ray.bounded_read import FileRefused, ReadLimits, read_json

    try:  # bounded (a regular file, 64 MiB, nesting 32): an A14B shard index is ~100 KB
        data = read_json(path, ReadLimits(max_bytes=64 << 20, max_nodes=1_000_000), "JSON config")
    except FileRefused as err:
        words = err.reason.replace("not valid JSON", "is not valid JSON")
        raise CheckpointError(f"{component}: {path} {words}; re-copy or re-export it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{component}: {path} should hold a JSON object, found {type(data).__name__}")
    return data


def _check_weights(folder: Path, component: str, names: tuple[str, ...]) -> None:
    """One of `names` exists, or its `.index.json` with every shard it lists."""
    for name in names:
        if (folder / name).is_file():
            return
        index = folder / f"{name}.index.json"
        if index.is_file():
            weight_map = _read_json(index, component).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise CheckpointError(f"{component}: {index} has no 'weight_map'")
            missing = sorted({shard for shard in weight_map.values() if not (folder / shard).is_file()})
            if missing:
                raise CheckpointError(f"{component}: shard(s) listed in {index.name} are missing: {', '.join(missing)}")
            return
    raise CheckpointError(
        f"{component}: no weights in {folder} (expected {' or '.join(names)}, or a sharded .index.json)"
    )


def _component(root: Path, name: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        raise CheckpointError(f"{name}: missing component folder {folder}")
    return folder


LOOKED_FOR = (
    "model_index.json (diffusers format, e.g. Wan-AI/Wan2.2-I2V-A14B-Diffusers); "
    "high_noise_model/ + low_noise_model/ with models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth and google/umt5-xxl/ "
    "(original Wan layout, e.g. Wan-AI/Wan2.2-I2V-A14B); for ComfyUI single-file experts give the files per expert "
    "(--expert-high/--expert-low, spec model.experts) over such a base directory"
)


def inspect_checkpoint(path: str | Path, experts: dict[str, str | Path] | None = None) -> CheckpointLayout:
    """Detect the layout of a Wan2.2 checkpoint directory, validate it and describe it.

    `experts` ({'transformer': file, 'transformer_2': file}) names ComfyUI-style single-file experts; `path` is then
    the base directory their text encoder, VAE and tokenizer come from.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CheckpointError(f"model directory {root} does not exist (give a local checkpoint directory or 'tiny')")
    if experts:
        from cos_ray.model.comfy import inspect_comfy

        return inspect_comfy(inspect_checkpoint(root), experts)
    if (root / "model_index.json").is_file():
        return inspect_diffusers(root)
    from cos_ray.model.wan_original import inspect_original, looks_original

    if looks_original(root):
        return inspect_original(root)
    raise CheckpointError(f"{root}: no Wan2.2 checkpoint layout found. Looked for: {LOOKED_FOR}")


def inspect_diffusers(root: Path) -> CheckpointLayout:
    """Validate a diffusers-format Wan2.2 I2V directory (A14B / VBVR layout or TI2V-5B layout) and describe it."""
    index = _read_json(root / "model_index.json", "model_index")
    listed = {key for key, value in index.items() if isinstance(value, list) and value and value[0] is not None}
    boundary_ratio = index.get("boundary_ratio")
    expand_timesteps = bool(index.get("expand_timesteps", False))
    experts = ("transformer", "transformer_2") if (boundary_ratio is not None or "transformer_2" in listed) else (
        "transformer",
    )
    if expand_timesteps and len(experts) == 2:
        raise CheckpointError("model_index: expand_timesteps (TI2V) with two experts is not a Wan2.2 layout")

    tokenizer = _component(root, "tokenizer")
    if not any((tokenizer / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(f"tokenizer: none of {', '.join(TOKENIZER_FILES)} in {tokenizer}")
    _read_json(_component(root, "scheduler") / "scheduler_config.json", "scheduler")
    text_encoder = _component(root, "text_encoder")
    _read_json(text_encoder / "config.json", "text_encoder")
    _check_weights(text_encoder, "text_encoder", TRANSFORMERS_WEIGHTS)
    vae = _component(root, "vae")
    vae_config = _read_json(vae / "config.json", "vae")
    _check_weights(vae, "vae", DIFFUSERS_WEIGHTS)

    z_dim = vae_config.get("z_dim")
    expected_in = z_dim if expand_timesteps else (2 * z_dim + 4 if isinstance(z_dim, int) else None)
    for expert in experts:
        folder = _component(root, expert)
        config = _read_json(folder / "config.json", expert)
        if expected_in is not None and config.get("in_channels") != expected_in:
            raise CheckpointError(
                f"{expert}: config.json has in_channels={config.get('in_channels')!r}, expected {expected_in} for a "
                f"VAE with z_dim={z_dim} ({'latent only' if expand_timesteps else 'noise + mask + image latent'})"
            )
        _check_weights(folder, expert, DIFFUSERS_WEIGHTS)
    return CheckpointLayout(
        path=root,
        family="ti2v" if expand_timesteps else "a14b",
        experts=experts,
        boundary_ratio=boundary_ratio,
        expand_timesteps=expand_timesteps,
    )


def expert_config(layout: CheckpointLayout, expert: str = "transformer") -> dict:
    """The diffusers `WanTransformer3DModel` config of one expert, whatever the layout (pure Python, no tensor read)."""
    if layout.format == "wan-original":
        from cos_ray.model.wan_original import expert_config as original_config

        return original_config(Path(layout.files[expert]))
    if layout.format == "comfy":
        from dataclasses import replace

        from cos_ray.model.comfy import expert_config as comfy_config

        base = inspect_checkpoint(layout.path) if layout.base_format != "diffusers" else replace(
            layout, format="diffusers", files={})
        return comfy_config(Path(layout.files[expert]), base, expert)
    return _read_json(layout.path / expert / "config.json", expert)
