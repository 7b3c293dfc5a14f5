"""Stage 1: fit the AutoencoderKLWan for reconstruction on the task's own videos, then freeze it.

Each step sees `batch` whole videos (the temporal layers) and `image_batch` single frames as 1-frame videos (the
spatial layers learn walls, markers and path at 1/frames of a video's cost). The loss is L1 + L2 on pixels, with pixels coloured in the truth or in the output (the orange path, the markers)
weighted `color_weight` times: they are a small share of a maze frame but all the scorers read; weighting the
output's too makes a spurious orange pixel cost what a missing one does (weighting the truth's alone paints every
corridor orange). Encoding uses the posterior's mode, as the pipeline's `prepare_latents` does. Afterwards the
per-channel mean / std of the latents are written into the VAE config (`latents_mean`, `latents_std`), which the
pipeline uses to (de)normalise, so the transformer sees unit-scale latents.
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.training.config import TrainConfig

VAE_STREAM_OFFSET = 10**9  # stream indices of the VAE stage's samples (the flow stage starts at 0)


def unclamped_decode(vae, z):
    """The VAE's own decode, read before its final clamp to [-1, 1]: a clamped pixel passes no gradient, so a white
    overshoot where a wall or the path belongs would never be corrected (measured: a mean image for 75+ steps).
    The decoder is called once per latent frame; a hook collects each call's output."""
    import torch

    chunks = []
    hook = vae.decoder.register_forward_hook(lambda module, args, output: chunks.append(output))
    try:
        vae.decode(z)
    finally:
        hook.remove()
    return torch.cat(chunks, dim=2)  # (batch, 3, frames, H, W)


def reconstruction_loss(vae, video, color_weight: float):
    """`# (batch, 3, frames, H, W)` in [-1, 1] -> weighted L1 + L2 of the VAE's round trip."""
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

    z = retrieve_latents(vae.encode(video), sample_mode="argmax")
    out = unclamped_decode(vae, z)  # (batch, 3, frames, H, W)
    def colourful(x):  # (batch, 1, frames, H, W): saturated pixels
        return (x.amax(dim=1, keepdim=True) - x.amin(dim=1, keepdim=True)) > 0.6

    # Coloured in the truth OR in the output: a missing path pixel and a spurious one cost the same.
    weight = 1.0 + (color_weight - 1.0) * (colourful(video) | colourful(out.detach())).float()
    err = out - video
    return ((err.abs() + err ** 2) * weight).mean()


def fit_vae(config: TrainConfig, vae, run_dir: Path, device, progress: bool = True):
    """Train `vae` in place for config.vae.steps (resuming from run_dir/vae_state.pt); returns it in eval mode."""
    import torch
    from tqdm.auto import tqdm

    from cos_ray.training.data import draw_samples, videos_tensor
    from cos_ray.training.state import append_log, load, save_atomic

    cfg = config.vae
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    state_path = run_dir / "vae_state.pt"
    step = 0
    if state_path.is_file():
        state = load(state_path)
        vae.load_state_dict(state["vae"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
    bar = tqdm(total=cfg.steps, initial=step, desc="vae", disable=not progress, mininterval=5)
    while step < cfg.steps:
        lr = cfg.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * (1 - step / cfg.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        first = VAE_STREAM_OFFSET + step * (cfg.batch + cfg.image_batch)
        samples = draw_samples(config.data, config.seed, range(first, first + cfg.batch + cfg.image_batch))
        video = videos_tensor(samples[:cfg.batch]).to(device)  # (batch, 3, frames, H, W)
        loss = reconstruction_loss(vae, video, cfg.color_weight)
        if cfg.image_batch:
            frames = videos_tensor(samples[cfg.batch:])  # (image_batch, 3, frames, H, W)
            pick = torch.arange(cfg.image_batch) % frames.shape[2]  # every stage of the drawn path
            images = frames[torch.arange(cfg.image_batch), :, pick].unsqueeze(2).to(device)  # (image_batch, 3, 1, H, W)
            loss = loss + reconstruction_loss(vae, images, cfg.color_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        append_log(run_dir / "vae_log.jsonl", {"step": step, "loss": loss.item(), "lr": lr})
        if step % 25 == 0 or step == cfg.steps:
            save_atomic({"vae": vae.state_dict(), "optimizer": opt.state_dict(), "step": step}, state_path)
    bar.close()
    return vae.eval().requires_grad_(False)


def set_latent_statistics(config: TrainConfig, vae, device) -> None:
    """Per-channel mean / std of the mode latents of `stat_samples` training videos, into the VAE config."""
    import torch
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

    from cos_ray.training.data import draw_samples, videos_tensor

    zs = []
    with torch.no_grad():
        for start in range(0, config.vae.stat_samples, 32):
            indices = range(2 * VAE_STREAM_OFFSET + start, 2 * VAE_STREAM_OFFSET + min(config.vae.stat_samples, start + 32))
            video = videos_tensor(draw_samples(config.data, config.seed, indices)).to(device)
            zs.append(retrieve_latents(vae.encode(video), sample_mode="argmax").cpu())
    z = torch.cat(zs)  # (samples, z_dim, latent_frames, h, w)
    mean = z.mean(dim=(0, 2, 3, 4))
    std = z.std(dim=(0, 2, 3, 4)).clamp_min(1e-4)
    vae.register_to_config(latents_mean=[float(v) for v in mean], latents_std=[float(v) for v in std])
