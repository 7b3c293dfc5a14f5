"""One optimiser update with gradient clipping and an EMA of the weights: what both trainers (flow matching,
`loop.py`, and distillation, `distill.py`) do after each loss."""

from __future__ import annotations


def update_with_ema(model, ema, opt, loss, grad_clip: float, decay: float) -> float:
    """Backpropagate `loss`, clip the gradients to `grad_clip`, step `opt`, move `ema` towards `model` by
    1 - `decay`; returns the gradient norm before clipping."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)
    return grad_norm
