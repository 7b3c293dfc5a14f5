"""`cos-ray figures`: every figure the chosen sweeps' rows support, written whole into one folder - per figure a PNG
and an SVG, a CSV of the plotted numbers (one per table), the SQL it ran (runnable with `cos-ray sql`) - and an
index.md that shows them with n, intervals, the verdict and the command that made them; the figures the rows cannot
support are listed with the reason. Nothing is written until every figure is drawn (`staging.staged_folder`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cos_ray.errors import UsageError
from cos_ray.figures.catalog import FIGURES, draw_function
from cos_ray.figures.figure import Unsupported


def sweep_ids(reader, names: list[str]) -> list[str]:
    """The ids of the sweeps named (by id or by name; a name run twice is both runs) - an unknown one is an error."""
    known = reader.rows("SELECT sweep_id, name FROM sweeps ORDER BY name, sweep_id") if reader.count("sweeps") else []
    ids = []
    for name in names:
        found = [r["sweep_id"] for r in known if name in (r["sweep_id"], r["name"])]
        if not found:
            listed = ", ".join(sorted({r["name"] for r in known})) or "none"
            raise UsageError(f"sweep {name!r}: not in the store {reader.uri} (its sweeps: {listed})")
        ids += [i for i in found if i not in ids]
    return ids


def draw_all(reader, where, verdict, only: str | None = None) -> tuple[list, dict]:
    """([Drawn], {name: why it cannot be drawn})."""
    drawn, skipped = [], {}
    for name in ([only] if only else FIGURES):
        reader.log = []
        try:
            figure = draw_function(name)(reader, where, verdict)
        except Unsupported as why:
            skipped[name] = str(why)
            continue
        figure.sql = list(reader.log)
        drawn.append(figure)
    return drawn, skipped


def _cell(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "" if value is None else value


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows({k: _cell(row.get(k)) for k in columns} for row in rows)


def write_figure(folder: Path, figure) -> list[str]:
    """The figure's files in `folder`; returns their names."""
    from cos_ray.figures.plotting import pyplot, save
    from cos_ray.figures.reader import runnable

    names = []
    for table, rows in figure.tables.items():
        name = f"{figure.name}{'.' + table if table else ''}.csv"
        write_csv(folder / name, rows)
        names.append(name)
    sql = "\n\n".join(f"-- {figure.name}, query {i + 1} of {len(figure.sql)}\n{runnable(q, p)};"
                      for i, (q, p) in enumerate(figure.sql))
    (folder / f"{figure.name}.sql").write_text(sql + "\n")
    save(figure.plot(pyplot()), folder / f"{figure.name}.png", svg=True)
    return names


def index(figures: list, skipped: dict, verdict, command: str, sweeps: list[str]) -> str:
    lines = [f"# Figures of {', '.join(sweeps)}", "", f"Made by `{command}`.", "",
             f"Verdict: **{verdict.name}** - {verdict.label}. Intervals are 95%: Wilson for shares of right answers, "
             "logit (inside [0, 1]) for mean scores, Student-t for paired differences of units.", ""]
    for figure in figures:
        main = figure.tables.get("", [])
        lines += [f"## {figure.name}: {figure.title}", "", f"![{figure.name}]({figure.name}.png) "
                  f"([SVG]({figure.name}.svg), [SQL]({figure.name}.sql), "
                  + ", ".join(f"[{t or 'table'}]({figure.name}{'.' + t if t else ''}.csv)" for t in figure.tables)
                  + ")", "", f"n: {figure.n}. Verdict: {figure.verdict}.", ""]
        shown = ["method", "setting", "position", "step", "layer", "frames", "steps", "mode", "metric", "merge", "runs",
                 "units", "judged", "right", "baseline", "members", "consensus", "baseline_medoid", "best_of_3",
                 "best_member", "solved", "mean", "ci_low", "ci_high", "passes_per_task", "share", "share_ci_low", "share_ci_high",
                 "kept_a_share", "kept_a_ci_low", "kept_a_ci_high", "b_share", "energy", "route_ratio", "diff",
                 "diff_ci_low", "diff_ci_high", "final_dissimilarity", "members_vs_baseline_diff",
                 "members_vs_baseline_ci_low", "members_vs_baseline_ci_high"]
        columns = [c for c in shown if any(c in row for row in main)]
        if main and columns and len(main) <= 60 and figure.name != "fig5-maps":
            lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(str(_cell(row.get(c))) for c in columns) + " |" for row in main]
            lines.append("")
        elif main:
            lines += [f"({len(main)} rows: see the CSV)", ""]
        lines += [f"> {note}".replace("\n", "\n> ") for note in figure.notes] + ([""] if figure.notes else [])
    if skipped:
        lines += ["## Not drawn", ""] + [f"- {name}: {why}" for name, why in skipped.items()] + [""]
    return "\n".join(lines)


def make_figures(store_uri: str, sweeps: list[str], to: Path, only: str | None, verdict_name: str | None,
                 overwrite: bool, command: str) -> tuple[list, dict]:
    """Draw and write; every input is judged before anything is written, and the folder appears whole or not."""
    from cos_ray.figures.reader import StoreReader
    from cos_ray.figures.run_filter import RunFilter
    from cos_ray.figures.verdict_choice import verdict_for
    from cos_ray.staging import check_target, staged_folder

    if only is not None and only not in FIGURES:
        raise UsageError(f"--only {only}: no such figure; expected one of {', '.join(FIGURES)}")
    check_target(Path(to), overwrite, "--to")
    with StoreReader(store_uri) as reader:
        where = RunFilter(sweeps=tuple(sweep_ids(reader, sweeps)))
        verdict = verdict_for(verdict_name, reader, where)
        figures, skipped = draw_all(reader, where, verdict, only)
        if only is not None and not figures:
            raise UsageError(f"--only {only}: cannot be drawn from {', '.join(sweeps)}: {skipped[only]}")
        with staged_folder(Path(to), overwrite, "--to") as staging:
            for figure in figures:
                write_figure(staging, figure)
            (staging / "index.md").write_text(index(figures, skipped, verdict, command, sweeps))
    return figures, skipped
