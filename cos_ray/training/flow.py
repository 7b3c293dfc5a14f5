"""The flow-matching objective of Wan: x_t = (1 - sigma) x0 + sigma eps, target v = eps - x0 at timestep 1000 sigma.

sigma is drawn as the sampler spaces it: u ~ U(0, 1) shifted by sigma = shift u / (1 + (shift - 1) u), so training
spends its samples where the sampler's steps lie. x0_hat = x_t - sigma v is the Chain-of-Steps estimate.
"""

from __future__ import annotations


def shifted_sigmas(u, shift: float):
    return shift * u / (1 + (shift - 1) * u)


def step_generator(seed: int, step: int):
    """A CPU generator decided by (seed, step) alone: a resumed run draws the same noise as an uninterrupted one."""
    import numpy as np
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


def flow_batch(targets, conditions, positive, negative, *, generator, shift: float, prompt_dropout: float):
    """Noised inputs for one step: (hidden_states `# (batch, 2 z + 4, f, h, w)`, timestep `# (batch,)`,
    text `# (batch, seq, text_dim)`, velocity target `# (batch, z, f, h, w)`)."""
    import torch

    batch = targets.shape[0]
    u = torch.rand(batch, generator=generator)
    noise = torch.randn(targets.shape, generator=generator)
    drop = torch.rand(batch, generator=generator) < prompt_dropout
    device = targets.device
    sigma = shifted_sigmas(u, shift).to(device)
    noise = noise.to(device)
    s = sigma.view(batch, 1, 1, 1, 1)
    noisy = (1 - s) * targets + s * noise  # (batch, z, f, h, w)
    text = torch.where(drop.to(device).view(batch, 1, 1), negative.expand(batch, -1, -1), positive.expand(batch, -1, -1))
    hidden = torch.cat([noisy, conditions], dim=1)  # (batch, 2 z + 4, f, h, w)
    return hidden, sigma * 1000.0, text, noise - targets


def flow_loss(transformer, hidden, timestep, text, velocity):
    import torch.nn.functional as F

    predicted = transformer(hidden_states=hidden, timestep=timestep, encoder_hidden_states=text, return_dict=False)[0]
    return F.mse_loss(predicted.float(), velocity.float())
