"""export_evalkit lays videos out as VBVR-EvalKit's evaluate.py reads them: {split}/{task}/{idx}.mp4 per method/seed."""

from __future__ import annotations

import pytest

from cos_ray.errors import UsageError
from cos_ray.tasks.export import export_evalkit


@pytest.fixture
def videos(tmp_path):
    made = {}
    for name in ("a", "b", "c"):
        path = tmp_path / "runs" / f"{name}.mp4"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode() * 10)
        made[name] = path
    return made


def tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_layout_matches_evalkit(tmp_path, videos):
    out = tmp_path / "evalkit"
    written = export_evalkit([
        ("baseline", 0, "In-Domain_50", "maze", "00000", videos["a"]),
        ("baseline", 0, "In-Domain_50", "maze", 1, videos["b"]),
        ("ensemble-3", 0, "Out-of-Domain_50", "grid_path", "00004", videos["c"]),
        ("baseline", 1, "In-Domain_50", "maze", 0, videos["c"]),
    ], out)
    assert tree(out) == [
        "baseline/seed-0/In-Domain_50/maze/00000.mp4",
        "baseline/seed-0/In-Domain_50/maze/00001.mp4",
        "baseline/seed-1/In-Domain_50/maze/00000.mp4",
        "ensemble-3/seed-0/Out-of-Domain_50/grid_path/00004.mp4",
    ]
    assert sorted(written) == sorted([out / "baseline/seed-0", out / "baseline/seed-1", out / "ensemble-3/seed-0"])
    assert (out / "baseline/seed-0/In-Domain_50/maze/00001.mp4").read_bytes() == videos["b"].read_bytes()
    assert not [p for p in out.rglob(".*")]  # no staging left


@pytest.mark.parametrize("entry,message", [
    (("m", 0, "Open_60", "maze", 0, "a"), "split 'Open_60'"),
    (("m/x", 0, "In-Domain_50", "maze", 0, "a"), "method 'm/x'"),
    (("m", 0, "In-Domain_50", "maze", "1", "a"), "5-digit sample id"),
    (("m", "0", "In-Domain_50", "maze", 0, "a"), "seed '0'"),
    (("m", 0, "In-Domain_50", "maze", 0, "missing"), "no such file"),
    (("m", 0, "In-Domain_50", "maze"), "expected \\(method, seed"),
])
def test_bad_entries_are_refused_before_writing(tmp_path, videos, entry, message):
    entry = tuple(videos.get(v, tmp_path / "missing.mp4") if i == 5 else v for i, v in enumerate(entry))
    out = tmp_path / "evalkit"
    good = ("ok", 0, "In-Domain_50", "maze", 0, videos["a"])
    with pytest.raises(UsageError, match=message):
        export_evalkit([good, entry], out)
    assert not out.exists()


def test_duplicates_and_existing_folders(tmp_path, videos):
    out = tmp_path / "evalkit"
    entry = ("m", 0, "In-Domain_50", "maze", 0, videos["a"])
    with pytest.raises(UsageError, match="two videos for m/seed-0/In-Domain_50/maze/00000.mp4"):
        export_evalkit([entry, entry[:4] + ("00000", videos["b"])], out)
    export_evalkit([entry], out)
    with pytest.raises(UsageError, match="seed-0: already exists"):
        export_evalkit([entry], out)
    export_evalkit([entry[:5] + (videos["b"],)], out, overwrite=True)
    assert (out / "m/seed-0/In-Domain_50/maze/00000.mp4").read_bytes() == videos["b"].read_bytes()
    assert tree(out) == ["m/seed-0/In-Domain_50/maze/00000.mp4"]
