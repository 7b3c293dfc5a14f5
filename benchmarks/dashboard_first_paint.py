"""Dashboard first paint on a store of 10^5 runs: how long until a view is drawn. Target: < 2 s per view.

A synthetic finished sweep store (4 sweeps; baselines and 3-seed ensembles on 500 tasks; 50 steps per run; a
filmstrip per run pointing at a few real PNGs) is written with the store's own writers (`write_unit`, a few large
unit files) and compacted, as a finished sweep is. Then, per view (Sweeps, Runs, Compare, Chain-of-Steps):

- AppTest, cold: `AppTest.from_file(app).run()` with Streamlit's caches cleared - a freshly started server's first
  page (open the store, list its files, every query of the view and the sidebar filters); the modules are imported
  beforehand on a tiny store, as a running server has them;
- AppTest, warm: the same page again (cached queries: a second visitor, or a widget rerun);
- browser: `cos-ray dashboard` served on loopback, headless Chromium opening `/?view=V` in a fresh session, from
  `get` until the view's header is shown and the script has finished ("Running..." gone). The first view opened
  pays the server's one-time imports; `--no-browser` skips this part.

    python benchmarks/dashboard_first_paint.py [--runs 100000] [--steps 50] [--files 10] [--repeats 5] [--no-browser]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from cos_ray.dashboard.server import APP, streamlit_command
from cos_ray.store.compact import compact_store
from cos_ray.store.location import Store
from cos_ray.store.rows import sweep_row
from cos_ray.store.write import write_media, write_sweep, write_unit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from served_dashboard import free_port, headless_chromium, serving  # noqa: E402  (shared with the browser tests)

VIEWS = {"Sweeps": "Sweeps", "Runs": "Runs", "Compare": "Method comparison", "Chain-of-Steps": "Chain-of-Steps"}
TARGET_S = 2.0
TASKS = 500
FAMILIES = ("maze", "grid_path", "sokoban", "tangram", "pipes")
ENSEMBLES = [{"size": 3, "layers": "20-29", "steps": steps, "merge": merge}
             for merge in ("stream", "update") for steps in ("0-9", "0-19")]
FILMSTRIPS = 8


def synthetic(runs: int, steps: int, seed: int = 0) -> tuple[pa.Table, pa.Table, list[tuple[str, list[str]]]]:
    """Runs and steps tables of `runs` runs (about half baselines, half ensemble members), and 4 sweeps' unit ids."""
    from cos_ray.sampler import default_settings

    rng = np.random.default_rng(seed)
    settings = json.dumps(default_settings("tiny-a14b").as_dict(), sort_keys=True)
    ensemble_units = (runs // 2) // 3
    baselines = runs - 3 * ensemble_units
    # baselines: task t, seed s; ensembles: setting k, task t, seeds S..S+2 with S a multiple of 3
    b = np.arange(baselines)
    u = np.arange(ensemble_units)
    unit_task = np.concatenate([b % TASKS, u % TASKS])
    unit_seed = np.concatenate([b // TASKS, 3 * ((u // TASKS) // len(ENSEMBLES))])
    unit_setting = np.concatenate([np.full(baselines, -1), (u // TASKS) % len(ENSEMBLES)])
    unit_size = np.where(unit_setting < 0, 1, 3)
    unit_ids = np.array([f"{index:016x}" for index in range(len(unit_size))])
    # one row per run
    unit_of_run = np.repeat(np.arange(len(unit_size)), unit_size)
    member = np.arange(len(unit_of_run)) - np.repeat(np.cumsum(unit_size) - unit_size, unit_size)
    count = len(unit_of_run)
    run_ids = np.char.add(np.char.add(unit_ids[unit_of_run], "-"), member.astype(str))
    task = unit_task[unit_of_run]
    family = np.array(FAMILIES)[task % len(FAMILIES)]
    task_ids = np.char.add(np.char.add(np.char.add("In-Domain_50/", family), "/"), np.char.zfill(task.astype(str), 5))
    setting = unit_setting[unit_of_run]
    method = np.where(setting < 0, "baseline", "ensemble")
    params = np.array(["{}"] + [json.dumps(p, sort_keys=True) for p in ENSEMBLES])[setting + 1]
    score = np.clip(rng.normal(0.55, 0.25, count) + 0.03 * (setting >= 0), 0, 1)
    overall = np.clip(0.5 * score + rng.normal(0.25, 0.05, count), 0, 1)
    lock_in = np.where(score > 0.6, rng.integers(0, steps, count), -1)
    status = np.where(rng.uniform(size=count) < 0.01, "failed", "ok")
    sweep_of_run = unit_of_run % 4
    started = datetime(2026, 1, 1, tzinfo=timezone.utc) + np.arange(count) * timedelta(seconds=2)
    media = np.char.add(np.char.add("media/bench", (np.arange(count) % FILMSTRIPS).astype(str)), "/member-0/film")
    runs_table = pa.table({
        "sweep_id": np.char.add("benchsweep", sweep_of_run.astype(str)), "unit_id": unit_ids[unit_of_run],
        "run_id": run_ids, "member": member.astype(np.int32), "task_id": task_ids, "task_family": family,
        "seed": (unit_seed[unit_of_run] + member).astype(np.int64), "method": method, "params": params,
        "model": np.full(count, "tiny"), "settings": np.full(count, settings), "score": score,
        "score_overall": overall, "scores": [json.dumps({"task_specific": s, "overall": o}) for s, o in
                                             zip(score.tolist(), overall.tolist())],
        "lock_in_step": pa.array(lock_in.astype(np.int32), mask=lock_in < 0),
        "flips": rng.integers(0, 3, count).astype(np.int32), "status": status,
        "duration_s": rng.uniform(60, 120, count), "worker": np.char.add("10.0.0.", (unit_of_run % 16).astype(str)),
        "device": np.full(count, "cuda:0"), "started_at": pa.array(started, pa.timestamp("us", tz="UTC")),
        "finished_at": pa.array(started + timedelta(seconds=90), pa.timestamp("us", tz="UTC")),
        "video": np.char.add(media, ".mp4"), "filmstrip": np.char.add(media, ".png"),
    })
    step = np.tile(np.arange(steps, dtype=np.int32), count)
    progress = step / max(steps - 1, 1)
    decoded = step % 2 == 0  # x0 decoded and scored every other step
    steps_table = pa.table({
        "run_id": np.repeat(run_ids, steps), "unit_id": np.repeat(unit_ids[unit_of_run], steps), "step": step,
        "timestep": 1000.0 * (1 - progress), "sigma": 1 - progress,
        "expert": np.where(progress < 0.125, "high", "low"),
        "x0_mean": rng.normal(0, 0.1, count * steps), "x0_std": rng.uniform(0.5, 1.5, count * steps),
        "x0_change": rng.uniform(0, 0.2, count * steps),
        "score": pa.array(np.repeat(score, steps) * progress, mask=~decoded),
    })
    sweeps = [(f"benchsweep{k}", unit_ids[np.arange(len(unit_size)) % 4 == k].tolist()) for k in range(4)]
    return runs_table, steps_table, sweeps


def build_store(root: Path, runs: int, steps: int, files: int) -> Store:
    """Write the synthetic store in `files` unit files per table, its sweeps and filmstrips, then compact it."""
    from PIL import Image

    store = Store(root)
    runs_table, steps_table, sweeps = synthetic(runs, steps)
    per_file = -(-runs_table.num_rows // files)
    for index in range(files):
        start = index * per_file
        write_unit(store, f"bench{index:03d}", runs_table.slice(start, per_file),
                   steps_table.slice(start * steps, per_file * steps))
    now = datetime.now(timezone.utc)
    for number, (sweep_id, unit_ids) in enumerate(sweeps):
        write_sweep(store, sweep_row(sweep_id, f"bench-{number}", "bench.yaml", {}, "tiny", unit_ids, "done",
                                     done=len(unit_ids), started_at=now, finished_at=now))
    rng = np.random.default_rng(1)
    for index in range(FILMSTRIPS):  # 25 decoded steps x 5 frames of 64x64, as the tiny preset's filmstrips
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (25 * 64, 5 * 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
        write_media(store, f"media/bench{index}/member-0/film.png", buffer.getvalue())
    compact_store(store)
    return store


def apptest_paint(view: str | None, cold: bool) -> float:
    """Seconds for `AppTest.from_file(app).run()` on `view` (None: an empty Streamlit page, AppTest's own cost)."""
    import streamlit as st
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    if cold:
        streamlit.logger.set_log_level("error")  # clearing the caches outside a server warns
        st.cache_data.clear()
        st.cache_resource.clear()
    if view is None:
        app = AppTest.from_string(EMPTY_PAGE, default_timeout=600)
    else:
        app = AppTest.from_file(str(APP), default_timeout=600)
        app.query_params["view"] = view
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.header[0].value == HEADERS[view], (view, app.header[0].value)
    return elapsed


EMPTY_PAGE = """import streamlit as st
st.set_page_config(layout="wide")
st.sidebar.radio("View", ["Sweeps"], key="view")
st.header("Empty")
"""
HEADERS = {**VIEWS, None: "Empty"}


def browser_paint(browser, url: str, header: str) -> float:
    """Seconds from `get` (a fresh session) until `header` is shown and the script has finished."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def painted(d) -> bool:
        shown = [element.text for element in d.find_elements(By.CSS_SELECTOR, "[data-testid=stMain] h2")]
        return shown[:1] == [header] and not d.find_elements(By.CSS_SELECTOR, "[data-testid=stStatusWidget]")

    browser.get("about:blank")
    start = time.perf_counter()
    browser.get(url)
    WebDriverWait(browser, 120, poll_frequency=0.05).until(painted, f"{url}: {header!r} not drawn")
    return time.perf_counter() - start


def browser_paints(store: Store, folder: Path, repeats: int) -> dict:
    """Per view: browser seconds on `cos-ray dashboard` (the first sample of the first view is the server's first
    page, imports included); None: an empty Streamlit page's, the floor of Streamlit and Chromium here."""
    times: dict = {view: [] for view in [None, *VIEWS]}
    empty = folder / "empty_page.py"
    empty.write_text(EMPTY_PAGE)
    with headless_chromium(120) as browser:
        port = free_port()
        with serving([sys.executable, "-m", "cos_ray.cli", "dashboard", "--out", store.root, "--port", str(port)],
                     port, folder / "dashboard.log", 120) as url:
            for _ in range(repeats):
                for view, header in VIEWS.items():
                    times[view].append(browser_paint(browser, f"{url}/?view={view}", header))
        port = free_port()
        with serving(streamlit_command(store.root, port, "127.0.0.1", app=empty), port, folder / "empty.log",
                     120) as url:
            browser_paint(browser, url, "Empty")
            times[None] = [browser_paint(browser, url, "Empty") for _ in range(repeats)]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50, help="steps rows per run")
    parser.add_argument("--files", type=int, default=10, help="unit files per table before compaction")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="AppTest only (no server, no Chromium)")
    parser.add_argument("--dir", help="where to write the store (default: a temporary folder, removed after)")
    args = parser.parse_args()

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cos-ray-paint-"))
    try:
        start = time.perf_counter()
        store = build_store(root / "store", args.runs, args.steps, args.files)
        print(f"store: {args.runs:,} runs, {args.runs * args.steps:,} step rows, written in {args.files} unit files "
              f"and compacted in {time.perf_counter() - start:.1f} s")

        os.environ["COS_RAY_STORE"] = build_store(root / "tiny", 40, 4, 1).root
        for view in VIEWS:  # imports (streamlit, duckdb, altair, scipy) before timing, as a running server has them
            apptest_paint(view, cold=True)
        os.environ["COS_RAY_STORE"] = store.root
        cold: dict = {view: [] for view in [None, *VIEWS]}
        warm: dict = {view: [] for view in [None, *VIEWS]}
        for _ in range(args.repeats):
            for view in cold:
                cold[view].append(apptest_paint(view, cold=True))
                warm[view].append(apptest_paint(view, cold=False))
        browser = None if args.no_browser else browser_paints(store, root, args.repeats)

        median = statistics.median
        print(f"\nseconds, median of {args.repeats}; ratio: the worst column over the {TARGET_S:.0f} s target\n")
        head = "| view | AppTest cold | AppTest warm |" + (" browser: first, median |" if browser else "")
        print(head + " ratio to target |")
        print("|---" * head.count("|") + "|")
        for view in cold:
            line = f"| {view or 'empty page (floor)'} | {median(cold[view]):.2f} | {median(warm[view]):.2f} |"
            worst = median(cold[view])
            if browser:
                line += f" {browser[view][0]:.2f}, {median(browser[view]):.2f} |"
                worst = max(worst, median(browser[view]))
            print(line + f" {worst / TARGET_S:.2f} |")
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
