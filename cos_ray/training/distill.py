"""Step distillation of a trained model into a 4-step, guidance-1 student: trajectory matching at the student's knots.

Why this objective (and not progressive, consistency or distribution-matching distillation): the student is meant to
run exactly as Wan2.2-Lightning runs (sampler preset `lightning-4step`: 4 flow-match Euler steps on Wan's schedule,
shift 5, no CFG). The teacher's probability-flow ODE, solved with its own CFG on a finer Euler grid that contains the
student's knots (`teacher_steps` = m x `student_steps`: Wan's sigmas shift(linspace(1, 0, N + 1)) share every m-th
point), gives the latent x_k at each knot sigma_k; the student learns the one velocity that lands its Euler step from
x_k on the teacher's x_{k+1}:

    v*_k = (x_{k+1} - x_k) / (sigma_{k+1} - sigma_k),    loss = || student(x_k, 1000 sigma_k, prompt) - v*_k ||²

One regression, one network, CFG folded in, no auxiliary critic (DMD), no target network or solver schedule
(consistency), one round (progressive halving needs log2 rounds and 10 is no power of 2). It matches the teacher's
noise -> answer map per noise, so the question the figure asks - does 4-step sampling keep the early candidates, or
does the student commit at its first step - is about the step budget, not about a loss that trades diversity away
(distribution matching is reported to lose diversity: the contrast is worth a second student). With `teacher_steps ==
student_steps` and `teacher_guidance == 1` the targets are the teacher's own velocities: a student equal to the
teacher has loss 0 (the test of the wiring). Conditions stream from the training generator's seeds (above 10^6),
disjoint from every evaluation seed; the student starts from the teacher's weights.

    python -m cos_ray.training.distill training/configs/tiny-reasoner-4step.yaml --out runs/tiny-reasoner-4step
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.training.config import DataConfig, _build, _check, _int, _num


@dataclass(frozen=True)
class DistillConfig:
    """A distillation run: the teacher (preset or checkpoint), its ODE solve, the student's schedule, the optimizer."""

    teacher: str = "tiny-reasoner"
    teacher_steps: int = 20  # Euler steps of the teacher's ODE solve; a multiple of student_steps
    teacher_guidance: float = 5.0  # the teacher's CFG (its default); the student runs without CFG
    student_steps: int = 4
    shift: float = 5.0
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    steps: int = 1500
    batch: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.99
    trajectories: int = 256  # teacher trajectories held in a ring; `refresh` replaced by fresh ones each step
    refresh: int = 2
    max_sequence_length: int = 32
    checkpoint_every: int = 100
    log_every: int = 10
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self):
        _int("student_steps", self.student_steps, 1, 50)
        _int("teacher_steps", self.teacher_steps, 1, 1000)
        _check("teacher_steps", self.teacher_steps % self.student_steps == 0,
               f"a multiple of student_steps ({self.student_steps}): the student's knots must be teacher steps",
               self.teacher_steps)
        _num("teacher_guidance", self.teacher_guidance, 1.0, 50.0)
        _num("shift", self.shift, 0.01, 100.0)
        _int("steps", self.steps, 0)
        _int("batch", self.batch, 1, 4096)
        _num("lr", self.lr, 1e-8, 1.0)
        _num("ema", self.ema, 0.0, 0.99999)
        _int("trajectories", self.trajectories, 1)
        _int("refresh", self.refresh, 0)
        _check("refresh", self.refresh <= self.trajectories, f"at most trajectories ({self.trajectories})",
               self.refresh)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_distill_config(path: str | Path) -> DistillConfig:
    from cos_ray.bounded_read import read_yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such distillation config (e.g. training/configs/tiny-reasoner-4step.yaml)")
    values = dict(read_yaml(path, what="distillation config") or {})
    data = _build(DataConfig, values.pop("data", {}) or {}, f"{path}: data")
    return _build(DistillConfig, {**values, "data": data}, str(path))


def knot_sigmas(steps: int, shift: float):
    """Wan's flow-match Euler sigmas for `steps` steps, the terminal 0 included: `# (steps + 1,)` float32."""
    import torch

    u = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float32)
    return shift * u / (1 + (shift - 1) * u)


def _velocity(transformer, x, conditions, t, text):
    hidden = torch_cat([x, conditions])
    timestep = t.expand(x.shape[0])
    return transformer(hidden_states=hidden, timestep=timestep, encoder_hidden_states=text.expand(x.shape[0], -1, -1),
                       return_dict=False)[0].float()


def torch_cat(parts):
    import torch

    return torch.cat(parts, dim=1)


def teacher_knots(teacher, noise, conditions, positive, negative, config: DistillConfig):
    """The teacher's Euler ODE solve from `noise` `# (batch, z, f, h, w)`, with its CFG, kept at the student's knots:
    `# (student_steps + 1, batch, z, f, h, w)` (index 0 is the noise, the last the teacher's answer)."""
    import torch

    sigmas = knot_sigmas(config.teacher_steps, config.shift).to(noise.device)
    every = config.teacher_steps // config.student_steps
    x, kept = noise.float(), [noise.float()]
    with torch.no_grad():
        for k in range(config.teacher_steps):
            t = sigmas[k] * 1000.0
            cond = _velocity(teacher, x, conditions, t, positive)
            if config.teacher_guidance != 1.0:
                uncond = _velocity(teacher, x, conditions, t, negative)
                cond = uncond + config.teacher_guidance * (cond - uncond)
            x = x + (sigmas[k + 1] - sigmas[k]) * cond
            if (k + 1) % every == 0:
                kept.append(x)
    return torch.stack(kept)


def distill_loss(student, knots, conditions, positive, pick, knot, config: DistillConfig):
    """MSE between the student's velocity at knot `knot[i]` of trajectory `pick[i]` and the velocity that lands its
    Euler step on the teacher's next knot."""
    import torch.nn.functional as F

    sigmas = knot_sigmas(config.student_steps, config.shift).to(knots.device)
    x = knots[knot, pick]  # (batch, z, f, h, w)
    target = (knots[knot + 1, pick] - x) / (sigmas[knot + 1] - sigmas[knot]).view(-1, 1, 1, 1, 1)
    hidden = torch_cat([x, conditions[pick]])
    predicted = student(hidden_states=hidden, timestep=sigmas[knot] * 1000.0,
                        encoder_hidden_states=positive.expand(x.shape[0], -1, -1), return_dict=False)[0]
    return F.mse_loss(predicted.float(), target.float())


def _fresh_knots(teacher, buffer, slots, positive, negative, config, device):
    import torch

    from cos_ray.training.flow import step_generator

    noise = torch.stack([torch.randn(buffer.targets.shape[1:], generator=step_generator(config.seed, 10**7 + index))
                         for index in slots["stream"]]).to(device)
    return teacher_knots(teacher, noise, buffer.conditions[slots["ring"]], positive, negative, config)


def distill(config: DistillConfig, run_dir: str | Path, *, max_steps: int | None = None, log=print):
    """Run (or resume) a distillation; exports run_dir/export (diffusers format, the student in both experts)."""
    import torch

    from cos_ray.model.loader import load_pipeline
    from cos_ray.sampler import WAN_NEGATIVE_PROMPT
    from cos_ray.tasks.generators.maze import PROMPT
    from cos_ray.training.buffer import fill_buffer, refresh
    from cos_ray.training.encode import prompt_embeddings
    from cos_ray.training.flow import step_generator
    from cos_ray.training.state import append_log, load, save_atomic
    from cos_ray.training.update import update_with_ema

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    device = "cuda" if config.device == "auto" and torch.cuda.is_available() else (
        "cpu" if config.device == "auto" else config.device)
    model = load_pipeline(config.teacher, device=device, dtype=torch.float32)
    pipe = model.pipe
    teacher = pipe.transformer.eval().requires_grad_(False)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    ema = copy.deepcopy(teacher)
    positive, negative = prompt_embeddings(pipe, PROMPT, WAN_NEGATIVE_PROMPT, config.max_sequence_length, device)
    opt = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state_path = run_dir / "distill_state.pt"
    if state_path.is_file():
        state = load(state_path)
        student.load_state_dict(state["student"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        from cos_ray.training.buffer import LatentBuffer

        buffer, knots, step = LatentBuffer.from_state(state["buffer"], device), state["knots"].to(device), state["step"]
        log(f"resumed at step {step} from {state_path}")
    else:
        buffer = fill_buffer(pipe, config.data, config.seed, config.trajectories, device)
        slots = {"ring": list(range(config.trajectories)), "stream": list(range(config.trajectories))}
        knots = _fresh_knots(teacher, buffer, slots, positive, negative, config, device)
        step = 0
    end = config.steps if max_steps is None else min(config.steps, max_steps)
    t_last = time.time()
    while step < end:
        if config.refresh:
            ring = [(buffer.cursor + k) % config.trajectories for k in range(config.refresh)]
            stream = list(range(buffer.next_index, buffer.next_index + config.refresh))
            refresh(buffer, pipe, config.data, config.seed, config.refresh, device)
            knots[:, ring] = _fresh_knots(teacher, buffer, {"ring": ring, "stream": stream}, positive, negative,
                                          config, device)
        generator = step_generator(config.seed, step)
        pick = torch.randint(config.trajectories, (config.batch,), generator=generator).to(device)
        knot = torch.randint(config.student_steps, (config.batch,), generator=generator).to(device)
        loss = distill_loss(student, knots, buffer.conditions, positive, pick, knot, config)
        grad_norm = update_with_ema(student, ema, opt, loss, config.grad_clip, config.ema)
        step += 1
        if step % config.log_every == 0 or step == end:
            now = time.time()
            append_log(run_dir / "distill_log.jsonl", {"step": step, "loss": loss.item(), "grad_norm": float(grad_norm),
                                                       "s_per_step": (now - t_last) / config.log_every})
            t_last = now
        if step % config.checkpoint_every == 0 or step == end:
            save_atomic({"student": student.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                         "buffer": buffer.state_dict(), "knots": knots, "step": step}, state_path)
            save_atomic(ema.state_dict(), run_dir / f"ema_{step:05d}.pt")  # every checkpoint, for validation
    return export_student(pipe, ema, config, run_dir / "export"), step


def export_student(pipe, weights, config: DistillConfig, target: Path) -> Path:
    """The teacher's pipeline with the student in both experts, in diffusers format, with distillation.json."""
    from diffusers import WanImageToVideoPipeline

    from cos_ray.training.export import export_pipeline

    out = WanImageToVideoPipeline(
        tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, vae=pipe.vae, scheduler=pipe.scheduler,
        transformer=copy.deepcopy(weights).cpu().eval(), transformer_2=copy.deepcopy(weights).cpu().eval(),
        image_encoder=None, image_processor=None, boundary_ratio=pipe.config.boundary_ratio,
        expand_timesteps=pipe.config.expand_timesteps)
    record = {"objective": "trajectory matching at the student's knots (cos_ray.training.distill)",
              "sampler": {"preset": "tiny-reasoner-4step", "steps": config.student_steps}, "config": config.as_dict()}
    return export_pipeline(out, target, extra={"distillation.json": json.dumps(record, indent=2) + "\n"})


def export_checkpoint(config: DistillConfig, weights_file: str | Path, target: str | Path) -> Path:
    """A kept checkpoint (`ema_NNNNN.pt`, the student's EMA weights) exported as a pipeline, as a run's end does:
    checkpoints are chosen on the validation seed after the run."""
    import torch

    from cos_ray.model.loader import load_pipeline

    model = load_pipeline(config.teacher, device="cpu", dtype=torch.float32)
    student = copy.deepcopy(model.pipe.transformer)
    student.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    return export_student(model.pipe, student, config, Path(target))


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cos_ray.training.distill", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--export", metavar="EMA_FILE", help="only export this kept checkpoint to --out (no training)")
    args = parser.parse_args(argv)
    try:
        if args.export:
            print(f"student in {export_checkpoint(load_distill_config(args.config), args.export, args.out)}")
            return 0
        export, step = distill(load_distill_config(args.config), args.out, max_steps=args.max_steps)
    except UsageError as err:  # bad input: one line, exit 2 (as the CLI's table says)
        print(f"error: {err}")
        return 2
    print(f"distilled {step} steps; student in {export}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
