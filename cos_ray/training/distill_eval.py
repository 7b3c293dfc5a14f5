"""The held-out table of a few-step sampler: `cos-ray train-eval` with the sampler named (a preset such as
`tiny-reasoner-4step`, or the steps and scheduler laid over the family's defaults), so the student at its 4 steps and
the teacher at 10 and 4 Euler steps are judged on the same held-out mazes by the same path (`training.evaluate`).

  python -m cos_ray.training.distill_eval tiny-reasoner-4step --preset tiny-reasoner-4step --seed 2 --n 60 --out DIR
  python -m cos_ray.training.distill_eval tiny-reasoner --scheduler flowmatch-euler --steps 4 --seed 1 --out DIR
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
        rows = evaluate(model, folders, seed=args.run_seed, settings=settings, methods=("model",), progress=True)
        summary = {"model": args.model, "settings": dataclasses.asdict(settings), "task_seed": args.seed,
                   "n": args.n, "run_seed": args.run_seed, "methods": summarise(rows)}
        (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary["methods"], indent=2))

    return run_reporting_errors(body)


if __name__ == "__main__":
    raise SystemExit(main())
