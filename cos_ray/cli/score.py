"""`cos-ray score SWEEP --evalkit | --evalkit-results FILE.json`: VBVR-EvalKit's scores into the `evalkit` table."""

from __future__ import annotations

import click

from cos_ray.cli.errors import reports_errors


@click.command(name="score")
@click.argument("sweep")
@click.option("--evalkit", "run_evalkit", is_flag=True,
              help="Score every stored video of SWEEP with VBVR-EvalKit's API (needs `vbvr_bench` installed).")
@click.option("--evalkit-results", "results", type=click.Path(dir_okay=False),
              help="Import an EvalKit results JSON made elsewhere (from `cos-ray export`'s folders).")
@click.option("--gt", type=click.Path(file_okay=False),
              help="The VBVR-Bench tree (ground truth) for --evalkit; default: each run's own sample, as exported.")
@click.option("--task-specific-only", is_flag=True, help="--evalkit: only the task-specific score (as "
              "run_evaluation.py), not the five weighted dimensions (as evaluate.py).")
@click.option("--evalkit-version", "version", help="--evalkit-results: the EvalKit version or commit that made it.")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@reports_errors
def score(sweep, run_evalkit, results, gt, task_specific_only, version, out):
    """Score SWEEP's videos (id or name) with VBVR-EvalKit, or import its results; rows join `runs` on run_id."""
    from cos_ray.errors import UsageError
    from cos_ray.store.location import Store
    from cos_ray.sweep.score import import_results, score_sweep

    if run_evalkit == (results is not None):
        raise UsageError("score: give exactly one of --evalkit or --evalkit-results FILE.json")
    store = Store(out)
    if results is not None:
        report = import_results(store, sweep, results, version=version)
    else:
        report = score_sweep(store, sweep, gt=gt, task_specific_only=task_specific_only)
    for label, means in report.means.items():
        shown = {k: "-" if v is None else f"{v:.4f}" for k, v in means.items() if k != "runs"}
        click.echo(f"{label}: {means['runs']} run(s), task-specific {shown['score_task_specific']}, "
                   f"weighted {shown['score_weighted']}")
    if report.unmatched:
        click.echo(f"{len(report.unmatched)} video(s) matched no run of the sweep (not stored), e.g. "
                   f"{report.unmatched[0]}", err=True)
    click.echo(f"{report.rows} row(s) in table evalkit of {store.uri} (sweep {report.sweep_id}); join: "
               "select * from runs join evalkit using (run_id)")
