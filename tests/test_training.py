"""The tiny reasoner's trainer on a tiny config: loss falls, a resumed run equals an uninterrupted one, runs are
deterministic per seed, the conditioning is the pipeline's own, and the export loads through the loader."""

from __future__ import annotations

import json

import pytest

from cos_ray.errors import UsageError
from cos_ray.training.config import config_from_dict, load_config

TINY = {
    "seed": 0,
    "data": {"cells": 3, "size": 64, "frames": 5},
    "vae": {"base_dim": 4, "steps": 2, "batch": 1, "image_batch": 2, "stat_samples": 8},
    "transformer": {"num_layers": 30, "num_attention_heads": 2, "attention_head_dim": 8, "ffn_dim": 16, "freq_dim": 16},
    "flow": {"steps": 6, "batch": 4, "buffer": 8, "refresh": 2, "checkpoint_every": 3, "log_every": 1, "warmup": 1,
             "lr": 0.003},
}


def _config(**flow):
    values = json.loads(json.dumps(TINY))
    values["flow"].update(flow)
    return config_from_dict(values)


def _train(config, run_dir, max_steps=None, export=False):
    from cos_ray.training.loop import train

    return train(config, run_dir, progress=False, max_steps=max_steps, export=export, log=lambda *_: None)


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "flow_log.jsonl").read_text().splitlines()]


def test_shipped_config_is_valid():
    config = load_config("training/configs/tiny-reasoner.yaml")
    assert config.transformer.num_layers == 40 and config.data.cells == 4 and config.data.size == 64


@pytest.mark.parametrize("values, field", [
    ({"flow": {"stepz": 3}}, "stepz"),
    ({"flow": {"batch": 0}}, "flow.batch"),
    ({"data": {"frames": 8}}, "data.frames"),
    ({"transformer": {"num_layers": 12}}, "transformer.num_layers"),
    ({"vae": {"dim_mult": [1, 2]}}, "vae.dim_mult"),
])
def test_bad_config_names_the_field(values, field):
    with pytest.raises(UsageError, match=field) as err:
        config_from_dict(values)
    assert err.value.exit_code == 2


def test_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such training config"):
        load_config(tmp_path / "nope.yaml")


def test_loss_decreases_on_a_fixed_buffer(tmp_path):
    """refresh 0: the same 8 encoded samples all along; 20 steps at a high rate must fit them better."""
    _train(_config(steps=20, refresh=0, checkpoint_every=100), tmp_path / "run")
    losses = _losses(tmp_path / "run")
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses


def test_resume_equals_uninterrupted_and_seed_decides(tmp_path):
    import torch

    config = _config()
    _, straight, straight_ema, steps = _train(config, tmp_path / "a")
    _train(config, tmp_path / "b", max_steps=3)  # a checkpoint at step 3, then "killed"
    _, resumed, resumed_ema, resumed_steps = _train(config, tmp_path / "b")
    assert steps == resumed_steps == 6
    for a, b in [(straight, resumed), (straight_ema, resumed_ema)]:
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), name
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    other = config_from_dict({**json.loads(json.dumps(TINY)), "seed": 1})
    _, different, _, _ = _train(other, tmp_path / "c", max_steps=1)
    assert not torch.equal(next(iter(different.state_dict().values())), next(iter(straight.state_dict().values())))


def test_resume_with_another_config_is_refused(tmp_path):
    _train(_config(steps=1), tmp_path / "run")
    with pytest.raises(UsageError, match="another config"):
        _train(_config(steps=2, lr=0.001), tmp_path / "run")


def test_conditioning_is_what_the_pipeline_feeds_its_transformer(tmp_path):
    """Capture the transformer's input inside `pipe(...)` and compare its mask + image channels with training's."""
    import numpy as np
    import torch
    from PIL import Image

    from cos_ray.training.architecture import assemble_pipeline, build_transformer, build_vae
    from cos_ray.training.data import draw_samples
    from cos_ray.training.encode import encode_conditions
    from cos_ray.training.vae_fit import set_latent_statistics

    config = _config()
    vae = build_vae(config).eval()
    set_latent_statistics(config, vae, "cpu")
    pipe = assemble_pipeline(config, vae, build_transformer(config, text_dim=32, z_dim=16).eval())
    sample = draw_samples(config.data, 0, [7])[0]
    seen = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["hidden_states"].clone()), with_kwargs=True)
    try:
        pipe(image=Image.fromarray(sample.frames[0]), prompt="maze", negative_prompt="", height=64, width=64,
             num_frames=5, num_inference_steps=2, guidance_scale=1.0, max_sequence_length=8, output_type="latent",
             generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    expected = encode_conditions(pipe, [sample], "cpu")  # (1, 20, latent_frames, h, w)
    assert seen and seen[0].shape[1] == 36
    torch.testing.assert_close(seen[0][:, 16:], expected, rtol=0, atol=0)
    assert np.array_equal(expected[0, :4, 0].numpy(), np.ones((4, 8, 8), dtype=np.float32))  # first frame kept
    assert not expected[0, :4, 1:].any()  # later frames masked out


def test_flow_targets_recover_x0():
    """x0_hat = x_t - sigma * v with the training target v gives back x0 (Wan's flow convention)."""
    import torch

    from cos_ray.training.flow import flow_batch, step_generator

    x0 = torch.randn(3, 16, 2, 8, 8)
    cond = torch.randn(3, 20, 2, 8, 8)
    text = torch.zeros(1, 4, 32)
    hidden, timestep, _, velocity = flow_batch(x0, cond, text, text, generator=step_generator(0, 0), shift=5.0,
                                               prompt_dropout=0.1)
    sigma = (timestep / 1000).view(3, 1, 1, 1, 1)
    torch.testing.assert_close(hidden[:, :16] - sigma * velocity, x0, rtol=1e-5, atol=1e-5)
    assert torch.equal(hidden[:, 16:], cond)


def test_export_loads_through_the_loader_and_samples(tmp_path):
    import numpy as np

    from cos_ray.engine.call import sample
    from cos_ray.model.loader import load_pipeline
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import read_task_folder
    from cos_ray.training.evaluate import held_out_tasks

    config = _config(steps=1)
    _train(config, tmp_path / "run", export=True)
    model = load_pipeline(tmp_path / "run" / "export", device="cpu")
    assert model.layout.experts == ("transformer", "transformer_2")
    folder = held_out_tasks(tmp_path / "tasks", 1, 1, config.data)[0]
    settings = default_settings("tiny-a14b").replace(steps=2, frames=5)
    video = sample(model, read_task_folder(folder), settings, [0])[0]
    assert video.shape == (5, 64, 64, 3) and np.isfinite(video).all()


def test_tasks_generate_for_model_uses_the_training_distribution(tmp_path):
    """`cos-ray tasks generate --for-model DIR` writes what `tasks generate maze` with the trained parameters writes."""
    from click.testing import CliRunner

    from cos_ray.cli import main
    from cos_ray.training.distribution import write_distribution

    config = _config()
    write_distribution(config, tmp_path)
    runner = CliRunner()
    got = runner.invoke(main, ["tasks", "generate", "--for-model", str(tmp_path), "--n", "2", "--seed", "3",
                               "--out", str(tmp_path / "a")])
    assert got.exit_code == 0, got.output
    ref = runner.invoke(main, ["tasks", "generate", "maze", "--cells", "3", "--size", "64", "--frames", "5", "--n", "2",
                               "--seed", "3", "--out", str(tmp_path / "b")])
    assert ref.exit_code == 0, ref.output
    for i in ("00000", "00001"):
        a = tmp_path / "a" / "In-Domain_50" / "maze" / i
        b = tmp_path / "b" / "In-Domain_50" / "maze" / i
        assert (a / "first_frame.png").read_bytes() == (b / "first_frame.png").read_bytes()
        assert (a / "task.json").read_text() == (b / "task.json").read_text()
    bad = runner.invoke(main, ["tasks", "generate", "--for-model", str(tmp_path), "--cells", "5", "--n", "1",
                               "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "trained on maze" in bad.output and not (tmp_path / "c").exists()
    random = runner.invoke(main, ["tasks", "generate", "--for-model", "tiny", "--n", "1", "--out", str(tmp_path / "d")])
    assert random.exit_code == 2 and "random weights" in random.output


def test_unclamped_decode_is_the_vae_decode_before_its_clamp():
    import torch

    from cos_ray.training.architecture import build_vae
    from cos_ray.training.vae_fit import unclamped_decode

    vae = build_vae(_config()).eval()
    z = torch.randn(2, 16, 2, 8, 8) * 3  # (batch, z_dim, latent_frames, h, w)
    with torch.no_grad():
        raw = unclamped_decode(vae, z)  # (batch, 3, frames, H, W)
        reference = vae.decode(z).sample
    assert raw.shape == reference.shape == (2, 3, 5, 64, 64)
    torch.testing.assert_close(raw.clamp(-1, 1), reference, rtol=0, atol=0)
