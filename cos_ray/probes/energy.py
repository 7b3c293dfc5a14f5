"""Layer activation energy (Fig. 5): the per-token L2 norm over channels of block outputs, cond branch only.

Each chosen block's output `# (batch, seq, dim)` becomes `# (batch, frames, h, w)` on the patch grid; it is stored
downsampled (longest side at most `max_side`) per step and layer, with its mean per frame, and - where the task has a
`foreground_mask.png` - the foreground / background energy ratio. Early layers light up the background and global
layout; from about layer 9 the foreground objects.
"""

from __future__ import annotations

from diffusers.hooks.hooks import ModelHook

from cos_ray.engine.hook_points import block_module, resolve_hook_points
from cos_ray.engine.parallel import gather_sequence
from cos_ray.probes.configs import EnergyConfig


class _EnergyHook(ModelHook):
    def __init__(self, probe, point, steps, expert):
        super().__init__()
        self.probe, self.point, self.steps, self.expert = probe, point, steps, expert

    def post_forward(self, module, output):  # output: (batch, seq, dim); (batch, seq / K, dim) on Ulysses-K ranks
        clock = self.probe.clock
        if clock.branch == "cond" and clock.step in self.steps:
            self.probe.record(self.point, clock.step, gather_sequence(output, self.expert))  # (batch, seq, dim)
        return output


class EnergyProbe:
    """An intervention (`apply(run)`) collecting `rows`: one per member, step and layer."""

    def __init__(self, config: EnergyConfig, foreground_mask=None):
        """foreground_mask: `# (H, W)` array, nonzero on the task's objects, or None."""
        self.config = config
        self.foreground_mask = foreground_mask
        self.rows: list[dict] = []
        self.clock = None
        self._mask_on_grid = None

    def __call__(self, run) -> None:
        self.clock, self.seeds, self.offset = run.clock, run.seeds, run.seed_group.offset
        num_layers = min(len(expert.blocks) for expert in run.experts.values())
        config = self.config.resolved(num_layers, run.clock.total_steps)
        steps = frozenset(config.steps)
        for point in resolve_hook_points(run.pipe, config.hook_points()):
            run.hooks.add(block_module(run.pipe, point), _EnergyHook(self, point, steps, run.experts[point.expert]), f"energy.{point.name}")

    def record(self, point, step: int, output) -> None:
        import torch.nn.functional as F

        frames, height, width = self.clock.grid
        energy = output.float().norm(dim=-1).reshape(-1, frames, height, width)  # (batch, frames, h, w)
        scale = min(1.0, self.config.max_side / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = F.adaptive_avg_pool2d(energy, size) if scale < 1.0 else energy  # (batch, frames, h', w')
        ratio = self._foreground_ratio(energy)
        for index, seed in enumerate(self.seeds):
            self.rows.append({
                "member": self.offset + index, "seed": seed, "step": step, "expert": point.expert,
                "layer": point.layer, "grid": [frames, height, width],
                "energy_mean": float(energy[index].mean()),
                "frame_means": energy[index].mean(dim=(1, 2)).tolist(),
                "map": small[index].cpu().numpy(),  # (frames, h', w')
                "fg_bg_ratio": None if ratio is None else float(ratio[index]),
            })

    def _foreground_ratio(self, energy):
        """Mean energy on the mask's tokens ÷ mean energy elsewhere, `# (batch,)`; the mask is the same every frame."""
        if self.foreground_mask is None:
            return None
        import torch
        import torch.nn.functional as F

        if self._mask_on_grid is None:
            mask = torch.as_tensor(self.foreground_mask, dtype=torch.float32)[None, None]  # (1, 1, H, W)
            self._mask_on_grid = F.interpolate(mask, size=energy.shape[-2:], mode="area")[0, 0] > 0.5  # (h, w)
        mask = self._mask_on_grid.to(energy.device)
        if mask.all() or not mask.any():
            return None
        return energy[:, :, mask].mean(dim=(1, 2)) / energy[:, :, ~mask].mean(dim=(1, 2)).clamp_min(1e-12)
