"""GPU memory of a worker holding a Wan2.2 model: weights (from the configs) + activations (from the video's size).

Pure Python, so that `cos-ray plan` can refuse a layout that cannot fit before anything is submitted.

Weights: parameters counted from the transformer config (the formula in `transformer_parameters`, tested equal to a
meta-device `WanTransformer3DModel` of the published A14B and TI2V-5B configs) at 2 bytes (bf16); the text encoder
(UMT5-XXL encoder, bf16) and the VAE (fp32) from their configs or weight files. A14B: 14.29 B parameters per expert =
26.6 GiB; two experts 53.2 GiB; UMT5-XXL 10.6 GiB; VAE 0.5 GiB.

Activations of one transformer forward, block by block (no gradients; attention without a tokens² matrix, as SDPA /
flash attention run it):

    tokens = ((frames - 1) / 4 + 1) * (H / 16) * (W / 16)      (A14B: VAE 4x8x8, patch 1x2x2; TI2V-5B: H/32, W/32)
    batch  = seeds on the worker * 2 CFG branches           (diffusers runs the branches one after the other, so
                                                             this is an upper bound)
    activations = batch * tokens * (9 * dim + 2 * ffn_dim) * 2 bytes
                  (the stream, its fp32 norm, q, k, v, their rotated copies, the attention output, the FFN's hidden
                  layer and its GELU)

Per GPU: the experts sharded over the worker's GPUs, the text encoder and VAE on its first GPU (where the
collective runs) and the activations there too; `offload` keeps only the running component on the GPU. A GPU must
hold that plus `HEADROOM_GIB` (CUDA context, allocator fragmentation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1 << 30
HEADROOM_GIB = 2.0
GPU_SIZES_GB = (24, 48, 80, 141)  # RTX 4090 / L40S / A100-H100 / H200
GPU_COUNTS = (1, 2, 4, 8)


def transformer_parameters(config: dict) -> int:
    """Parameters of a `WanTransformer3DModel` of this config (diffusers key layout)."""
    heads, head_dim = config["num_attention_heads"], config["attention_head_dim"]
    dim, ffn = heads * head_dim, config["ffn_dim"]
    patch = math.prod(config.get("patch_size", (1, 2, 2)))
    qk_norm = 2 * dim if config.get("qk_norm") else 0
    attention = 4 * (dim * dim + dim) + qk_norm
    block = 2 * attention + dim * ffn + ffn + ffn * dim + dim + 6 * dim
    if config.get("cross_attn_norm", True):
        block += 2 * dim
    if config.get("added_kv_proj_dim"):
        block += 2 * (config["added_kv_proj_dim"] * dim + dim) + dim
    top = dim * config["in_channels"] * patch + dim  # patch embedding (Conv3d)
    top += config["freq_dim"] * dim + dim + dim * dim + dim  # time embedder
    top += dim * 6 * dim + 6 * dim  # time projection
    top += config["text_dim"] * dim + dim + dim * dim + dim  # text embedder
    top += dim * config["out_channels"] * patch + config["out_channels"] * patch  # proj_out
    top += 2 * dim  # output scale_shift_table
    if config.get("image_dim"):
        image = config["image_dim"]
        top += 2 * image + image * image + image + image * dim + dim + 2 * dim
    return config["num_layers"] * block + top


# UMT5-XXL's encoder (google/umt5-xxl; Wan's umt5_xxl): the published sizes, used when no file tells them.
UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, num_heads=64, d_ff=10240, num_layers=24,
                relative_attention_num_buckets=32)
WAN21_VAE_PARAMETERS = 126_892_531  # AutoencoderKLWan() with its defaults (the Wan2.1 VAE); tests count it


def umt5_parameters(config: dict) -> int:
    """Parameters of a `UMT5EncoderModel` (gated FFN, a relative bias per block, embeddings tied)."""
    d, inner = config["d_model"], config["d_kv"] * config["num_heads"]
    block = 4 * d * inner + config["relative_attention_num_buckets"] * config["num_heads"] + 2 * d + 3 * d * config["d_ff"]
    return config["vocab_size"] * d + config["num_layers"] * block + d


def tokens_per_pass(frames: int, height: int, width: int, spatial: int = 8, temporal: int = 4,
                    patch: tuple = (1, 2, 2)) -> int:
    """Visual tokens of one forward: latent frames x latent patches (A14B: ((frames-1)/4+1) * H/16 * W/16)."""
    latent_frames = (frames - 1) // temporal + 1
    return (latent_frames // patch[0]) * (height // (spatial * patch[1])) * (width // (spatial * patch[2]))


def activation_bytes(config: dict, tokens: int, batch: int) -> int:
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    return batch * tokens * (9 * dim + 2 * config["ffn_dim"]) * 2


@dataclass(frozen=True)
class WorkerMemory:
    """One worker's GPU memory, in bytes, and whether it fits GPUs of `gpu_gib` GiB."""

    experts: int  # all experts, bf16
    text_encoder: int
    vae: int
    activations: int
    gpus: float  # GPUs per worker (0: CPU)
    offload: bool
    tokens: int
    batch: int

    @property
    def per_gpu(self) -> int:
        """The fullest GPU of the worker: its share of the experts + text encoder + VAE + activations."""
        if self.offload:
            single = self.experts // 2 if self.experts else 0
            return max(single, self.text_encoder, self.vae) + self.activations
        share = self.experts / max(self.gpus, 1) if self.gpus >= 1 else self.experts
        return int(share + self.text_encoder + self.vae + self.activations)

    def fits(self, gpu_gib: float) -> bool:
        capacity = gpu_gib * (self.gpus if 0 < self.gpus < 1 else 1)  # a fraction of a GPU gets that fraction
        return self.per_gpu / GIB + HEADROOM_GIB <= capacity

    def lines(self) -> list[str]:
        def gib(value):
            return f"{value / GIB:,.1f} GiB"

        where = "offloaded (one component at a time)" if self.offload else (
            f"sharded over {self.gpus:g} GPU(s)" if self.gpus >= 1 else "on one GPU")
        return [
            f"  weights: experts {gib(self.experts)} (bf16, {where}), text encoder {gib(self.text_encoder)}, "
            f"VAE {gib(self.vae)}",
            f"  activations: {gib(self.activations)} = batch {self.batch} (seeds on the worker x 2 CFG) x "
            f"{self.tokens:,} tokens x (9·dim + 2·ffn_dim) x 2 bytes",
            f"  per GPU (fullest): {gib(self.per_gpu)} + {HEADROOM_GIB:g} GiB headroom",
        ]


def worker_memory(config: dict, experts: int, frames: int, height: int, width: int, seeds_per_worker: int,
                  gpus: float, offload: bool = False, text_encoder: int | None = None, vae: int | None = None,
                  spatial: int = 8, cfg: bool = True) -> WorkerMemory:
    """The memory of one worker for videos of `frames` x `height` x `width` and `seeds_per_worker` seeds."""
    tokens = tokens_per_pass(frames, height, width, spatial=spatial, patch=tuple(config.get("patch_size", (1, 2, 2))))
    batch = seeds_per_worker * (2 if cfg else 1)
    return WorkerMemory(
        experts=experts * transformer_parameters(config) * 2,
        text_encoder=umt5_parameters(UMT5_XXL) * 2 if text_encoder is None else text_encoder,
        vae=WAN21_VAE_PARAMETERS * 4 if vae is None else vae,
        activations=activation_bytes(config, tokens, batch),
        gpus=gpus, offload=offload, tokens=tokens, batch=batch,
    )


def what_would_fit(memory: WorkerMemory, gpu_gib: float, frames: int, rebuild) -> list[str]:
    """Alternatives that fit, for the refusal: more GPUs per worker, offload, fewer frames.

    `rebuild(gpus=, offload=, frames=)` returns the WorkerMemory of the same worker changed so.
    """
    options = []
    for gpus in GPU_COUNTS:
        if gpus > memory.gpus and rebuild(gpus=gpus, offload=False, frames=frames).fits(gpu_gib):
            options.append(f"gpus_per_worker: {gpus}")
            break
    if memory.gpus <= 1 and not memory.offload and rebuild(gpus=1, offload=True, frames=frames).fits(gpu_gib):
        options.append("offload: true (one GPU per worker)")
    for fewer in range(frames - 4, 0, -4):
        if rebuild(gpus=memory.gpus, offload=memory.offload, frames=fewer).fits(gpu_gib):
            options.append(f"frames: {fewer} (or fewer)")
            break
    return options


def fit_table(config: dict, experts: int = 2, frames: int = 81, height: int = 480, width: int = 832,
              seeds_per_worker: int = 1) -> dict[tuple[int, int], bool]:
    """{(GPUs per worker, GPU GB): fits} over 1, 2, 4, 8 GPUs of 24, 48, 80, 141 GB."""
    table = {}
    for gpus in GPU_COUNTS:
        memory = worker_memory(config, experts, frames, height, width, seeds_per_worker, gpus)
        for size in GPU_SIZES_GB:
            table[(gpus, size)] = memory.fits(size * 1e9 / GIB)
    return table


# -- parallel layouts on one kind of GPU (cos-ray plan --gpu NAME --gpus N) ---------------------------------------------

@dataclass(frozen=True)
class GPU:
    """One kind of GPU: memory (GB = 1e9 bytes, as sold), dense peaks, and the links between GPUs of a node."""

    name: str
    memory_gb: float
    bf16_tflops: float  # dense bf16 tensor-core peak (the DiT)
    fp32_tflops: float  # fp32 peak (the VAE's convolutions run in fp32)
    link_gbps: float  # achieved all-to-all bandwidth per GPU within a node, GB/s (NVLink; PCIe cards far less)
    pcie_gbps: float = 25.0  # host <-> GPU, GB/s (offloading an expert)

    @property
    def memory_gib(self) -> float:
        return self.memory_gb * 1e9 / GIB


# Vendor datasheets (dense, no sparsity); links: ~2/3 of NVLink's per-GPU bandwidth, PCIe 4/5 x16 for the others.
GPUS = {gpu.name: gpu for gpu in (
    GPU("h100-80gb", 80, 989, 67, 300, 50),
    GPU("h200-141gb", 141, 989, 67, 300, 50),
    GPU("a100-80gb", 80, 312, 19.5, 200),
    GPU("l40s-48gb", 48, 362, 91.6, 20),
    GPU("a6000-48gb", 48, 155, 38.7, 20),
    GPU("rtx4090-24gb", 24, 165, 82.6, 20),
    GPU("l4-24gb", 24, 121, 30.3, 20),
)}
PLAN_SIZES_GB = (80, 48, 24)  # the GPU sizes every plan prints a verdict for


@dataclass(frozen=True)
class LayoutMemory:
    """One GPU's memory under a parallel layout, in bytes: weights ÷K with FSDP, activations ÷K with Ulysses."""

    ulysses: int
    fsdp: bool
    offload: bool
    experts: int  # this GPU's share of every expert (+ the blocks FSDP all-gathers at a time)
    text_encoder: int
    vae: int
    activations: int  # this GPU's share of one block's activations
    batch: int
    tokens: int

    @property
    def per_gpu(self) -> int:
        if self.offload:  # one component at a time on the GPU: an expert, or the text encoder, or the VAE
            return max(self.experts, self.text_encoder, self.vae) + self.activations
        return self.experts + self.text_encoder + self.vae + self.activations

    def peak_gib(self) -> float:
        return self.per_gpu / GIB + HEADROOM_GIB

    def fits(self, gpu_gib: float) -> bool:
        return self.peak_gib() <= gpu_gib

    def describe(self) -> str:
        if self.ulysses == 1:
            return "1 GPU per replica" + (", offload" if self.offload else "")
        return f"Ulysses-{self.ulysses}" + (" + FSDP2" if self.fsdp else "")


def layout_memory(config: dict, experts: int, tokens: int, batch: int, ulysses: int = 1, fsdp: bool = False,
                  offload: bool = False, text_encoder: int | None = None, vae: int | None = None) -> LayoutMemory:
    """Per GPU: the experts (bf16) whole, ÷K with FSDP2 (plus the 2 blocks all-gathered at a time: the running one
    and the prefetched one), or one expert at a time with `offload`; the text encoder and VAE whole on every GPU; one
    block's activations for `batch` sequences of `tokens`, ÷K with Ulysses (each rank holds seq/K tokens, or all
    tokens of heads/K inside attention)."""
    expert = transformer_parameters(config) * 2
    if offload:
        weights = expert
    elif fsdp and ulysses > 1:
        weights = experts * expert // ulysses + 2 * expert // config["num_layers"]
    else:
        weights = experts * expert
    return LayoutMemory(
        ulysses=ulysses, fsdp=fsdp, offload=offload, experts=weights,
        text_encoder=umt5_parameters(UMT5_XXL) * 2 if text_encoder is None else text_encoder,
        vae=WAN21_VAE_PARAMETERS * 4 if vae is None else vae,
        activations=activation_bytes(config, tokens, batch) // ulysses, batch=batch, tokens=tokens,
    )
