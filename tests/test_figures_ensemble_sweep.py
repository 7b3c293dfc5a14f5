"""`cos-ray figures` on the session's small real sweep (baseline + a 2-member ensemble): the ensemble table's CSV
recounted with numpy from the raw rows (units paired with the baselines of their own seeds), and the figures the
sweep cannot support named with the reason."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from test_figures_probes import cli, raw, read_csv


@pytest.fixture(scope="module")
def drawn(small_sweep, tmp_path_factory):
    _, store, _ = small_sweep
    to = tmp_path_factory.mktemp("small-figures") / "figures"
    code, out, err = cli("figures", "small", "--to", str(to), "--verdict", "score", "--out", str(store))
    assert code == 0, out + err
    return str(store), to


def test_the_ensemble_csv_recounts(drawn):
    store, to = drawn
    runs = raw(store, "select run_id, unit_id, task_id, seed, method, params, score from runs where status = 'ok'")
    base = {(r["task_id"], r["seed"]): r["score"] for r in runs if r["method"] == "baseline"}
    units = defaultdict(list)
    for r in runs:
        if r["method"] == "ensemble":
            units[r["unit_id"]].append(r)
    cells = []
    for members in units.values():
        seeds = sorted(m["seed"] for m in members)
        bases = [base.get((members[0]["task_id"], s)) for s in seeds]
        if None in bases:
            continue
        scores = [m["score"] for m in members]
        cells.append((np.mean(scores), max(scores), np.mean(bases), max(bases)))
    cells = np.array(cells)  # (units, 4)
    (row,) = [r for r in read_csv(to / "ensemble.csv") if r["metric"] == "score"]
    assert row["units"] == len(cells) > 0
    assert (row["members"], row["best_member"], row["baseline"], row["best_of_3"]) == pytest.approx(
        tuple(cells.mean(axis=0)), abs=1e-5)
    assert row["members_vs_baseline_diff"] == pytest.approx((cells[:, 0] - cells[:, 2]).mean(), abs=1e-5)
    (right,) = [r for r in read_csv(to / "ensemble.csv") if r["metric"] == "right (score)"]
    hits = np.array([(np.mean(np.array(m) >= 0.9), np.mean(np.array(b) >= 0.9)) for m, b in verdicts(units, base)])
    assert (right["members"], right["baseline"]) == pytest.approx(tuple(hits.mean(axis=0)))
    assert "task score >= 0.9" in (to / "index.md").read_text()


def verdicts(units, base):
    """Per complete unit: (members' scores, their seeds' baseline scores)."""
    for members in units.values():
        bases = [base.get((members[0]["task_id"], m["seed"])) for m in members]
        if None not in bases:
            yield [m["score"] for m in members], bases


def test_unsupported_figures_are_named(drawn):
    _, to = drawn
    index = (to / "index.md").read_text()
    assert "- fig6: no swap runs" in index and "- fig3b: no noise_at_step" in index
    assert "(chain-of-steps.png)" in index and "(compare.png)" in index
