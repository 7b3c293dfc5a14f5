"""The training run's settings: one frozen dataclass per concern, each validating itself in `__post_init__`.

Read from YAML (`training/configs/tiny-reasoner.yaml`); an unknown key or a bad value is a `UsageError` naming the
field, what was expected and what arrived.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cos_ray.errors import UsageError


def _check(name: str, ok: bool, expected: str, value) -> None:
    if not ok:
        raise UsageError(f"{name}: expected {expected}, got {value!r}")


def _int(name: str, value, low: int, high: int = 10**9) -> None:
    _check(name, isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
           f"an integer in {low}..{high}", value)


def _num(name: str, value, low: float, high: float) -> None:
    _check(name, isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high,
           f"a number in [{low}, {high}]", value)


@dataclass(frozen=True)
class DataConfig:
    """The generator the samples are streamed from (cos-ray's own maze) and its parameters."""

    family: str = "maze"
    cells: int = 4
    size: int = 64
    frames: int = 9

    def __post_init__(self):
        _check("data.family", self.family == "maze", "'maze' (the only family trained so far)", self.family)
        _int("data.frames", self.frames, 5, 81)
        _check("data.frames", (self.frames - 1) % 4 == 0, "a count of the form 4k+1", self.frames)
        _int("data.size", self.size, 64, 512)
        _check("data.size", self.size % 16 == 0, "a multiple of 16 (VAE stride 8 x patch 2)", self.size)

    def generator_params(self) -> dict:
        return {"cells": self.cells, "size": self.size, "frames": self.frames}


@dataclass(frozen=True)
class VaeConfig:
    """The AutoencoderKLWan fitted first; `color_weight` multiplies the loss on coloured pixels (path, markers)."""

    base_dim: int = 16
    dim_mult: tuple = (1, 2, 2, 2)
    z_dim: int = 16
    steps: int = 400
    batch: int = 2  # whole videos per step (the temporal layers)
    image_batch: int = 24  # single frames per step, as 1-frame videos (spatial layers, at 1/frames of a video's cost)
    lr: float = 1e-3
    color_weight: float = 10.0
    stat_samples: int = 256  # samples whose latents give the per-channel mean / std written to the VAE config

    def __post_init__(self):
        object.__setattr__(self, "dim_mult", tuple(self.dim_mult))
        _int("vae.base_dim", self.base_dim, 4, 256)
        _check("vae.dim_mult", len(self.dim_mult) == 4 and all(isinstance(m, int) and m > 0 for m in self.dim_mult),
               "4 positive integers", self.dim_mult)
        _int("vae.z_dim", self.z_dim, 4, 64)
        _int("vae.steps", self.steps, 0)
        _int("vae.batch", self.batch, 1, 1024)
        _int("vae.image_batch", self.image_batch, 0, 4096)
        _num("vae.lr", self.lr, 1e-7, 1.0)
        _num("vae.color_weight", self.color_weight, 1.0, 1000.0)
        _int("vae.stat_samples", self.stat_samples, 8)


@dataclass(frozen=True)
class TransformerConfig:
    """Each expert's WanTransformer3DModel: 40 blocks keep the paper's middle layers 20-29."""

    num_layers: int = 40
    num_attention_heads: int = 4
    attention_head_dim: int = 16
    ffn_dim: int = 128
    freq_dim: int = 64

    def __post_init__(self):
        _int("transformer.num_layers", self.num_layers, 30, 80)
        _int("transformer.num_attention_heads", self.num_attention_heads, 1, 64)
        _int("transformer.attention_head_dim", self.attention_head_dim, 4, 256)
        _check("transformer.attention_head_dim", self.attention_head_dim % 4 == 0, "a multiple of 4 (3-axis RoPE)",
               self.attention_head_dim)
        _int("transformer.ffn_dim", self.ffn_dim, 4)
        _int("transformer.freq_dim", self.freq_dim, 4)
        _check("transformer.freq_dim", self.freq_dim % 2 == 0, "an even number", self.freq_dim)


@dataclass(frozen=True)
class FlowConfig:
    """The flow-matching stage. One transformer is trained for both noise ranges and copied into both experts."""

    steps: int = 4000
    batch: int = 32
    lr: float = 6e-4
    warmup: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema: float = 0.998  # EMA decay from step 1 (no warm-up: after N steps the init weighs ema**N, 0.7% at 2500)
    export_weights: str = "ema"  # which weights export/ holds: the EMA or the raw trained ones
    prompt_dropout: float = 0.1  # share of samples conditioned on the negative prompt (what CFG's uncond branch sees)
    shift: float = 5.0  # sigma = shift*u / (1 + (shift-1)*u), u ~ U(0, 1): the sampler's flow shift
    boundary: float = 0.875
    buffer: int = 1024  # encoded samples held; `refresh` of them are replaced by fresh ones each step
    refresh: int = 8
    max_sequence_length: int = 32
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self):
        _int("flow.steps", self.steps, 0)
        _int("flow.batch", self.batch, 1, 4096)
        _num("flow.lr", self.lr, 1e-7, 1.0)
        _int("flow.warmup", self.warmup, 0)
        _num("flow.weight_decay", self.weight_decay, 0.0, 1.0)
        _num("flow.grad_clip", self.grad_clip, 0.0, 1e6)
        _num("flow.ema", self.ema, 0.0, 0.99999)
        _check("flow.export_weights", self.export_weights in ("ema", "raw"), "'ema' or 'raw'", self.export_weights)
        _num("flow.prompt_dropout", self.prompt_dropout, 0.0, 1.0)
        _num("flow.shift", self.shift, 0.01, 100.0)
        _num("flow.boundary", self.boundary, 0.0, 1.0)
        _int("flow.buffer", self.buffer, 1)
        _int("flow.refresh", self.refresh, 0)
        _check("flow.refresh", self.refresh <= self.buffer, f"at most flow.buffer ({self.buffer})", self.refresh)
        _int("flow.max_sequence_length", self.max_sequence_length, 1, 512)
        _int("flow.checkpoint_every", self.checkpoint_every, 1)
        _int("flow.log_every", self.log_every, 1)


@dataclass(frozen=True)
class TrainConfig:
    """A whole run. `seed` decides the weights' initialisation, every sample drawn and every noise: same seed, same
    weights. Training samples are drawn with numpy's generator seeded (TRAIN_SEED_BASE + seed, i): evaluation uses
    `cos-ray tasks generate` seeds below TRAIN_SEED_BASE, so the two never share a generator stream."""

    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int = 1  # torch CPU threads
    data: DataConfig = field(default_factory=DataConfig)
    vae: VaeConfig = field(default_factory=VaeConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)

    def __post_init__(self):
        _int("seed", self.seed, 0, 10**6 - 1)
        _check("device", self.device in ("auto", "cpu") or self.device.startswith("cuda"), "auto, cpu or cuda[:N]",
               self.device)
        _int("threads", self.threads, 1, 256)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {"data": DataConfig, "vae": VaeConfig, "transformer": TransformerConfig, "flow": FlowConfig}


def _build(cls, values, where: str):
    if not isinstance(values, dict):
        raise UsageError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**values)


def config_from_dict(values: dict, where: str = "config") -> TrainConfig:
    values = dict(values or {})
    sections = {name: _build(cls, values.pop(name, {}) or {}, f"{where}: {name}") for name, cls in _SECTIONS.items()}
    return _build(TrainConfig, {**values, **sections}, where)


def load_config(path: str | Path) -> TrainConfig:
    """The config in a YAML file; a missing or malformed file is a UsageError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such training config (expected a YAML file, e.g. training/configs/tiny-reasoner.yaml)")
    from cos_ray.bounded_read import read_yaml

    values = read_yaml(path, what="training config")  # bounded (a regular file, 1 MiB, nesting 32): exit 2 if not
    if values is None:
        raise UsageError(f"{path}: empty; expected a training config (e.g. training/configs/tiny-reasoner.yaml)")
    return config_from_dict(values, str(path))
