"""CFG-parallel: the cond and uncond passes of classifier-free guidance on two rank sets, at the same time.

diffusers' `WanImageToVideoPipeline` calls the running expert twice per step, one call after the other: first under
`cache_context("cond")` (the prompt), then under `cache_context("uncond")` (the negative prompt), and then forms
`uncond + scale * (cond - uncond)`. The least invasive place to split is that call: a `CfgSplit` hook on each expert,
registered once when the layout is applied and so inside every per-run hook (the clock, probes, interventions still see
both calls on every rank and keep their step and branch), makes each rank compute only its own branch:

    step s           cond call                                   uncond call
    cond set (0)     runs the forward; keeps its output          skips the forward; exchanges: returns the uncond output
    uncond set (1)   skips the forward; returns a buffer         runs the forward; exchanges: fills the buffer with cond

The exchange is one all-gather over the mesh's `cfg` axis (this rank and the rank of the other set that holds the
same seed and the same sequence shard; gloo on CPU, NCCL on GPUs) of the expert's gathered output `# (batch,
channels, frames, h, w)`. The buffer a skipped cond call returns is the very tensor the pipeline keeps as its cond
prediction until the uncond call returns, so it is filled in place before the pipeline reads it: every rank then forms
the same guided prediction, with the arithmetic of the one-process run. Both sets compute at once: the cond set in its
cond call while the uncond set, whose cond call returned at once, computes in its uncond call.

Block hooks therefore see one branch per rank: the cond set's blocks only cond passes, the uncond set's only uncond
passes; a seed-axis merge runs among ranks of the same branch (and shard), as the in-process merge merges each branch
over the seeds. Probes that record the cond branch (energy, CKA states) record it on the cond set, whose first rank's
results a worker group keeps. The pipeline makes the uncond call only with guidance > 1: `check_guidance` refuses a
run without it (the uncond set would keep an unfilled buffer).
"""

from __future__ import annotations

from diffusers.hooks.hooks import BaseState, ModelHook, StateManager

from cos_ray.errors import UsageError

BRANCHES = ("cond", "uncond")  # the branch of each rank set, by its coordinate on the cfg axis
CFG_SPLIT = "cos_ray.parallel.cfg"  # the hook's name on each expert (kept for the model's life, as the shards)


class _NoState(BaseState):
    def reset(self, *args, **kwargs) -> None:
        pass


class CfgSplit(ModelHook):
    """On one expert: run this rank's branch only and exchange the two branches' outputs over `group` (the cfg axis:
    2 ranks, the cond set's first). Stateful so that the pipeline's `cache_context` names the branch of each call."""

    _is_stateful = True

    def __init__(self, group, branch: str):
        super().__init__()
        if branch not in BRANCHES:
            raise UsageError(f"cfg branch: expected one of {', '.join(BRANCHES)}, got {branch!r}")
        self.group, self.branch = group, branch
        self.context = StateManager(_NoState)
        self.kept = None  # the cond call's output: computed (cond set) or a buffer to fill (uncond set)

    def new_forward(self, module, *args, **kwargs):
        call = self.context._context.name if self.context._context is not None else "cond"
        if call not in BRANCHES:
            raise UsageError(f"CFG-parallel: a denoiser call named {call!r}; expected the pipeline's cond / uncond")
        if call == "cond":
            if self.branch == "cond":
                output = self.fn_ref.original_forward(*args, **kwargs)
                self.kept = _sample(output)
                return output
            self.kept = self._buffer(module, *args, **kwargs)
            return _wrap(self.kept, kwargs)
        if self.kept is None:
            raise UsageError("CFG-parallel: an uncond call came without its cond call (the pipeline calls cond first)")
        if self.branch == "uncond":
            output = self.fn_ref.original_forward(*args, **kwargs)
            cond, _ = self._exchange(_sample(output))
            self.kept.copy_(cond)  # the tensor the pipeline holds as its cond prediction
            self.kept = None
            return output
        _, uncond = self._exchange(self.kept)
        self.kept = None
        return _wrap(uncond, kwargs)

    def _exchange(self, local):
        """(cond, uncond): this rank's output and its partner's, in cfg-axis order."""
        import torch
        import torch.distributed as dist

        parts = [torch.empty_like(local) for _ in BRANCHES]
        dist.all_gather(parts, local.contiguous(), group=self.group)
        return parts[0], parts[1]

    @staticmethod
    def _buffer(module, *args, **kwargs):
        """An unfilled `# (batch, out_channels, frames, h, w)` tensor shaped as the skipped forward's output."""
        import torch

        hidden = kwargs.get("hidden_states", args[0] if args else None)  # (batch, in_channels, frames, h, w)
        shape = (hidden.shape[0], module.config.out_channels, *hidden.shape[2:])
        return torch.empty(shape, dtype=hidden.dtype, device=hidden.device)

    def reset_state(self, module):
        self.kept = None
        return module


def _sample(output):
    """The tensor of a transformer's output (`return_dict=False`: a tuple; else a `Transformer2DModelOutput`)."""
    return output[0] if isinstance(output, tuple) else output.sample


def _wrap(sample, kwargs):
    """`sample` as the transformer returns it for these call arguments."""
    if not kwargs.get("return_dict", True):
        return (sample,)
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    return Transformer2DModelOutput(sample=sample)


def split_branches(module, group, branch: str) -> None:
    """Install the split on one expert (once per loaded model, after its sequence parallelism)."""
    from diffusers.hooks.hooks import HookRegistry

    HookRegistry.check_if_exists_or_initialize(module).register_hook(CfgSplit(group, branch), CFG_SPLIT)


def is_split(module) -> bool:
    registry = getattr(module, "_diffusers_hook", None)
    return registry is not None and registry.get_hook(CFG_SPLIT) is not None


def check_guidance(experts, guidance: float, field: str = "model.parallel.cfg") -> None:
    """Refuse a run whose guidance makes no uncond pass on a model whose experts are split by branch."""
    from cos_ray.engine.parallel_layout import ParallelLayout

    if any(is_split(module) for module in experts):
        problem = ParallelLayout(cfg=True).guidance_problem(guidance)
        if problem:
            raise UsageError(f"{field}: {problem}")
