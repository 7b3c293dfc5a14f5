"""The `cos-ray` command: a thin face over the package, one module per command group.

Commands import what they need inside their bodies, so that `cos-ray --help` and commands that run no model never
import torch, diffusers or ray (~7.5 s per process).
"""

from __future__ import annotations

import click

from cos_ray import __version__
from cos_ray.cli import convert, dashboard, figures, generate, jobs, score, specs, store, sweeps, tasks, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cos-ray")
def main() -> None:
    """Sweeps over the Chain-of-Steps of Wan2.2 video reasoning models on Ray."""


for _command in [
    generate.generate,                        # one video here or on Ray workers
    convert.convert,                          # any checkpoint layout -> a diffusers-format directory
    tasks.tasks,                              # task samples with ground truth, scoring a video
    specs.plan, specs.spec,                   # what a spec would run; its schema and check
    sweeps.submit, sweeps.verify, sweeps.export,  # sweeps into a store
    score.score,                              # VBVR-EvalKit's scores into the store
    store.sql, store.compact, store.store_group,  # the results store: query, compact, check, migrate
    *jobs.COMMANDS,                           # sweeps as Ray Jobs: list, status, logs, stop
    dashboard.dashboard,                      # the Streamlit dashboard
    figures.figures,                          # the paper's figures from a store: PNG, SVG, CSV, SQL, index.md
    train.train, train.train_eval,            # the tiny reasoner: train it, its held-out table
]:
    main.add_command(_command)
