"""Malformed specs: every problem named by its field path, all at once, exit code 2, nothing written."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.errors import UsageError
from cos_ray.spec.load import validate
from cos_ray.spec.problems import SpecError

TASKS = Path(__file__).resolve().parents[1] / "jobs" / "tasks"

GOOD = {
    "model": "tiny",
    "tasks": str(TASKS),
    "seeds": [0, 1],
    "methods": ["baseline", {"ensemble": {"size": 3, "layers": "20-29", "steps": "0-20%", "merge": "update"}}],
    "probes": {"x0": {"every": 2, "decode": True}},
}


def spec_with(**changes):
    data = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node, keys = data, path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


DELETE = object()
ENSEMBLE = "methods__1__ensemble__"

MALFORMED = [
    ("unknown top-level key", spec_with(seed=[0]), "seed: unknown key 'seed'; did you mean 'seeds'?"),
    ("unknown nested key", spec_with(model={"name": "tiny", "wrkers": 2}),
     "model.wrkers: unknown key 'wrkers'; did you mean 'workers'?"),
    ("missing section", spec_with(model=DELETE), "model: missing"),
    ("wrong type", spec_with(model={"name": "tiny", "workers": "two"}), "model.workers: expected an integer, got 'two'"),
    ("layer out of range", spec_with(**{ENSEMBLE + "layers": [20, 45]}),
     "methods[1].ensemble.layers: layer 45 is out of range 0-39"),
    ("layer out of range of tiny-ti2v (30 blocks)", spec_with(model="tiny-ti2v", **{ENSEMBLE + "layers": "25-35"}),
     "methods[1].ensemble.layers: '25-35' reaches layer 35, out of range 0-29"),
    ("steps past the run", spec_with(**{ENSEMBLE + "steps": "0-12"}),
     "methods[1].ensemble.steps: '0-12' reaches step 12, out of range 0-9"),
    ("bad merge", spec_with(**{ENSEMBLE + "merge": "mean"}), "methods[1].ensemble.merge: expected one of stream, update"),
    ("unknown method", spec_with(methods=["baseline", "ensmble"]), "methods[1].ensmble: unknown method 'ensmble'; "
                                                                      "did you mean 'ensemble'?"),
    ("ensemble of one", spec_with(**{ENSEMBLE + "size": 1}), "methods[1].ensemble.size: expected an integer >= 2"),
    ("frames not 4k+1", spec_with(sampler={"frames": 10}), "sampler.frames: expected a count of the form 4k+1"),
    ("unknown sampler field", spec_with(sampler={"stepz": 5}), "sampler.stepz: unknown key 'stepz'; did you mean 'steps'?"),
    ("duplicate seeds", spec_with(seeds=[1, 1]), "seeds: expected distinct seeds, got [1, 1]"),
    ("reversed seed range", spec_with(seeds="5-2"), "seeds: expected a list of integers or an inclusive range"),
    ("missing task folder", spec_with(tasks="/nonexistent/tasks"), "tasks.folder: tasks /nonexistent/tasks: not a folder"),
    ("missing checkpoint", spec_with(model="/nonexistent/ckpt"), "model.name: model directory /nonexistent/ckpt does not"),
    ("both task sources", spec_with(tasks={"folder": str(TASKS), "generate": {"family": "maze"}}),
     "tasks: expected exactly one of folder (a path) or generate"),
    ("unknown task family", spec_with(tasks={"generate": {"family": "mazes"}}), "tasks.generate.family: expected one of"),
    ("x0 every 0", spec_with(probes={"x0": {"every": 0}}), "probes.x0.every: expected an integer >= 1, got 0"),
    ("empty grid", spec_with(**{ENSEMBLE + "size": {"grid": []}}),
     "methods[1].ensemble.size.grid: expected a non-empty list of values"),
    ("grid with extra keys", spec_with(**{ENSEMBLE + "size": {"grid": [2, 3], "step": 1}}),
     "methods[1].ensemble.size: a grid is {grid: [values]} and nothing else"),
    ("bad grid value", spec_with(**{ENSEMBLE + "layers": {"grid": ["20-29", [20, 45]]}}),
     "methods[1].ensemble.layers.grid[1]: layer 45 is out of range 0-39"),
    ("grid inside model", spec_with(model={"name": "tiny", "workers": {"grid": [1, 3]}}), "model: a sweep runs one model"),
    ("not a mapping", ["model", "tiny"], "expected a mapping with keys model, tasks"),
    ("noise step past the run", spec_with(methods=["baseline", "ensemble", {"noise_at_step": {"step": 12}}]),
     "methods[2].noise_at_step.step: step 12 is out of range 0-9"),
    ("noise step range past the run", spec_with(methods=["baseline", {"noise_at_step": {"step": "5-10"}}]),
     "methods[1].noise_at_step.step: '5-10' reaches step 10, out of range 0-9"),
    ("noise strength 0", spec_with(methods=[{"noise_at_step": {"step": 1, "strength": 0}}]),
     "methods[0].noise_at_step.strength: expected a number in (0, 1]"),
    ("mistyped noise key", spec_with(methods=[{"noise_at_step": {"stp": 1}}]),
     "methods[0].noise_at_step.stp: unknown key 'stp'; did you mean 'step'?"),
    ("latent frame past the video", spec_with(methods=[{"noise_at_frame": {"frame": 3}}]),
     "methods[0].noise_at_frame.frame: latent frame 3 is out of range 0-2"),
    ("swap layer out of range", spec_with(methods=[{"swap": {"layer": "30-40"}}]),
     "methods[0].swap.layer: '30-40' reaches layer 40, out of range 0-39"),
    ("swap source task out of range", spec_with(methods=[{"swap": {"layer": 20, "source": {"task": 5}}}]),
     "methods[0].swap.source.task: task 5 is out of range 0-1 (the sweep has 2)"),
    ("swap source folder missing", spec_with(methods=[{"swap": {"layer": 20, "source": "/nonexistent/b"}}]),
     "methods[0].swap.source.folder: tasks /nonexistent/b: not a folder"),
    ("swap source of two kinds", spec_with(methods=[{"swap": {"layer": 20, "source": {"task": 0, "offset": 1}}}]),
     "methods[0].swap.source: expected exactly one of task"),
    ("energy layer out of range", spec_with(probes={"energy": {"layers": [0, 45]}}),
     "probes.energy.layers: layer 45 is out of range 0-39"),
    ("energy every 0", spec_with(probes={"energy": {"every": 0}}), "probes.energy.every: expected an integer >= 1"),
    ("unknown sensitivity state", spec_with(probes={"sensitivity": "mid.blocks.3"}),
     "probes.sensitivity.state: expected 'latents' or a block like 'high.blocks.20'"),
    ("sensitivity layer out of range", spec_with(probes={"sensitivity": {"state": "high.blocks.40"}}),
     "probes.sensitivity.state: layer 40 is out of range 0-39"),
    ("sensitivity on a missing expert", spec_with(model="tiny-ti2v", probes={"sensitivity": "low.blocks.3"}),
     "probes.sensitivity.state: a tiny-ti2v model has one transformer"),
    ("offload with sharding", spec_with(model={"name": "tiny", "gpus_per_worker": 2, "offload": True}),
     "model.offload: expected false with gpus_per_worker > 1"),
]


@pytest.mark.parametrize("label, data, expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_spec_names_the_field(label, data, expected):
    with pytest.raises(UsageError) as caught:
        validate(data)
    assert caught.value.exit_code == 2
    assert expected in str(caught.value), str(caught.value)


def test_good_spec_validates():
    spec = validate(GOOD)
    assert len(spec.points) == 1 and spec.family == "tiny-a14b"
    assert spec.points[0].settings.steps == 10  # the tiny family's default, not overridden
    assert len(spec.points[0].tasks) == 2


def test_all_problems_are_reported_at_once():
    data = spec_with(seed=[0], seeds=[1, 1], model={"name": "tiny", "wrkers": 2},
                     methods=["baseline", {"ensemble": {"merge": "avg"}}, "ensmble"],
                     probes={"x0": {"every": 0}}, sampler={"stepz": 3})
    with pytest.raises(SpecError) as caught:
        validate(data)
    paths = [path for path, _ in caught.value.problems]
    assert set(paths) == {"seed", "seeds", "model.wrkers", "methods[1].ensemble.merge", "methods[2].ensmble",
                          "probes.x0.every", "sampler.stepz"}
    assert str(caught.value).startswith("7 problem(s)")


def test_sampler_and_range_problems_are_reported_together():
    data = spec_with(sampler={"frames": 10}, **{ENSEMBLE + "layers": [20, 45]})
    with pytest.raises(SpecError) as caught:
        validate(data)
    assert {path for path, _ in caught.value.problems} == {"sampler.frames", "methods[1].ensemble.layers"}


def _write(tmp_path, data, name="bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("label, data, expected", [MALFORMED[1], MALFORMED[4], MALFORMED[21]],
                         ids=[MALFORMED[1][0], MALFORMED[4][0], MALFORMED[21][0]])
def test_cli_exits_2_and_writes_nothing(tmp_path, label, data, expected):
    spec = _write(tmp_path, data)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["plan", str(spec), "--out", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no store, no temp file


def test_cli_reports_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [tiny\n")
    result = CliRunner().invoke(main, ["spec", "check", str(bad)])
    assert result.exit_code == 2 and "not valid YAML" in result.output
    result = CliRunner().invoke(main, ["spec", "check", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_spec_check_in_a_process_exits_2(tmp_path):
    spec = _write(tmp_path, MALFORMED[4][1])
    done = subprocess.run([sys.executable, "-m", "cos_ray.cli", "spec", "check", str(spec)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "methods[1].ensemble.layers: layer 45 is out of range 0-39" in done.stderr


def test_a_long_problem_line_keeps_its_field_and_its_reason():
    """A path deep enough to push a problem past MAX_LINE loses the middle of the line, not the reason at its end
    (found under pytest-xdist, whose tmp paths are longer: "nested deeper than 3 ...")."""
    from cos_ray.spec.problems import MAX_LINE, SpecError

    folder = "/" + "/".join(["a-rather-long-checkout-folder"] * 12)
    reason = "not a weight index (nested deeper than 32 levels)"
    message = f"{folder} (original Wan layout): {folder}/index.json: {reason}"  # 2 x 360 characters of path
    (line,) = str(SpecError([("model.name", message)])).splitlines()
    assert len(line) == MAX_LINE and line.startswith("model.name: /a-rather") and line.endswith(reason), line
    assert " ... " in line
