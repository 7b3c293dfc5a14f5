"""Latents of training samples, made with the pipeline's own code so that training sees what inference builds.

The target x0 is the ground-truth video encoded by the VAE (its mode, as `prepare_latents` encodes the condition) and
normalised with the VAE config's `latents_mean` / `latents_std`, as the pipeline de-normalises before decoding. The
conditioning (4 mask channels + 16 image-latent channels) is `WanImageToVideoPipeline.prepare_latents` itself, fed the
first frame through the pipeline's `video_processor`, exactly as `__call__` does.
"""

from __future__ import annotations

import numpy as np


def normalise(pipe, z):
    """`# (batch, z_dim, latent_frames, h, w)` raw VAE latents -> the scale the transformer works in."""
    import torch

    cfg = pipe.vae.config
    mean = torch.tensor(cfg.latents_mean, dtype=z.dtype, device=z.device).view(1, cfg.z_dim, 1, 1, 1)
    std = torch.tensor(cfg.latents_std, dtype=z.dtype, device=z.device).view(1, cfg.z_dim, 1, 1, 1)
    return (z - mean) / std


def encode_targets(pipe, samples, device) -> "torch.Tensor":
    """`# (batch, z_dim, latent_frames, h, w)` normalised latents of the ground-truth videos."""
    import torch
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

    from cos_ray.training.data import videos_tensor

    with torch.no_grad():
        video = videos_tensor(samples).to(device)  # (batch, 3, frames, H, W)
        z = retrieve_latents(pipe.vae.encode(video), sample_mode="argmax")
    return normalise(pipe, z)


def encode_conditions(pipe, samples, device) -> "torch.Tensor":
    """`# (batch, 4 + z_dim, latent_frames, h, w)` the mask and first-frame latent channels, one sample at a time
    (`prepare_latents` encodes one image and repeats it over its batch)."""
    import torch
    from PIL import Image

    out = []
    with torch.no_grad():
        for sample in samples:
            frames, height, width = sample.frames.shape[0], sample.frames.shape[1], sample.frames.shape[2]
            image = pipe.video_processor.preprocess(Image.fromarray(np.ascontiguousarray(sample.frames[0])),
                                                    height=height, width=width).to(device, dtype=torch.float32)
            _, condition = pipe.prepare_latents(image, 1, pipe.vae.config.z_dim, height, width, frames,
                                                torch.float32, device, None, None)
            out.append(condition)  # (1, 4 + z_dim, latent_frames, h, w)
    return torch.cat(out)


def prompt_embeddings(pipe, prompt: str, negative_prompt: str, max_sequence_length: int, device):
    """(`# (1, seq, text_dim)` prompt, same for the negative prompt), by the pipeline's own `encode_prompt`."""
    import torch

    with torch.no_grad():
        positive, negative = pipe.encode_prompt(prompt=prompt, negative_prompt=negative_prompt,
                                                do_classifier_free_guidance=True, num_videos_per_prompt=1,
                                                max_sequence_length=max_sequence_length, device=device)
    return positive, negative
