"""Apply a parallel layout to a loaded pipeline's transformers: Ulysses sequence parallelism, FSDP2 weight shards and
CFG-parallel branches.

A worker's GPUs compute together. The ranks of one unit form a torch `DeviceMesh` with named axes
`(seed, cfg, ring, ulysses)`: the ranks along `ulysses` hold one replica of the model and split each forward's tokens
between them (diffusers' own context parallelism: `WanTransformer3DModel._cp_plan` splits the sequence before block 0
and gathers it after `proj_out`; attention runs Ulysses all-to-alls); with `fsdp` the same ranks also shard the weights
(torch's `fully_shard` on every block and on the model: parameters are all-gathered for a block's forward and freed
after it). With `cfg` the replica is two such sets along `cfg`: the first runs the cond pass of classifier-free
guidance, the second the uncond pass, at the same time, and they exchange the outputs over the `cfg` axis
(`cos_ray.engine.cfg_parallel`). The ranks along `seed` hold different seeds of an ensemble: its merge is an
all-reduce over that axis among ranks that hold the same branch and sequence shard (`seed_group`). `ring` stays 1:
ring attention needs an attention backend that returns the log-sum-exp, which only CUDA backends do; diffusers'
`ContextParallelConfig` asks for the axis. Rank r of the world is (seed, cfg, ulysses) = (r // (C*K), r // K % C,
r % K): a replica's ranks are consecutive, its cond set first.

Nothing here re-implements what diffusers or torch ship; this module only chooses the mesh and calls them. What it
adds: the layout's validation (heads and tokens divisible by K, with messages that say what to change), and the CPU
path (diffusers computes `rank % torch.accelerator.device_count()`, which is 0 without an accelerator: a count of 1 is
supplied while the parallelism is enabled, so the same code runs on gloo in tests).

Block hooks (ensemble merges, energy maps, swaps) see sequence shards `# (batch, seq / K, dim)`; everything outside
the transformer (latents, scheduler, x̂0, VAE) sees the gathered tensors, the same on every rank of a replica.
"""

from __future__ import annotations

from contextlib import contextmanager
from diffusers.hooks.hooks import HookRegistry, ModelHook

from cos_ray.engine.parallel_layout import ParallelLayout, layout_problems
from cos_ray.errors import UsageError

__all__ = ["ParallelLayout", "apply_layout", "cfg_rank", "device_mesh", "gather_sequence", "layout_problems",
           "local_tokens", "seed_group", "seed_rank"]

AXES = ("seed", "cfg", "ring", "ulysses")
TOKEN_CHECK = "cos_ray.parallel.tokens"


def device_mesh(layout: ParallelLayout, device_type: str = "cpu"):
    """The mesh `(seed, cfg=1|2, ring=1, ulysses=K)` over the default process group's ranks (all of them)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    if not dist.is_initialized():
        raise UsageError("a parallel layout needs a process group: join one before building the mesh")
    world = dist.get_world_size()
    per_replica = layout.ranks_per_replica
    if world % per_replica:
        field = f"{layout.field}.cfg" if layout.cfg else f"{layout.field}.ulysses"
        raise UsageError(f"{field}: {layout.describe()} needs {per_replica} ranks per replica "
                         f"({layout.cfg_degree} CFG set(s) x {layout.ulysses}), which does not divide the {world} "
                         f"ranks of the group; use a multiple of {per_replica} ranks (GPUs)")
    return init_device_mesh(device_type, (world // per_replica, layout.cfg_degree, 1, layout.ulysses),
                            mesh_dim_names=AXES)


def seed_group(mesh):
    """The process group of this rank's seed axis: the ranks holding the same branch and sequence shard of other
    seeds."""
    return mesh["seed"].get_group()


def cfg_rank(mesh) -> int:
    """This rank's CFG set: 0 runs the cond pass, 1 the uncond pass (0 when the layout has no cfg axis)."""
    return mesh["cfg"].get_local_rank()


def seed_groups(mesh) -> dict:
    """{n: the seed-axis group of this rank's shard over the first n replicas}, for n = 2..replicas: a unit whose
    seeds fill only some replicas merges among those. Built once, collectively (every rank calls `new_group` for
    every group, in the same order); n = all replicas is the mesh's own seed axis."""
    import torch.distributed as dist

    replicas, ranks_per_replica = mesh["seed"].size(), mesh["cfg"].size() * mesh["ulysses"].size()
    shard = mesh["cfg"].get_local_rank() * mesh["ulysses"].size() + mesh["ulysses"].get_local_rank()
    found = {}
    for count in range(2, replicas):
        for position in range(ranks_per_replica):
            group = dist.new_group([replica * ranks_per_replica + position for replica in range(count)])
            if position == shard:
                found[count] = group
    if replicas > 1:
        found[replicas] = seed_group(mesh)
    return found


def seed_rank(mesh) -> int:
    """This rank's replica: its coordinate on the seed axis."""
    return mesh["seed"].get_local_rank()


def apply_layout(experts: dict, layout: ParallelLayout, mesh) -> None:
    """Shard each transformer of `experts` ({'high': module, 'low': module}) over the mesh's `ulysses` axis, in place,
    and with `cfg` split its CFG branches over the `cfg` axis.

    FSDP2 first (every `WanTransformerBlock`, then the model: the blocks' weights are all-gathered one block at a
    time), then diffusers' context parallelism (hooks from the model's `_cp_plan`), then the branch split (outside
    them: a rank skips the whole forward of the other branch). Call it once per loaded model on every rank at the
    same time: building the sub-meshes is a collective.
    """
    from cos_ray.engine.cfg_parallel import BRANCHES, is_split, split_branches

    if not layout.active:
        return
    for name, module in experts.items():
        problems = layout_problems(layout, module.config.num_attention_heads)
        if problems:
            raise UsageError(f"{layout.field}.ulysses ({name} expert): " + "; ".join(problems))
        if getattr(module, "_parallel_config", None) is not None or is_split(module):
            raise UsageError(f"the {name} expert is already parallel: a layout is applied once per loaded model")
    branch = BRANCHES[cfg_rank(mesh)]
    for module in experts.values():
        if layout.fsdp:
            shard_weights(module, mesh["ulysses"])
        if layout.ulysses > 1:
            split_sequence(module, layout, mesh)
        if layout.cfg:
            split_branches(module, mesh["cfg"].get_group(), branch)


def shard_weights(module, mesh) -> None:
    """torch FSDP2: each block's parameters (and the model's own) become shards over `mesh` (1-D)."""
    from torch.distributed.fsdp import fully_shard

    for block in module.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(module, mesh=mesh)


def split_sequence(module, layout: ParallelLayout, mesh) -> None:
    """diffusers' Ulysses context parallelism over the mesh, plus a clear refusal of a token count K does not divide."""
    from diffusers import ContextParallelConfig

    with _accelerator_count_on_cpu():
        module.enable_parallelism(config=ContextParallelConfig(ulysses_degree=layout.ulysses, mesh=mesh))
    patch = tuple(module.config.patch_size)
    HookRegistry.check_if_exists_or_initialize(module).register_hook(TokenCheck(layout, patch), TOKEN_CHECK)


class TokenCheck(ModelHook):
    """Refuses a forward whose token count the Ulysses degree does not divide (diffusers would only assert)."""

    def __init__(self, layout: ParallelLayout, patch: tuple):
        super().__init__()
        self.layout, self.patch = layout, patch

    def pre_forward(self, module, *args, **kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)  # (batch, channels, frames, h, w)
        tokens = 1
        for size, patch in zip(hidden.shape[2:], self.patch):
            tokens *= size // patch
        problems = layout_problems(self.layout, module.config.num_attention_heads, tokens)
        if problems:
            raise UsageError(f"{self.layout.field}.ulysses: " + "; ".join(problems))
        return args, kwargs


@contextmanager
def _accelerator_count_on_cpu():
    """diffusers picks its device as `rank % torch.accelerator.device_count()`: 0 on a CPU-only host (a division by
    zero). Without an accelerator, report 1 (the CPU) while the parallelism is enabled; with one, change nothing."""
    import torch

    if torch.accelerator.device_count() > 0:
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda *args, **kwargs: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original


def sequence_mesh(expert):
    """The 1-D ulysses mesh a transformer's sequence is split over, or None: read from diffusers' own record of the
    parallelism on the model (`_parallel_config`), so hooks need no other state."""
    config = getattr(expert, "_parallel_config", None)
    context = getattr(config, "context_parallel_config", None)
    mesh = getattr(context, "_ulysses_mesh", None)
    return mesh if mesh is not None and mesh.size() > 1 else None


def gather_sequence(local, expert, dim: int = 1):
    """`# (batch, seq / K, ...) -> (batch, seq, ...)`: a block-level tensor's shards gathered in rank order (probes
    that need whole maps or whole token matrices: energy, CKA); the tensor itself when `expert` is not split."""
    import torch
    import torch.distributed as dist

    mesh = sequence_mesh(expert)
    if mesh is None:
        return local
    parts = [torch.empty_like(local) for _ in range(mesh.size())]
    dist.all_gather(parts, local.contiguous(), group=mesh.get_group())
    return torch.cat(parts, dim=dim)


def local_tokens(full, expert, dim: int = 0):
    """This rank's contiguous slice of a whole-sequence tensor (e.g. a token mask `# (seq,)`), as diffusers splits
    the sequence before block 0 (`EquipartitionSharder`); the tensor itself when `expert` is not split."""
    import torch.distributed as dist

    mesh = sequence_mesh(expert)
    if mesh is None:
        return full
    return full.chunk(mesh.size(), dim=dim)[dist.get_rank(mesh.get_group())]
