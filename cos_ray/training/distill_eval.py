"""The held-out table of a few-step sampler: `cos-ray train-eval` with the sampler named (a preset such as
`tiny-reasoner-4step`, or the steps and scheduler laid over the family's defaults), so the student at its 4 steps and
the teacher at 10 and 4 Euler steps are judged on the same held-out mazes by the same path (`training.evaluate`).

  python -m cos_ray.training.distill_eval tiny-reasoner-4step --preset tiny-reasoner-4step --seed 2 --n 60 --out DIR
  python -m cos_ray.training.distill_eval tiny-reasoner --scheduler flowmatch-euler --steps 4 --seed 1 --out DIR
  python -m cos_ray.training.distill_eval tiny-reasoner --preset tiny-reasoner-4step --seed 2 --n 60 --out DIR \
      --weights runs/tiny-reasoner-4step/ema_*.pt           # a run's kept checkpoints on the validation seed
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path


def settings_for(model: str, preset: str | None, steps: int | None, scheduler: str | None):
    from cos_ray.model.source import model_family
    from cos_ray.sampler import default_settings, preset_settings

    family = model_family(model)
    settings = preset_settings(preset, family) if preset else default_settings(family)
    changes = {k: v for k, v in (("steps", steps), ("scheduler", scheduler)) if v is not None}
    return dataclasses.replace(settings, **changes)


def main(argv=None) -> int:
    import argparse

    from cos_ray.errors import run_reporting_errors
    from cos_ray.training.evaluate import TEST_SEED

    parser = argparse.ArgumentParser(prog="python -m cos_ray.training.distill_eval",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("model", help="tiny-reasoner, tiny-reasoner-4step, or an export/ directory")
    parser.add_argument("--preset", help="sampler preset (cos_ray.sampler.SAMPLER_PRESETS)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--scheduler")
    parser.add_argument("--seed", type=int, default=TEST_SEED, help="held-out task seed (1 test, 2 validation)")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--run-seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", nargs="+", metavar="EMA_FILE",
                        help="kept checkpoints (distill's ema_NNNNN.pt) judged in turn in MODEL's both experts: "
                             "the validation of a run's checkpoints without exporting each")
    args = parser.parse_args(argv)

    def body():
        import torch

        from cos_ray.model.loader import load_pipeline
        from cos_ray.training.config import DataConfig
        from cos_ray.training.evaluate import evaluate, held_out_tasks, summarise

        torch.set_num_threads(args.threads)
        settings = settings_for(args.model, args.preset, args.steps, args.scheduler)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        folders = held_out_tasks(out / "tasks", args.seed, args.n, DataConfig())
        model = load_pipeline(args.model, device="cpu")
        for weights in args.weights or [None]:
            if weights is not None:
                state = torch.load(weights, map_location="cpu", weights_only=True)
                for expert in (model.pipe.transformer, model.pipe.transformer_2):
                    expert.load_state_dict(state)
            rows = evaluate(model, folders, seed=args.run_seed, settings=settings, methods=("model",))
            summary = {"model": args.model, "weights": weights, "settings": dataclasses.asdict(settings),
                       "task_seed": args.seed, "n": args.n, "run_seed": args.run_seed, "methods": summarise(rows)}
            name = "" if weights is None else f"{Path(weights).stem}."
            (out / f"{name}rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (out / f"{name}summary.json").write_text(json.dumps(summary, indent=2))
            solved = summary["methods"]["model"]
            print(json.dumps({"weights": weights, **solved}), flush=True)

    return run_reporting_errors(body)


if __name__ == "__main__":
    raise SystemExit(main())
