"""The original Wan2.2 download layout (`Wan-AI/Wan2.2-I2V-A14B`, what the paper's README fetches), read as it is.

    high_noise_model/   config.json (_class_name: WanModel) + diffusion_pytorch_model-0000i-of-0000n.safetensors + index
    low_noise_model/    the same for the low-noise expert
    models_t5_umt5-xxl-enc-bf16.pth   Wan's T5Encoder state dict (bf16)
    Wan2.1_VAE.pth                    Wan's WanVAE_ state dict
    google/umt5-xxl/                  the tokenizer

The libraries do the loading: `WanTransformer3DModel.from_single_file` and `AutoencoderKLWan.from_single_file` with a
config built here from the checkpoint's own config.json and the weights' shapes (written to a local folder, so nothing
is fetched), and a plain key map onto transformers' `UMT5EncoderModel` (no library loads Wan's T5 `.pth`). Each
expert is assembled shard by shard in the target dtype on the target device, so it is never held twice in host memory.
Inspection is pure Python; loading imports torch lazily.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from cos_ray.bounded_read import FileRefused, read_json
from cos_ray.errors import CheckpointError
from cos_ray.model.checkpoint import TOKENIZER_FILES, CheckpointLayout
from cos_ray.model.shapes import shapes_of, shard_files, wan_transformer_config

EXPERT_FOLDERS = {"transformer": "high_noise_model", "transformer_2": "low_noise_model"}
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
VAE_FILES = {"a14b": "Wan2.1_VAE.pth", "ti2v": "Wan2.2_VAE.pth"}
TOKENIZER_FOLDER = "google/umt5-xxl"
ORIGINAL_BOUNDARY = 0.900  # wan/configs/wan_i2v_A14B.py; the sampler's default (the paper's 0.875) applies at run time
# The scheduler the -Diffusers repositories ship (the original layout has none); each run derives its own from it.
SCHEDULER_CONFIG = dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0, num_train_timesteps=1000)
# Wan's T5RelativeEmbedding fixes max_dist=128 (wan/modules/t5.py); no tensor shape carries it.
T5_MAX_DISTANCE = 128


def looks_original(root: Path) -> bool:
    """Whether `root` is meant as the original layout (so that its problems are reported as such)."""
    return any((root / name).exists() for name in (*EXPERT_FOLDERS.values(), T5_FILE, *VAE_FILES.values()))


def _wan_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.exists():
        raise CheckpointError(f"{folder.name}: missing config.json (expected {path})")
    try:
        config = read_json(path, what="config")
    except FileRefused as err:
        raise CheckpointError(f"{folder.name}: {err.path}: {err.reason}; re-copy it") from None
    if not isinstance(config, dict) or config.get("_class_name") != "WanModel":
        found = config.get("_class_name") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{folder.name}: {path} should have _class_name WanModel, found {found!r}")
    return config


def inspect_original(root: Path) -> CheckpointLayout:
    """Validate the original layout (configs, shard lists, files present) and describe it; no tensor is read."""
    if (root / "config.json").is_file() and not (root / EXPERT_FOLDERS["transformer"]).is_dir():
        raise CheckpointError(
            f"{root}: the original TI2V-5B layout (root transformer + {VAE_FILES['ti2v']}) is recognised but not "
            "loadable yet (no converter exists for its Wan2.2 VAE .pth); use Wan-AI/Wan2.2-TI2V-5B-Diffusers"
        )
    problems = []
    files: dict[str, Path] = {}
    for expert, name in EXPERT_FOLDERS.items():
        folder = root / name
        if not folder.is_dir():
            problems.append(f"{name}/: missing expert folder {folder}")
            continue
        try:
            _wan_config(folder)
            shard_files(folder)
        except CheckpointError as err:
            problems.append(str(err))
        files[expert] = folder
    for component, name in (("text_encoder", T5_FILE), ("vae", VAE_FILES["a14b"])):
        if not (root / name).is_file():
            problems.append(f"{component}: missing {name} (expected {root / name})")
        files[component] = root / name
    tokenizer = root / TOKENIZER_FOLDER
    if not any((tokenizer / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"tokenizer: none of {', '.join(TOKENIZER_FILES)} in {tokenizer}")
    files["tokenizer"] = tokenizer
    if problems:
        raise CheckpointError(f"{root} (original Wan layout): " + "; ".join(problems))
    return CheckpointLayout(
        path=root, family="a14b", experts=tuple(EXPERT_FOLDERS), boundary_ratio=ORIGINAL_BOUNDARY,
        expand_timesteps=False, format="wan-original", files=files,
    )


def expert_config(folder: Path) -> dict:
    """The diffusers config of one original expert folder: its WanModel config.json completed from shapes."""
    return wan_transformer_config(shapes_of(shard_files(folder)), _wan_config(folder), where=folder.name)


def config_folder(config: dict) -> Path:
    """A local folder holding `config` as config.json (keyed by its hash), for `from_single_file(config=...)`."""
    from cos_ray.model.tiny import cache_root

    blob = json.dumps(config, sort_keys=True)
    folder = cache_root() / "configs" / hashlib.sha256(blob.encode()).hexdigest()[:16]
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".config-{id(config)}.json"
        staging.write_text(blob)
        staging.replace(folder / "config.json")
    return folder


def read_shards(files: list[Path], dtype, device: str, strip: str = "") -> dict:
    """All tensors of `files`, one shard at a time, each cast to `dtype` on `device` as it is read.

    The expert is never held twice: a shard's tensors are converted one by one (the fp32 source of a tensor is freed
    as soon as its bf16 copy exists) and the file is memory-mapped, not read whole.
    """
    from safetensors import safe_open

    state = {}
    for path in files:
        with safe_open(str(path), framework="pt", device=device if device.startswith("cuda") else "cpu") as handle:
            for key in handle.keys():
                state[key.removeprefix(strip)] = handle.get_tensor(key).to(dtype)
    return state


def load_transformer(files: list[Path], config: dict, dtype, device: str, where: str, strip: str = ""):
    """A `WanTransformer3DModel` from WanModel-named shards, through diffusers' single-file loader."""
    import torch
    from diffusers import WanTransformer3DModel

    state = read_shards(files, dtype, device, strip)
    count = len(state)
    model = WanTransformer3DModel.from_single_file(
        state, config=str(config_folder(config)), torch_dtype=dtype, device=device, local_files_only=True
    )
    del state
    missing = [name for name, tensor in model.state_dict().items() if tensor.device == torch.device("meta")]
    if missing or count != len(model.state_dict()):
        raise CheckpointError(
            f"{where}: the weights do not cover the model ({count} tensors for {len(model.state_dict())}); "
            f"not loaded: {', '.join(missing[:5]) or 'none'} - is a shard missing from the index?"
        )
    return model


_T5_KEYS = [  # Wan T5Encoder name -> UMT5EncoderModel name (per block N)
    (r"blocks\.(\d+)\.norm1\.weight", r"encoder.block.\1.layer.0.layer_norm.weight"),
    (r"blocks\.(\d+)\.attn\.([qkvo])\.weight", r"encoder.block.\1.layer.0.SelfAttention.\2.weight"),
    (r"blocks\.(\d+)\.pos_embedding\.embedding\.weight",
     r"encoder.block.\1.layer.0.SelfAttention.relative_attention_bias.weight"),
    (r"blocks\.(\d+)\.norm2\.weight", r"encoder.block.\1.layer.1.layer_norm.weight"),
    (r"blocks\.(\d+)\.ffn\.gate\.0\.weight", r"encoder.block.\1.layer.1.DenseReluDense.wi_0.weight"),
    (r"blocks\.(\d+)\.ffn\.fc1\.weight", r"encoder.block.\1.layer.1.DenseReluDense.wi_1.weight"),
    (r"blocks\.(\d+)\.ffn\.fc2\.weight", r"encoder.block.\1.layer.1.DenseReluDense.wo.weight"),
    (r"norm\.weight", "encoder.final_layer_norm.weight"),
]


def umt5_state_dict(wan_state: dict, where: str) -> dict:
    """Wan's T5Encoder keys renamed onto `UMT5EncoderModel` (the token embedding feeds both `shared` and the stack)."""
    out = {}
    for key, value in wan_state.items():
        if key == "token_embedding.weight":
            out["shared.weight"] = value
            out["encoder.embed_tokens.weight"] = value
            continue
        for pattern, target in _T5_KEYS:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, target, key)] = value
                break
        else:
            raise CheckpointError(f"{where}: unexpected tensor {key!r} (not a Wan T5Encoder key)")
    return out


def umt5_config(state: dict, tokenizer_folder: Path, where: str):
    """The `UMT5Config` of Wan's T5 weights: sizes from shapes; a UMT5 config.json beside the tokenizer, if any, for
    what shapes cannot tell (relative-attention distance), else Wan's own constants."""
    from transformers import UMT5Config

    if "token_embedding.weight" not in state or "blocks.0.pos_embedding.embedding.weight" not in state:
        raise CheckpointError(f"{where}: not Wan's T5 encoder (no token_embedding / per-block pos_embedding)")
    vocab, d_model = state["token_embedding.weight"].shape
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    sizes = dict(
        vocab_size=vocab, d_model=d_model, num_heads=heads, relative_attention_num_buckets=buckets,
        d_kv=state["blocks.0.attn.q.weight"].shape[0] // heads, d_ff=state["blocks.0.ffn.fc1.weight"].shape[0],
        num_layers=1 + max(int(key.split(".")[1]) for key in state if key.startswith("blocks.")),
    )
    stated = {}
    beside = tokenizer_folder / "config.json"
    if beside.is_file():
        try:
            stated = read_json(beside, what="config")
        except FileRefused as err:
            raise CheckpointError(f"text_encoder: {err.path}: {err.reason}") from None
        if stated.get("model_type") not in ("umt5", "t5", "mt5"):
            stated = {}
    for key, value in sizes.items():
        if key in stated and stated[key] != value:
            raise CheckpointError(f"{where}: {beside} says {key}={stated[key]} but the weights' shapes give {value}")
    return UMT5Config(
        **sizes,
        relative_attention_max_distance=stated.get("relative_attention_max_distance", T5_MAX_DISTANCE),
        layer_norm_epsilon=stated.get("layer_norm_epsilon", 1e-6),
        feed_forward_proj="gated-gelu",  # Wan's T5FeedForward: gelu(tanh)(gate(x)) * fc1(x)
        dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )


def load_t5(path: Path, tokenizer_folder: Path, dtype):
    """transformers' `UMT5EncoderModel` holding Wan's T5 `.pth` weights (cast to `dtype`)."""
    import torch
    from transformers import UMT5EncoderModel

    where = f"text_encoder ({path.name})"
    try:
        wan_state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise CheckpointError(f"{where}: cannot read {path} ({type(err).__name__}: {err})") from err
    config = umt5_config(wan_state, tokenizer_folder, where)
    state = {key: value.to(dtype) for key, value in umt5_state_dict(wan_state, where).items()}
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise CheckpointError(f"{where}: weights do not fit a UMT5 encoder ({err})") from err
    return model.eval()


def _vae_config(state: dict, where: str) -> dict:
    """AutoencoderKLWan config of a Wan2.1 VAE state dict, from the encoder's block list and the convs' shapes."""
    if "encoder.conv1.weight" not in state or "conv2.weight" not in state:
        raise CheckpointError(f"{where}: not a Wan2.1 VAE (no encoder.conv1 / conv2)")
    base = state["encoder.conv1.weight"].shape[0]  # (base_dim, 3, 3, 3, 3)
    indices = sorted({int(key.split(".")[2]) for key in state if key.startswith("encoder.downsamples.")})
    stages, temporal = [[]], []  # per stage: the residual blocks' output widths; per resample: temporal or not
    for index in indices:
        prefix = f"encoder.downsamples.{index}."
        if prefix + "resample.1.weight" in state:
            temporal.append(prefix + "time_conv.weight" in state)
            stages.append([])
        elif prefix + "residual.2.weight" in state:
            stages[-1].append(state[prefix + "residual.2.weight"].shape[0])  # (out_dim, in_dim, 3, 3, 3)
        else:
            raise CheckpointError(f"{where}: encoder block {index} is neither a residual block nor a resample")
    counts = {len(stage) for stage in stages}
    if len(counts) != 1 or 0 in counts:
        raise CheckpointError(f"{where}: stages hold different numbers of residual blocks ({[len(s) for s in stages]})")
    return dict(_class_name="AutoencoderKLWan", base_dim=base, z_dim=state["conv2.weight"].shape[0],
                dim_mult=[stage[-1] // base for stage in stages], num_res_blocks=counts.pop(), attn_scales=[],
                temperal_downsample=temporal)


def _group_decoder(state: dict, num_res_blocks: int) -> dict:
    """Wan's flat `decoder.upsamples.K` list grouped into diffusers' `up_blocks.I.{resnets.J, upsamplers.0}` names.

    diffusers' own converter does the rest of the VAE, but its grouping is written for num_res_blocks = 2; this is
    the same grouping for any count (per stage: num_res_blocks + 1 residual blocks, then one resample).
    """
    per_stage = num_res_blocks + 2
    residual = {"residual.0.gamma": "norm1.gamma", "residual.2.weight": "conv1.weight", "residual.2.bias": "conv1.bias",
                "residual.3.gamma": "norm2.gamma", "residual.6.weight": "conv2.weight", "residual.6.bias": "conv2.bias",
                "shortcut.weight": "conv_shortcut.weight", "shortcut.bias": "conv_shortcut.bias"}
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"decoder\.upsamples\.(\d+)\.(.+)", key)
        if not match:
            out[key] = value
            continue
        stage, offset = divmod(int(match.group(1)), per_stage)
        leaf = match.group(2)
        if offset == per_stage - 1:
            out[f"decoder.up_blocks.{stage}.upsamplers.0.{leaf}"] = value
        else:
            out[f"decoder.up_blocks.{stage}.resnets.{offset}.{residual[leaf]}"] = value
    return out


def load_vae(path: Path):
    """`AutoencoderKLWan` (fp32) from `Wan2.1_VAE.pth`, through diffusers' single-file loader."""
    import torch
    from diffusers import AutoencoderKLWan

    where = f"vae ({path.name})"
    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{where}: cannot read {path} ({type(err).__name__}: {err})") from err
    config = _vae_config(state, where)
    state = {key: value.to(torch.float32) for key, value in _group_decoder(state, config["num_res_blocks"]).items()}
    count = len(state)
    vae = AutoencoderKLWan.from_single_file(
        state, config=str(config_folder(config)), torch_dtype=torch.float32, local_files_only=True
    )
    if count != len(vae.state_dict()) or any(t.device == torch.device("meta") for t in vae.state_dict().values()):
        raise CheckpointError(f"{where}: {count} tensors for a VAE of {len(vae.state_dict())}; the file is incomplete")
    return vae.eval()
