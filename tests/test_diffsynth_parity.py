"""Cross-check against the authors' stack: DiffSynth-Studio's WanVideoPipeline and cos-ray's run on the same tiny
weights (the tiny preset renamed to Wan's own keys by tests/fixtures/wan_original.py) give the same video and the
same x̂0 at every step, for the same seed on the same sample.

Opt-in: DiffSynth (PyPI `diffsynth`) declares torchvision, modelscope, pandas... and would pull a CUDA torch; it is
installed by hand without dependencies into a folder named by COS_RAY_DIFFSYNTH (see docs/vbvr-bench.md):

    pip install --no-deps --target /tmp/dsenv diffsynth==2.1.12 einops
    COS_RAY_DIFFSYNTH=/tmp/dsenv python -m pytest -q tests/test_diffsynth_parity.py

torchvision (imported by DiffSynth's package init for its training datasets and CLIP image encoder, neither used by
the A14B path) has no CPU build for torch 2.13 here: the DiffSynth side runs in its own process with an empty
`torchvision` module. DiffSynth's own classes are assembled at the tiny widths: WanModel, VideoVAE_ (in
WanVideoVAE, keeping DiffSynth's latent mean/std), WanTextEncoder (relative-position max distance set to the tiny
UMT5's 16 - DiffSynth hard-codes umt5-xxl's 128), HuggingfaceTokenizer on the preset's tokenizer, its
FlowMatchScheduler and its pipeline loop (CFG, expert switch, Euler step). Untiled VAE: tiling changes nothing at
32x32 but the blend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

DIFFSYNTH = os.environ.get("COS_RAY_DIFFSYNTH")
pytestmark = pytest.mark.skipif(not DIFFSYNTH, reason="opt-in: set COS_RAY_DIFFSYNTH to a folder holding diffsynth")

STEPS, FRAMES, SIZE, SEED = 4, 5, 32, 1
PROMPT = "draw the path from the green start to the red goal"

DIFFSYNTH_SIDE = r'''
import json, sys
from pathlib import Path

work, site = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, site)
import importlib.machinery, types
from transformers.utils import import_utils
assert not import_utils.is_torchvision_available()  # decided now, before the stub below exists
for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.models",
             "torchvision.models.inception"):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    module.__path__ = []
    module.__getattr__ = lambda attr: (_ for _ in ()).throw(AttributeError(attr)) if attr.startswith("__") \
        else type(attr, (), {})
    sys.modules[name] = module
sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
import diffsynth.models.wan_video_vae as V
from diffsynth.models.wan_video_dit import WanModel
from diffsynth.models.wan_video_text_encoder import HuggingfaceTokenizer, WanTextEncoder
from diffsynth.pipelines.wan_video import WanVideoPipeline

torch.set_num_threads(1)
cfg = json.loads((work / "config.json").read_text())
t = cfg["transformer"]
def dit(name):
    model = WanModel(dim=t["num_attention_heads"] * t["attention_head_dim"], in_dim=t["in_channels"],
                     ffn_dim=t["ffn_dim"], out_dim=t["out_channels"], text_dim=t["text_dim"], freq_dim=t["freq_dim"],
                     eps=1e-6, patch_size=tuple(t["patch_size"]), num_heads=t["num_attention_heads"],
                     num_layers=t["num_layers"], has_image_input=False)
    model.load_state_dict(load_file(work / name), strict=True)
    return model.eval()
real = V.VideoVAE_
v = cfg["vae"]
V.VideoVAE_ = lambda z_dim: real(dim=v["base_dim"], z_dim=z_dim, dim_mult=v["dim_mult"],
                                 num_res_blocks=v["num_res_blocks"], temperal_downsample=v["temperal_downsample"])
vae = V.WanVideoVAE(z_dim=v["z_dim"])
V.VideoVAE_ = real
vae.model.load_state_dict(load_file(work / "vae.safetensors"), strict=True)
e = cfg["text_encoder"]
text = WanTextEncoder(vocab=e["vocab_size"], dim=e["d_model"], dim_attn=e["num_heads"] * e["d_kv"],
                      dim_ffn=e["d_ff"], num_heads=e["num_heads"], num_layers=e["num_layers"],
                      num_buckets=e["relative_attention_num_buckets"], shared_pos=False, dropout=0.0)
for block in text.blocks:
    block.pos_embedding.max_dist = e["relative_attention_max_distance"]
text.load_state_dict(load_file(work / "t5.safetensors"), strict=True)

pipe = WanVideoPipeline(device="cpu", torch_dtype=torch.float32)
pipe.dit, pipe.dit2, pipe.vae, pipe.text_encoder = dit("high.safetensors"), dit("low.safetensors"), vae, text.eval()
pipe.tokenizer = HuggingfaceTokenizer(name=str(work / "tokenizer"), seq_len=cfg["seq_len"], clean="whitespace")
pipe.height_division_factor = pipe.width_division_factor = vae.upsampling_factor * 2

x0s, original = [], pipe.scheduler.step
def step(model_output, timestep, sample, to_final=False, **kwargs):
    x0s.append(original(model_output, timestep, sample, to_final=True).float().numpy())  # the authors' x0
    return original(model_output, timestep, sample, to_final=to_final, **kwargs)
pipe.scheduler.step = step
frames = pipe(prompt=cfg["prompt"], negative_prompt=cfg["negative_prompt"],
              input_image=Image.open(work / "first_frame.png").convert("RGB"), num_frames=cfg["frames"],
              seed=cfg["seed"], height=cfg["size"], width=cfg["size"], cfg_scale=cfg["guidance"],
              num_inference_steps=cfg["steps"], sigma_shift=cfg["shift"], switch_DiT_boundary=cfg["boundary"],
              tiled=False)
np.savez(work / "diffsynth.npz", video=np.stack([np.asarray(f) for f in frames]), x0=np.concatenate(x0s),
         timesteps=pipe.scheduler.timesteps.numpy())
'''


def test_diffsynth_and_cos_ray_give_the_same_video_and_x0(tmp_path, tiny_model, task_dir):
    sys.path.insert(0, str(Path(__file__).parent))
    from fixtures.wan_original import wan_t5_state_dict, wan_transformer_state_dict, wan_vae_state_dict
    from PIL import Image
    from safetensors.torch import save_file

    from cos_ray.engine.records import X0Config
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.model.tiny import PRESETS, _TEXT_ENCODER
    from cos_ray.sampler import default_settings
    from cos_ray.tasks.folder import read_task_folder

    pipe = tiny_model.pipe
    (tmp_path / "sample").mkdir()
    Image.open(task_dir / "first_frame.png").convert("RGB").resize((SIZE, SIZE)).save(
        tmp_path / "sample" / "first_frame.png")
    (tmp_path / "sample" / "prompt.txt").write_text(PROMPT + "\n")
    task = read_task_folder(tmp_path / "sample")
    settings = default_settings("tiny-a14b").replace(scheduler="flowmatch-euler", steps=STEPS, frames=FRAMES,
                                                      height=SIZE, width=SIZE)

    def contiguous(state):
        return {k: v.detach().contiguous().clone() for k, v in state.items()}

    save_file(contiguous(wan_transformer_state_dict(pipe.transformer)), tmp_path / "high.safetensors")
    save_file(contiguous(wan_transformer_state_dict(pipe.transformer_2)), tmp_path / "low.safetensors")
    save_file(contiguous(wan_t5_state_dict(pipe.text_encoder)), tmp_path / "t5.safetensors")
    save_file(contiguous(wan_vae_state_dict(pipe.vae)), tmp_path / "vae.safetensors")
    pipe.tokenizer.save_pretrained(tmp_path / "tokenizer")
    preset = PRESETS["tiny"]
    (tmp_path / "first_frame.png").write_bytes((tmp_path / "sample" / "first_frame.png").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({
        "transformer": preset["transformer"], "vae": preset["vae"], "text_encoder": _TEXT_ENCODER,
        "seq_len": settings.max_sequence_length, "prompt": PROMPT, "negative_prompt": settings.negative_prompt,
        "frames": FRAMES, "seed": SEED, "size": SIZE, "guidance": settings.guidance, "steps": STEPS,
        "shift": settings.shift, "boundary": settings.boundary}))
    (tmp_path / "side.py").write_text(DIFFSYNTH_SIDE)
    done = subprocess.run([sys.executable, str(tmp_path / "side.py"), str(tmp_path), DIFFSYNTH],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    theirs = np.load(tmp_path / "diffsynth.npz")

    (member,) = run_trajectory(tiny_model, task, settings, [SEED], x0=X0Config(every=1, keep_latents=True))
    ours_video = np.asarray(member.video)  # (frames, H, W, 3) floats in [0, 1]
    ours_x0 = torch.stack([member.x0_latents[s] for s in range(STEPS)]).numpy()  # (steps, 16, T, h, w)
    their_video = theirs["video"].astype(np.float64) / 255.0  # (frames, H, W, 3) uint8 -> [0, 1]
    assert ours_video.shape == their_video.shape
    assert [r["timestep"] for r in member.steps] == pytest.approx(theirs["timesteps"].tolist())
    x0_delta = np.abs(ours_x0 - theirs["x0"]).max(axis=(1, 2, 3, 4))  # per step
    video_delta = np.abs(ours_video - their_video).mean()
    print(f"DiffSynth vs cos-ray: video mean |d| = {video_delta * 255:.4f}/255, x0 max |d| per step = "
          f"{', '.join(f'{d:.2e}' for d in x0_delta)}")
    assert video_delta <= 1 / 255
    assert (x0_delta <= 1e-4).all()
