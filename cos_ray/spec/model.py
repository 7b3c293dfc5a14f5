"""`model:` - which model every unit runs, and how a worker group holds it (workers, GPUs per worker).

A preset name (`tiny`, `tiny-ti2v`) or a local diffusers-format directory (relative paths are relative to the spec
file). The checkpoint is inspected (configs only, no weights) during validation, and its transformer's `num_layers`
read from config.json, so that layer ranges are checked before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cos_ray.bounded_read import FileRefused, read_json
from cos_ray.errors import UsageError
from cos_ray.spec.fields import SpecNode

EXPERTS = ("transformer", "transformer_2")


@dataclass(frozen=True)
class ModelSpec(SpecNode):
    """The model and its worker group: `workers` workers per group, each holding one copy on `gpus_per_worker` GPUs."""

    name: str
    workers: int = 1  # workers per group; an ensemble's members are spread over them (merged by all-reduce)
    gpus_per_worker: float = 0  # 0: CPU workers; >= 1: the model is sharded over that many GPUs
    groups: int | None = None  # worker groups running units side by side; null: as many as the cluster fits
    # {high: file, low: file, scale: 1.0, fuse: false}: one LoRA file per expert in any convention (diffusers, DiffSynth,
    # Kohya, ComfyUI); 'transformer'/'transformer_2' are aliases of high/low; fuse merges it into the weights
    lora: dict[str, str | float | bool] | None = None
    gpu_memory_gib: float | None = None  # memory of each GPU; `cos-ray plan` refuses a layout that cannot fit in it
    # {high: file, low: file}: ComfyUI-style single-file experts; `name` is then the base directory (T5, VAE, tokenizer)
    experts: dict[str, str] | None = None
    offload: bool = False  # one GPU per worker: keep only the running component on it (the idle expert on CPU)
    # {ulysses: K, fsdp: true|false, cfg: true|false}: each worker (replica) is K actors of `gpus_per_worker` GPUs
    # that split every forward's tokens (Ulysses) and, with fsdp, shard the weights; with cfg 2K actors, the cond and
    # uncond passes on K each at the same time (see cos_ray.engine.parallel, cos_ray.engine.cfg_parallel)
    parallel: dict[str, int | bool] | None = None

    @classmethod
    def shorthand(cls, raw):
        return {"name": raw} if isinstance(raw, str) else raw

    def check(self):
        if self.workers < 1:
            yield "workers", f"expected an integer >= 1, got {self.workers}"
        if self.gpus_per_worker < 0 or (self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker)):
            yield "gpus_per_worker", f"expected 0 (CPU), a fraction of one GPU, or a whole number, got {self.gpus_per_worker}"
        if self.groups is not None and self.groups < 1:
            yield "groups", f"expected an integer >= 1 or null, got {self.groups}"
        if self.offload and self.gpus_per_worker > 1:
            yield "offload", "expected false with gpus_per_worker > 1 (the experts are sharded over the GPUs instead)"
        if self.lora is not None:
            from cos_ray.errors import CheckpointError
            from cos_ray.model.lora_conventions import lora_options

            try:
                lora_options(self.lora)
            except CheckpointError as err:
                field, _, message = str(err).partition(": ")
                yield field, message
        for name in self.experts or {}:
            if name not in ("high", "low", "transformer", "transformer_2"):
                yield f"experts.{name}", "expected an expert (high, low, transformer, transformer_2)"
        if self.gpu_memory_gib is not None and self.gpu_memory_gib <= 0:
            yield "gpu_memory_gib", f"expected a positive number of GiB, got {self.gpu_memory_gib}"
        if self.parallel is not None:
            yield from self._parallel_problems()

    def layout(self):
        """The `ParallelLayout` of `parallel` (one rank per replica when unset)."""
        from cos_ray.engine.parallel_layout import as_layout

        return as_layout(self.parallel, field="parallel")

    def _parallel_problems(self):
        try:
            layout = self.layout()
        except UsageError as err:
            field, _, message = str(err).partition(": ")
            yield field, message
            return
        if not layout.active:
            return
        if self.offload:
            yield "parallel", "expected offload: false (a replica's ranks share the model instead of offloading it)"
        if self.gpus_per_worker > 1:
            yield "parallel", (f"expected gpus_per_worker 0 or 1 with {layout.describe()}: a replica is "
                               f"{layout.ranks_per_replica} workers of one GPU each (device maps are not combined "
                               "with it)")
        try:
            heads = transformer_config(self.name).get("num_attention_heads")
        except UsageError:
            return  # model.name reports it
        if isinstance(heads, int):
            from cos_ray.engine.parallel_layout import layout_problems

            for problem in layout_problems(layout, heads):
                yield "parallel.ulysses", problem

    def ranks_per_replica(self) -> int:
        """Ray actors per worker (replica): `parallel.ulysses` (x 2 with `parallel.cfg`), else 1."""
        return self.layout().ranks_per_replica if isinstance(self.parallel, dict) else 1

    def experts_files(self) -> dict[str, str] | None:
        """{transformer: file, transformer_2: file} of single-file experts (aliases resolved), or None."""
        if not self.experts:
            return None
        from cos_ray.model.lora_conventions import LORA_ALIASES

        return {LORA_ALIASES[name]: file for name, file in self.experts.items()}

    def lora_files(self) -> dict[str, str]:
        """{transformer: file, transformer_2: file} (aliases resolved; scale and fuse left out)."""
        from cos_ray.model.lora_conventions import lora_options

        return {expert: str(path) for expert, path in lora_options(self.lora)[0].items()}

    def resolved(self, base: Path) -> "ModelSpec":
        """Relative checkpoint and LoRA paths made absolute against the spec file's folder."""
        from dataclasses import replace

        from cos_ray.model.source import is_preset

        def absolute(path: str) -> str:
            candidate = Path(path).expanduser()
            return str(candidate if candidate.is_absolute() else (base / candidate).resolve())

        name = self.name if is_preset(self.name) else absolute(self.name)
        lora = None
        if self.lora:
            from cos_ray.model.lora_conventions import LORA_OPTIONS, lora_options

            lora = {expert: absolute(str(path)) for expert, path in lora_options(self.lora)[0].items()}
            lora.update({key: self.lora[key] for key in LORA_OPTIONS if key in self.lora})
        experts = {key: absolute(file) for key, file in self.experts.items()} if self.experts else None
        return replace(self, name=name, lora=lora, experts=experts)


def transformer_config(model: str) -> dict:
    """The (first) transformer's diffusers config: a preset's from its definition, a checkpoint's from its files."""
    from cos_ray.model.source import SHIPPED_PRESETS, is_preset

    if is_preset(model) and model not in SHIPPED_PRESETS:
        from cos_ray.model.tiny import PRESETS

        return dict(PRESETS[model]["transformer"])
    if model in SHIPPED_PRESETS:
        path = SHIPPED_PRESETS[model] / "transformer" / "config.json"
        try:
            return read_json(path, what="config")
        except FileRefused as err:
            raise UsageError(f"cannot read {err}") from None
    from cos_ray.errors import CheckpointError
    from cos_ray.model.checkpoint import expert_config, inspect_checkpoint

    try:  # any layout: a diffusers config.json, or a WanModel config.json completed from the weights' shapes
        return expert_config(inspect_checkpoint(model))
    except CheckpointError as err:
        raise UsageError(str(err)) from None


def vae_config(model: str) -> dict:
    from cos_ray.model.source import SHIPPED_PRESETS, is_preset

    if is_preset(model) and model not in SHIPPED_PRESETS:
        from cos_ray.model.tiny import PRESETS

        return dict(PRESETS[model]["vae"])
    try:
        return read_json(Path(SHIPPED_PRESETS.get(model, model)) / "vae" / "config.json", what="config")
    except FileRefused:
        return {}


def num_layers(model: str) -> int:
    """Blocks per expert (tiny: 40, tiny-ti2v: 30, A14B/VBVR: 40, TI2V-5B: 30), without torch."""
    layers = transformer_config(model).get("num_layers")
    if not isinstance(layers, int) or layers < 1:
        raise UsageError(f"{model}: transformer/config.json has no valid num_layers ({layers!r})")
    return layers
