"""Device maps that shard each expert over a worker's GPUs (one A14B expert is 26.6 GiB in bf16).

accelerate balances the expert's modules over the devices by size, never splitting a `WanTransformerBlock`, so each
block's output - the hook point - lives whole on one device. The map is computed on a meta-device copy built from
the expert's config (no weights read; any checkpoint layout) and handed to the loader, which passes it to
`WanTransformer3DModel.from_pretrained(device_map=...)` or dispatches a single-file-loaded expert over it.

A device map gives a worker the memory of its GPUs but the speed of one (one block computes at a time). Where the
model's heads and the tokens allow it, a parallel layout (`model.parallel`, `cos_ray.engine.parallel`: Ulysses
sequence parallelism + FSDP2, every GPU computing every step) is the better use of them; device maps stay for
what it cannot split (a K that divides neither the heads nor the tokens) and for specs written before it.
"""

from __future__ import annotations

from pathlib import Path

NO_SPLIT = ["WanTransformerBlock"]


def balanced_device_map(directory: Path, expert: str, devices: list, dtype) -> dict[str, object]:
    """{module name: device} for one expert (subfolder) over `devices` (e.g. [0, 1] or ['cuda:0', 'cuda:1'])."""
    from accelerate import init_empty_weights, infer_auto_device_map
    from accelerate.utils import get_balanced_memory
    from diffusers import WanTransformer3DModel

    from cos_ray.model.checkpoint import expert_config, inspect_checkpoint

    config = expert_config(inspect_checkpoint(directory), expert)  # any layout; no weights read
    with init_empty_weights():
        model = WanTransformer3DModel.from_config(config)
    # Balance over slot indices, then name the real devices: the plan depends on sizes only, so it can be
    # computed (and tested) without the devices being present.
    slots = {index: 1 << 50 for index in range(len(devices))}
    budget = get_balanced_memory(model, max_memory=slots, no_split_module_classes=NO_SPLIT, dtype=dtype)
    plan = infer_auto_device_map(model, max_memory=budget, no_split_module_classes=NO_SPLIT, dtype=dtype)
    return {name: devices[slot] for name, slot in plan.items()}


def sharded_device_maps(directory: Path, experts: tuple[str, ...], devices: list, dtype) -> dict[str, dict]:
    """A balanced map per expert subfolder, for `load_pipeline(device_map=...)`."""
    return {expert: balanced_device_map(directory, expert, devices, dtype) for expert in experts}
