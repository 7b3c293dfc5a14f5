"""LoRA files in every common key convention, loaded through diffusers, and never silently dropped.

Conventions (per expert, one file each):
- diffusers / peft: `transformer.blocks.0.attn1.to_q.lora_A.weight` (diffusers' own `save_lora_weights`);
- DiffSynth-Studio (the VBVR release): `blocks.0.self_attn.q.lora_A.default.weight` - Wan names, no prefix, no
  alpha (scale 1, W += B·A). diffusers ignores these keys (it only logs "No LoRA keys associated ..."); renamed to
  `diffusion_model.<name>.lora_A.weight` they go through diffusers' own Wan conversion;
- Wan2.2-Lightning (the step-distilled 4-step LoRAs, `high_noise_model.safetensors` / `low_noise_model.safetensors`):
  `diffusion_model.blocks.0.self_attn.q.lora_down.weight` / `lora_up.weight` with an `.alpha` on EVERY pair; the
  update is W + (alpha / rank)·up·down per layer (its generate.py merges exactly that). This is ComfyUI's native
  layout too: a ComfyUI-saved LoRA written this way is named `lightning` as well (the name says the layout, the
  sha256 the file);
- lightx2v (Lightning's files with alpha folded in by lightx2v's converter: up ← up·alpha/rank): the same names and
  NO `.alpha` key (scale 1); lightx2v's own files may add `.diff` / `.diff_b` keys;
- ComfyUI (other layouts under `diffusion_model.`): `lora_A` / `lora_B` names (diffusion-pipe), alpha on some pairs;
- Kohya / musubi-tuner: `lora_unet_blocks_0_self_attn_q.lora_down.weight` / `lora_up` / `.alpha`.

A file in none of these (e.g. another prefix) is refused before anything loads, naming its first keys. After
loading, the LoRA layers injected into the expert are counted and must equal the A/B pairs in the file; any
difference is one `CheckpointError` naming the file, the convention detected and the first unmatched keys.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from cos_ray.errors import CheckpointError

CONVENTIONS = ("diffusers", "diffsynth", "lightning", "lightx2v", "comfy", "kohya")
_DOWN = re.compile(r"(.+)\.(lora_A|lora_down)(\.default)?\.weight$")


@dataclass(frozen=True)
class LoraRecord:
    """What a LoRA did to one expert: recorded in the model identity and every run record."""

    file: str
    sha256: str  # of the whole file (LoRA files are small)
    convention: str
    pairs: int  # A/B pairs in the file
    layers_injected: int  # LoRA layers diffusers/peft injected into the expert (== pairs, or loading failed)
    scale: float
    fused: bool
    alpha_scale: float | None = None  # the file's alpha / rank (one value for all pairs; None: no alpha in the file)

    def as_dict(self) -> dict:
        return asdict(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


LORA_ALIASES = {"high": "transformer", "low": "transformer_2", "transformer": "transformer",
                "transformer_2": "transformer_2"}
LORA_OPTIONS = ("scale", "fuse")


def lora_options(lora: dict | None) -> tuple[dict[str, Path], float, bool]:
    """(files per expert, scale, fuse) of a LoRA mapping `{high|transformer: PATH, low|transformer_2: PATH, scale, fuse}`.

    The one form the spec, the CLI, the cluster workers and the identity pass around; 'high'/'low' name the experts as
    the VBVR release does, 'transformer'/'transformer_2' as diffusers does.
    """
    lora = dict(lora or {})
    scale = lora.pop("scale", 1.0)
    fuse = lora.pop("fuse", False)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise CheckpointError(f"lora.scale: expected a number, got {scale!r}")
    if not isinstance(fuse, bool):
        raise CheckpointError(f"lora.fuse: expected true or false, got {fuse!r}")
    files = {}
    for name, file in lora.items():
        if name not in LORA_ALIASES:
            raise CheckpointError(
                f"lora.{name}: expected an expert (high, low, transformer, transformer_2) or an option (scale, fuse)"
            )
        expert = LORA_ALIASES[name]
        if expert in files:
            raise CheckpointError(f"lora.{name}: {expert} is given twice (high = transformer, low = transformer_2)")
        files[expert] = Path(file).expanduser()
    return files, float(scale), fuse


def describe_lora_file(path: Path) -> dict:
    """{sha256, convention, pairs} of a LoRA file from its header alone (no tensor read; no torch)."""
    from cos_ray.model.shapes import safetensors_header

    keys = list(safetensors_header(path))
    convention = detect_convention(keys)
    if convention is None:
        raise unknown_convention(path, keys)
    return {"sha256": file_sha256(path), "convention": convention, "pairs": len(lora_pairs(keys))}


def detect_convention(keys) -> str | None:
    """The convention of a LoRA state dict's keys (see the module docstring); None when it is in none of them."""
    keys = list(keys)
    if any(key.startswith("lora_unet_") for key in keys):
        return "kohya"
    if any(key.startswith("diffusion_model.") for key in keys):
        return _native_wan_convention(keys)
    if any(".default." in key or key.startswith("blocks.") and ("self_attn" in key or "cross_attn" in key)
           for key in keys):
        return "diffsynth"
    if any(key.startswith("transformer.") for key in keys):
        return "diffusers"
    return None


def _native_wan_convention(keys: list[str]) -> str:
    """lightning, lightx2v or comfy for a file keyed by `diffusion_model.<WanModel name>`."""
    downs = {key.removesuffix(".lora_down.weight") for key in keys if key.endswith(".lora_down.weight")}
    if not downs or any(key.endswith((".lora_A.weight", ".lora_B.weight")) for key in keys):
        return "comfy"
    alphas = {key.removesuffix(".alpha") for key in keys if key.endswith(".alpha")}
    if downs <= alphas:
        return "lightning"  # an alpha on every pair: what Wan2.2-Lightning's own loader requires
    return "lightx2v" if not alphas else "comfy"


def unknown_convention(path: Path, keys) -> CheckpointError:
    """The refusal of a file in no known convention, naming its first keys."""
    keys = sorted(keys)
    shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return CheckpointError(
        f"lora {path}: in no known LoRA convention (expected keys like transformer.blocks.0.attn1.to_q.lora_A.weight, "
        "blocks.0.self_attn.q.lora_A.default.weight, diffusion_model.blocks.0.self_attn.q.lora_down.weight or "
        f"lora_unet_blocks_0_self_attn_q.lora_down.weight); first keys: {shown or 'none'}"
    )


def alpha_scale(state: dict) -> float | None:
    """alpha / rank of the file's pairs (diffusers folds it into the weights while converting); None without alpha.

    A file whose pairs disagree is described by its first pair's value (diffusers still applies each layer's own).
    """
    for key, value in state.items():
        match = _DOWN.match(key)
        alpha = state.get(f"{match.group(1)}.alpha") if match else None
        if alpha is not None:
            return float(alpha) / value.shape[0]
    return None


def lora_pairs(keys) -> list[str]:
    """The module names of the A/B (down/up) pairs in a LoRA file, in file order."""
    return [match.group(1) for match in map(_DOWN.match, keys) if match]


def to_diffusers_input(state: dict, convention: str) -> tuple[dict, dict[str, str]]:
    """The state dict diffusers' Wan LoRA loader converts, and {its key: the file's key} for error messages.

    DiffSynth keys get the `diffusion_model.` prefix and lose `.default` (then diffusers converts them as it does
    ComfyUI's); every other convention is diffusers' own input already.
    """
    if convention != "diffsynth":
        return dict(state), {key: key for key in state}
    out, origin = {}, {}
    for key, value in state.items():
        renamed = "diffusion_model." + key.replace(".default.", ".")
        out[renamed] = value
        origin[renamed] = key
    return out, origin


def _injected(module, adapter: str) -> list[str]:
    """Names of the modules of `module` holding a LoRA layer of `adapter`."""
    from peft.tuners.lora import LoraLayer

    return [name for name, sub in module.named_modules() if isinstance(sub, LoraLayer) and adapter in sub.lora_A]


def _refuse(path: Path, convention: str, detail: str, keys: list[str]) -> CheckpointError:
    shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return CheckpointError(
        f"lora {path}: {convention} convention detected; {detail}; first unmatched keys: {shown or 'none'}. "
        "Nothing was applied silently: fix or re-export the file (conventions read: " + ", ".join(CONVENTIONS) + ")"
    )


def load_lora(pipe, expert: str, path: Path, scale: float = 1.0) -> LoraRecord:
    """Load one LoRA file into `expert` ('transformer' or 'transformer_2') of a Wan pipeline and check it applied."""
    import logging

    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises several kinds for a damaged file
        raise CheckpointError(f"lora {path}: not a readable .safetensors file ({err})") from err
    convention = detect_convention(state)
    if convention is None:
        raise unknown_convention(path, state)
    pairs = lora_pairs(state)
    if not pairs:
        raise _refuse(path, convention, "the file holds no LoRA A/B (down/up) pairs", sorted(state)[:5])
    prepared, origin = to_diffusers_input(state, convention)
    adapter = f"cos_ray_{expert}"
    target = getattr(pipe, expert)
    try:
        converted = pipe.lora_state_dict(prepared)
    except Exception as err:  # noqa: BLE001 - diffusers' converters raise ValueError, KeyError, IndexError, ...
        # diffusers' Wan conversion refuses keys it cannot place; name them as the file spells them.
        if isinstance(err, KeyError):  # a converter that pops every key a Wan block must have
            raise _refuse(path, convention, f"diffusers' conversion expects {err} for a Wan transformer and the "
                          "file lacks it (is this a LoRA of another model?)", list(state)) from err
        named = [key for key in re.findall(r"'([^']+)'", str(err)) if "." in key]
        leftover = [origin.get(key, origin.get(f"diffusion_model.{key}", key)) for key in named]
        raise _refuse(path, convention, f"diffusers' conversion could not place every key ({type(err).__name__})",
                      leftover or [str(err)[:200]]) from err
    converted_pairs = lora_pairs(converted)
    peft_logger = logging.getLogger("peft")
    previous = peft_logger.level
    try:
        peft_logger.setLevel(logging.ERROR)
        pipe.load_lora_weights(converted, adapter_name=adapter, load_into_transformer_2=(expert == "transformer_2"))
    except Exception as err:  # noqa: BLE001 - peft raises RuntimeError (shapes), ValueError (targets), ...
        raise _refuse(path, convention, f"diffusers/peft refused it ({type(err).__name__}: {err})"[:400],
                      converted_pairs) from err
    finally:
        peft_logger.setLevel(previous)
    injected = _injected(target, adapter)
    if len(injected) != len(pairs) or len(converted_pairs) != len(pairs):
        placed = set(injected)
        unmatched = [origin.get(key, key) for key in converted_pairs if key.removeprefix("transformer.") not in placed]
        if len(converted_pairs) != len(pairs):
            unmatched = [key for key in pairs if not _was_converted(key, origin, converted_pairs)] + unmatched
        _unload(pipe, adapter)
        raise _refuse(path, convention, f"{len(injected)} LoRA layers injected into {expert} for {len(pairs)} A/B "
                      "pairs in the file", unmatched)
    if scale != 1.0:
        from diffusers.utils.peft_utils import set_weights_and_activate_adapters

        set_weights_and_activate_adapters(target, [adapter], [scale])
    return LoraRecord(str(path), file_sha256(path), convention, len(pairs), len(injected), float(scale), False,
                      alpha_scale(state))


def _was_converted(key: str, origin: dict, converted_pairs: list[str]) -> bool:
    """Whether the file's pair `key` survived diffusers' conversion (only decidable when the names are kept)."""
    return key in converted_pairs or any(origin.get(c) == key for c in converted_pairs)


def _unload(pipe, adapter: str) -> None:
    try:
        pipe.delete_adapters([adapter])
    except Exception:  # noqa: BLE001 - best effort: the error being raised matters more
        pass


def fuse_loras(pipe, records: dict[str, LoraRecord]) -> dict[str, LoraRecord]:
    """Merge every loaded LoRA into its expert's weights (W += scale·B·A) and drop the LoRA layers."""
    from dataclasses import replace

    for expert, record in records.items():
        pipe.fuse_lora(components=[expert], lora_scale=1.0, adapter_names=[f"cos_ray_{expert}"])
    pipe.unload_lora_weights()
    return {expert: replace(record, fused=True) for expert, record in records.items()}
