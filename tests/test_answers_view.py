"""The README's headline query over the `answers` view compares like with like: one row per method, each unit's
answer (an ensemble's consensus member) paired with the baseline of the same task, model, settings and seeds,
checked against a hand count on a store written as a sweep writes it. The query is read from README.md and run
through `cos-ray sql`, as a user runs it."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cos_ray.store.location import Store
from cos_ray.store.rows import sweep_row
from cos_ray.store.write import write_sweep, write_unit

README = Path(__file__).resolve().parent.parent / "README.md"
NOW = datetime.now(timezone.utc)


def headline_query() -> str:
    [query] = re.findall(r'^cos-ray sql "(select .* from answers .*)"$', README.read_text(), re.M)
    return query


def run(unit, member, seed, method, score, task="maze/0", model="tiny-reasoner", seeds=None):
    return {"sweep_id": "s", "unit_id": unit, "run_id": f"{unit}-{member}", "member": member, "task_id": task,
            "task_family": "maze", "seed": seed, "method": method, "params": "{}", "model": model, "settings": "{}",
            "score": score, "status": "ok", "seeds": seeds or [seed], "started_at": NOW, "finished_at": NOW}


def consensus_row(unit, member):
    return {"run_id": f"{unit}-{member}", "unit_id": unit, "step": 9, "kind": "consensus", "layer": "x0",
            "value": 0.1}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("answers") / "store"
    store, units = Store(str(root)), []

    def unit(name, runs, layers=()):
        units.append(name)
        write_unit(store, name, runs, [], list(layers))

    for seed, score in enumerate([1.0, 0.0, 0.5, 0.25]):  # task maze/0: baselines on seeds 0-3
        unit(f"b{seed}", [run(f"b{seed}", 0, seed, "baseline", score)])
        unit(f"f{seed}", [run(f"f{seed}", 0, seed, "first_frame", 0.0)])
    unit("other-model", [run("other-model", 0, 1, "baseline", 0.9, model="tiny")])  # never paired with tiny-reasoner
    members = [0.5, 1.0, 0.0]
    unit("e0", [run("e0", k, k, "ensemble", score, seeds=[0, 1, 2]) for k, score in enumerate(members)],
         [consensus_row("e0", 1)])  # consensus: member 1 (seed 1, score 1.0)
    unit("e1", [run("e1", k, 1 + k, "ensemble", 0.75, seeds=[1, 2, 3]) for k in range(3)], [consensus_row("e1", 2)])
    unit("e2", [run("e2", k, 2 + k, "ensemble", 1.0, seeds=[2, 3, 4]) for k in range(3)],
         [consensus_row("e2", 0)])  # seed 4 has no baseline: an incomplete pairing, left out by the query
    write_sweep(store, sweep_row("s", "answers", "spec.yaml", {}, "tiny-reasoner", units, "done", done=len(units),
                                 started_at=NOW, finished_at=NOW))
    return root


def test_the_headline_query_gives_one_paired_row_per_method(store):
    result = subprocess.run([sys.executable, "-m", "cos_ray.cli", "sql", "--out", str(store), "--format", "csv",
                             headline_query()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    header, *lines = csv.reader(io.StringIO(result.stdout.strip()))
    rows = {line[0]: [float(value) for value in line[1:]] for line in lines}
    assert header == ["method", "units", "answer", "baseline_same_seeds", "paired_diff"]
    # by hand: baselines (1, 0, .5, .25) of tiny-reasoner, and the other model's (.9), each paired with itself;
    # first_frame and the ensembles pair with tiny-reasoner's only (the other model's seed-1 baseline is not theirs)
    assert rows["baseline"] == pytest.approx([5, 0.53, 0.53, 0.0])
    assert rows["first_frame"] == pytest.approx([4, 0.0, 0.4375, -0.4375])
    # e0: consensus 1.0 vs mean(1, 0, .5) = .5; e1: consensus .75 vs mean(0, .5, .25) = .25; e2: seed 4 unpaired
    assert rows["ensemble"] == pytest.approx([2, 0.875, 0.375, 0.5])


def test_answers_keep_incomplete_pairings_visible(store):
    from cos_ray.store.query import run_sql

    table = run_sql(Store(str(store)), "select unit_id, run_id, baseline_runs, len(seeds) as n from answers "
                                         "where method = 'ensemble' order by 1")
    assert table.to_pylist() == [{"unit_id": "e0", "run_id": "e0-1", "baseline_runs": 3, "n": 3},
                                 {"unit_id": "e1", "run_id": "e1-2", "baseline_runs": 3, "n": 3},
                                 {"unit_id": "e2", "run_id": "e2-0", "baseline_runs": 2, "n": 3}]
