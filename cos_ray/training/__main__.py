"""`python -m cos_ray.training CONFIG --out RUN_DIR [--max-steps N]`: train (or resume) the tiny reasoner."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from cos_ray.errors import run_reporting_errors

    parser = argparse.ArgumentParser(prog="python -m cos_ray.training", description=__doc__)
    parser.add_argument("config", help="training YAML, e.g. training/configs/tiny-reasoner.yaml")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, logs, export/); resumed if present")
    parser.add_argument("--max-steps", type=int, default=None, help="stop the flow stage after this many steps")
    args = parser.parse_args(argv)

    def body():
        from cos_ray.training.config import load_config
        from cos_ray.training.loop import train

        config = load_config(args.config)
        train(config, args.out, max_steps=args.max_steps)

    return run_reporting_errors(body)


if __name__ == "__main__":
    sys.exit(main())
