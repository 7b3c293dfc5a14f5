"""The tiny reasoner's untrained pipeline: the `tiny` preset's tokenizer, frozen UMT5 and scheduler, a VAE and a
40-block A14B-layout transformer sized by the config. Same classes as Wan2.2-I2V-A14B, tiny widths."""

from __future__ import annotations

from cos_ray.training.config import TrainConfig


def build_vae(config: TrainConfig):
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(config.seed)
    vae = config.vae
    return AutoencoderKLWan(base_dim=vae.base_dim, z_dim=vae.z_dim, dim_mult=list(vae.dim_mult), num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def build_transformer(config: TrainConfig, text_dim: int, z_dim: int):
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(config.seed + 1)
    t = config.transformer
    return WanTransformer3DModel(
        patch_size=[1, 2, 2], num_attention_heads=t.num_attention_heads, attention_head_dim=t.attention_head_dim,
        in_channels=2 * z_dim + 4, out_channels=z_dim, text_dim=text_dim, freq_dim=t.freq_dim, ffn_dim=t.ffn_dim,
        num_layers=t.num_layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )


def assemble_pipeline(config: TrainConfig, vae, transformer, transformer_2=None):
    """A `WanImageToVideoPipeline` in the A14B layout; `transformer_2` defaults to a copy of `transformer`."""
    import copy

    from diffusers import WanImageToVideoPipeline

    from cos_ray.model.tiny import build_tiny_pipeline

    base = build_tiny_pipeline("tiny")  # tokenizer, frozen UMT5 and scheduler of the tiny preset
    pipe = WanImageToVideoPipeline(
        tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=vae, scheduler=base.scheduler,
        transformer=transformer, transformer_2=transformer_2 if transformer_2 is not None else copy.deepcopy(transformer),
        image_encoder=None, image_processor=None, boundary_ratio=config.flow.boundary, expand_timesteps=False,
    )
    pipe.text_encoder.eval().requires_grad_(False)
    return pipe


def text_dim_of_tiny() -> int:
    from cos_ray.model.tiny import build_tiny_pipeline

    return build_tiny_pipeline("tiny").text_encoder.config.d_model
