"""Issue 27's bad files and folders, as the attacks were made (real `cos-ray` processes, real files): a sample's
task.json nested 2,000 deep or 300 MB (row 6), EvalKit results nested deep or /dev/zero (row 7), an export whose
method folder is a file (row 9), `submit --out` an existing file (row 10). Each: exit 2, one line naming the file, no
traceback, nothing written; memory and CPU from the kernel (`os.wait4`, through test_spec_hostile's launcher).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_spec_hostile import run_cli

RSS_LIMIT_MB = 300  # a refusal's whole process; reading the 300 MB file whole would pass it on its own
CPU_LIMIT_S = 10.0

TRIVIAL = """\
name: trivial
model: tiny
tasks: {generate: {family: maze, n: 1, seed: 3}}
seeds: [0]
methods: [first_frame]
"""


def refused(result: dict, *phrases: str) -> str:
    """The one error line of a refused command (exit 2, no traceback, bounded), holding every phrase."""
    output = result["stdout"] + result["stderr"]
    assert result["code"] == 2, output
    assert "Traceback" not in output, output
    assert result["cpu"] < CPU_LIMIT_S and result["rss_mb"] < RSS_LIMIT_MB, (result["cpu"], result["rss_mb"])
    for phrase in phrases:
        assert phrase in result["stderr"], output
    return result["stderr"]


@pytest.fixture(scope="module")
def sample_tree(tmp_path_factory) -> Path:
    """A VBVR-layout tree of one generated maze sample (its task.json rewritten by the tests)."""
    root = tmp_path_factory.mktemp("samples")
    subprocess.run([sys.executable, "-m", "cos_ray.cli", "tasks", "generate", "maze", "--n", "1", "--out",
                    str(root / "tree")], check=True, capture_output=True, timeout=120)
    return root / "tree"


def _spec_over(folder: Path, tree: Path) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(f"name: hostile\nmodel: tiny\ntasks: {{folder: '{tree}'}}\nseeds: [0]\nmethods: [baseline]\n")
    return spec


@pytest.mark.parametrize("command", ["spec check", "submit"])
def test_a_task_json_nested_2000_deep_is_refused(sample_tree, tmp_path, command):
    meta = sample_tree / "In-Domain_50" / "maze" / "00000" / "task.json"
    meta.write_text("[" * 2000 + "]" * 2000)
    spec = _spec_over(tmp_path, sample_tree)

    result = run_cli([*command.split(), str(spec), *(["--out", str(tmp_path / "store")] if command == "submit"
                                                    else [])], tmp_path)

    refused(result, "task.json", "nested deeper than 32 levels")
    assert not (tmp_path / "store").exists()


def test_a_300_mb_task_json_is_refused_unread(sample_tree, tmp_path):
    meta = sample_tree / "In-Domain_50" / "maze" / "00000" / "task.json"
    with meta.open("wb") as handle:
        handle.truncate(300 << 20)  # sparse: 300 MB to any reader, no disk used
    spec = _spec_over(tmp_path, sample_tree)

    result = run_cli(["spec", "check", str(spec)], tmp_path)

    refused(result, "task.json", "314,572,800 bytes exceeds the limit of 4,194,304 bytes")


@pytest.mark.parametrize("kind", ["deep", "dev_zero"])
def test_evalkit_results_deep_or_endless_are_refused(tmp_path, kind):
    results = tmp_path / "results.json"
    if kind == "deep":
        results.write_text('{"samples": ' + "[" * 100_000 + "]" * 100_000 + "}")
    else:
        results = Path("/dev/zero")

    result = run_cli(["score", "some-sweep", "--evalkit-results", str(results), "--out", str(tmp_path / "store")],
                     tmp_path)

    refused(result, f"--evalkit-results {results}",
            "nested deeper than 32 levels" if kind == "deep" else "is a character device, not a regular file")


@pytest.fixture(scope="module")
def trivial_store(tmp_path_factory) -> Path:
    """A real store holding one finished trivial-baseline run with its video (no model, no Ray)."""
    root = tmp_path_factory.mktemp("trivial")
    (root / "trivial.yaml").write_text(TRIVIAL)
    done = subprocess.run([sys.executable, "-m", "cos_ray.cli", "submit", str(root / "trivial.yaml"), "--out",
                           str(root / "store"), "--local", "--no-progress"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "store"


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("blocker", ["first_frame", "first_frame/seed-0", "gt"])
def test_export_into_a_file_where_a_folder_goes_writes_nothing(trivial_store, tmp_path, blocker, overwrite):
    target = tmp_path / "evalkit"
    (target / blocker).parent.mkdir(parents=True, exist_ok=True)
    (target / blocker).write_text("a user's file\n")
    before = _tree(target)

    result = run_cli(["export", "trivial", "--evalkit", str(target), "--out", str(trivial_store),
                      *(["--overwrite"] if overwrite else [])], tmp_path)

    refused(result, f"{target / blocker}", "is a file, not a folder")
    assert _tree(target) == before  # the file kept, no method folder, no `.seed-0.old-*` or staging folder


def test_submit_out_an_existing_file_is_refused(tmp_path):
    spec = tmp_path / "trivial.yaml"
    spec.write_text(TRIVIAL)
    out = tmp_path / "results"
    out.write_text("a user's file\n")

    result = run_cli(["submit", str(spec), "--out", str(out), "--no-progress"], tmp_path)

    refused(result, f"--out {out}: is a file, not a folder")
    assert out.read_text() == "a user's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "trivial.yaml"]
