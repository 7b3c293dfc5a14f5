"""The whole run: VAE fitting, then flow matching of one transformer shared by both experts, in one run directory.

run_dir/
  config.json         the config the run was started with (a resume with another config is refused)
  vae_state.pt        stage 1 checkpoint; vae/ the frozen VAE with its latent statistics
  flow_state.pt       stage 2 checkpoint: transformer, EMA, optimiser, step, latent buffer
  vae_log.jsonl, flow_log.jsonl   losses per step
  export/             the diffusers pipeline (EMA or raw weights: flow.export_weights; copied into both experts),
                      rewritten at each checkpoint
Killed at any point, the same command resumes; the weights after N steps do not depend on where it was interrupted.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.sampler import WAN_NEGATIVE_PROMPT
from cos_ray.training.config import TrainConfig


def resolve_device(config: TrainConfig) -> str:
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def _check_run_dir(config: TrainConfig, run_dir: Path) -> None:
    from cos_ray.training.state import write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.json"
    current = json.loads(json.dumps(config.as_dict()))
    if saved.is_file():
        before = json.loads(saved.read_text())
        if before != current:
            changed = sorted(k for k in set(before) | set(current) if before.get(k) != current.get(k))
            raise UsageError(f"{run_dir}: was started with another config (differs in: {', '.join(changed)}); "
                             "use a new --out directory or the original config")
    else:
        write_json(saved, current)


def prepare_vae(config: TrainConfig, run_dir: Path, device, progress: bool = True):
    """Stage 1, or the frozen VAE it left in run_dir/vae."""
    import torch
    from diffusers import AutoencoderKLWan

    from cos_ray.training.architecture import build_vae
    from cos_ray.training.vae_fit import fit_vae, set_latent_statistics

    folder = run_dir / "vae"
    if (folder / "config.json").is_file():
        vae = AutoencoderKLWan.from_pretrained(folder, torch_dtype=torch.float32)
        return vae.to(device).eval().requires_grad_(False)
    vae = fit_vae(config, build_vae(config), run_dir, device, progress=progress)
    set_latent_statistics(config, vae, device)
    from cos_ray.training.export import export_pipeline

    export_pipeline(vae, folder)
    return vae


def _truncate_log(path: Path, step: int) -> None:
    if path.is_file():
        keep = [line for line in path.read_text().splitlines(keepends=True) if json.loads(line)["step"] <= step]
        path.write_text("".join(keep))


def _lr(config: TrainConfig, step: int) -> float:
    return config.flow.lr * min(1.0, (step + 1) / max(1, config.flow.warmup))


def train(config: TrainConfig, run_dir: str | Path, *, progress: bool = True, max_steps: int | None = None,
          export: bool = True, log=print):
    """Run (or resume) both stages; `max_steps` stops the flow stage early (tests, interrupted runs)."""
    import torch
    from tqdm.auto import tqdm

    from cos_ray.tasks.generators.maze import PROMPT
    from cos_ray.training.architecture import assemble_pipeline, build_transformer
    from cos_ray.training.buffer import LatentBuffer, fill_buffer, refresh
    from cos_ray.training.encode import prompt_embeddings
    from cos_ray.training.flow import flow_batch, flow_loss, step_generator
    from cos_ray.training.state import append_log, load, save_atomic
    from cos_ray.training.update import update_with_ema

    run_dir = Path(run_dir)
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(config)
    _check_run_dir(config, run_dir)
    vae = prepare_vae(config, run_dir, device, progress=progress)
    cfg = config.flow
    transformer = build_transformer(config, text_dim=32, z_dim=vae.config.z_dim).to(device).train()
    pipe = assemble_pipeline(config, vae, transformer, transformer_2=transformer)
    pipe.text_encoder.to(device)
    positive, negative = prompt_embeddings(pipe, PROMPT, WAN_NEGATIVE_PROMPT, cfg.max_sequence_length, device)
    ema = copy.deepcopy(transformer).eval().requires_grad_(False)
    opt = torch.optim.AdamW(transformer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state_path = run_dir / "flow_state.pt"
    if state_path.is_file():
        state = load(state_path)
        transformer.load_state_dict(state["transformer"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        buffer = LatentBuffer.from_state(state["buffer"], device)
        step = state["step"]
        _truncate_log(run_dir / "flow_log.jsonl", step)  # lines written after the checkpoint are written again
        log(f"resumed at step {step} from {state_path}")
    else:
        t0 = time.time()
        buffer = fill_buffer(pipe, config.data, config.seed, cfg.buffer, device)
        step = 0
        log(f"filled the latent buffer with {cfg.buffer} samples in {time.time() - t0:.0f} s")
    end = cfg.steps if max_steps is None else min(cfg.steps, max_steps)

    def checkpoint():
        save_atomic({"transformer": transformer.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                     "buffer": buffer.state_dict(), "step": step}, state_path)
        if export:
            export_trained(config, pipe, ema if cfg.export_weights == "ema" else transformer, run_dir / "export")

    ran = max(0, end - step)  # steps this call runs (0: a finished run, resumed to export it again)
    bar = tqdm(total=end, initial=step, desc="flow", disable=not progress, mininterval=5)
    t_last = time.time()
    while step < end:
        generator = step_generator(config.seed, step)
        refresh(buffer, pipe, config.data, config.seed, cfg.refresh, device)
        pick = torch.randint(buffer.targets.shape[0], (cfg.batch,), generator=generator).to(device)
        hidden, timestep, text, velocity = flow_batch(
            buffer.targets[pick], buffer.conditions[pick], positive, negative, generator=generator, shift=cfg.shift,
            prompt_dropout=cfg.prompt_dropout)
        for group in opt.param_groups:
            group["lr"] = _lr(config, step)
        loss = flow_loss(transformer, hidden, timestep, text, velocity)
        grad_norm = update_with_ema(transformer, ema, opt, loss, cfg.grad_clip, cfg.ema)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % cfg.log_every == 0 or step == end:
            now = time.time()
            append_log(run_dir / "flow_log.jsonl", {"step": step, "loss": loss.item(), "grad_norm": float(grad_norm),
                                                    "lr": _lr(config, step - 1), "samples_seen": step * cfg.batch,
                                                    "encoded": buffer.next_index, "time": now,
                                                    "s_per_step": (now - t_last) / cfg.log_every})
            t_last = now
        if step % cfg.checkpoint_every == 0 or step == end:
            checkpoint()
    bar.close()
    if export and (ran == 0 or not (run_dir / "export" / "model_index.json").is_file()):
        export_trained(config, pipe, ema if cfg.export_weights == "ema" else transformer, run_dir / "export")
    return pipe, transformer, ema, step


def export_trained(config: TrainConfig, pipe, ema, target: Path) -> Path:
    """The pipeline with `ema` (the EMA or the raw transformer, as flow.export_weights says) in both experts (shared
    weights, one copy each), in diffusers format."""
    from cos_ray.training.architecture import assemble_pipeline
    from cos_ray.training.export import export_pipeline

    high = copy.deepcopy(ema).cpu().eval()
    low = copy.deepcopy(ema).cpu().eval()
    from cos_ray.training.distribution import FILE, distribution_record

    out = assemble_pipeline(config, copy.deepcopy(pipe.vae).cpu(), high, low)
    return export_pipeline(out, target, extra={FILE: json.dumps(distribution_record(config), indent=2) + "\n"})
