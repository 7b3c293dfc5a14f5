"""`cos-ray figures`: the paper's figures from a store's sweeps, as files for a paper (`cos_ray.figures.write`)."""

from __future__ import annotations

import shlex

import click

from cos_ray.cli.errors import reports_errors
from cos_ray.figures.catalog import FIGURES


@click.command()
@click.argument("sweeps", nargs=-1, required=True)
@click.option("--to", "to", required=True, help="Folder to write the figures into (absent or empty; written whole).")
@click.option("--only", help=f"Draw one figure: {', '.join(FIGURES)}.")
@click.option("--verdict", type=click.Choice(["score", "evalkit", "solved"]),
              help="How an answer is judged right: the task score at its threshold, VBVR-EvalKit's score (the "
                   "store's evalkit table), or solved (score AND the maze route). Default: the strictest the "
                   "store supports.")
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --to folder whole.")
@click.option("--sql", "print_sql", is_flag=True, help="Also print each figure's SQL (as saved in NAME.sql).")
@reports_errors
def figures(sweeps, to, only, verdict, out, overwrite, print_sql):
    """Write every figure SWEEP... supports: PNG + SVG, a CSV of the plotted numbers, the SQL, and index.md (n,
    intervals, the verdict, this command); the figures the rows cannot support are listed with the reason."""
    from pathlib import Path

    from cos_ray.figures.write import make_figures

    flags = [*(["--only", only] if only else []), *(["--verdict", verdict] if verdict else [])]
    command = "cos-ray figures " + shlex.join([*sweeps, "--to", to, *flags, "--out", out])
    drawn, skipped = make_figures(out, list(sweeps), Path(to), only, verdict, overwrite, command)
    for figure in drawn:
        click.echo(f"{figure.name}: {figure.n} ({figure.verdict})")
        if print_sql:
            click.echo((Path(to) / f"{figure.name}.sql").read_text())
    for name, why in skipped.items():
        click.echo(f"{name}: not drawn - {why}")
    click.echo(f"wrote {len(drawn)} figure(s) to {to}/index.md")
