"""The dashboard on a store of the trained tiny reasoner shows its answer: a real sweep of the shipped `tiny-reasoner`
preset on a held-out maze (task seed 9: a route the shipped model draws from step 2 on - most 4x4 mazes it answers
at step 0 already; x̂0 decoded at every step, as jobs/tiny-reasoner-heldout.yaml), served by `cos-ray dashboard`,
opened in headless Chromium. The filmstrip the page shows - its <img>'s bytes fetched by the page, and the element
as rendered on screen - is read cell by cell against the generator's ground-truth route: at the last step the last
frame draws the route in orange, at step 0 it does not yet (the answer emerges along the steps).

The other views on a random-weight store are covered by test_dashboard_browser.py; this one checks what issue 17 asks
of the shipped model (the path visible), and keeps the screenshot that docs/dashboard.md shows.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from served_dashboard import headless_chromium
from test_dashboard_browser import WAIT, _css, _texts, dashboard, screenshot, settle
from test_dashboard_stores import read

pytestmark = pytest.mark.timeout(300)

MAZE = {"family": "maze", "n": 1, "seed": 9, "params": {"cells": 4, "size": 64, "frames": 9}}
SPEC = f"""\
name: tiny-reasoner-filmstrip
model: {{name: tiny-reasoner, workers: 1}}
tasks: {{generate: {json.dumps(MAZE)}}}
seeds: [0]
methods: [baseline]
probes:
  x0: {{every: 1, decode: true}}
"""
STEPS = 10  # the tiny-a14b family's default sampler: one filmstrip row per step (x̂0 decoded at every step)
SHOWN = 8  # filmstrip columns: 9 frames, at most 8 shown (X0Config.max_frames), first and last included
TILE = 64  # a frame's side in the filmstrip PNG (64 px frames are below X0Config.max_side: not resized)


@pytest.fixture(scope="module")
def reasoner_store(ray_cluster, tmp_path_factory) -> Path:
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("tiny-reasoner-sweep")
    (folder / "spec.yaml").write_text(SPEC)
    report = run_sweep(str(folder / "spec.yaml"), str(folder / "results"), progress=False)
    assert report.status == "done", report
    return folder / "results"


@pytest.fixture(scope="module")
def maze(tmp_path_factory) -> dict:
    """The ground truth of the swept maze, from the generator itself (not from the store)."""
    from cos_ray.tasks.generation import generate_tasks

    (folder,) = generate_tasks(MAZE["family"], MAZE["n"], MAZE["seed"], tmp_path_factory.mktemp("maze"),
                               **MAZE["params"])
    return json.loads((folder / "task.json").read_text())


def tiles(image: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """`# (rows * h, columns * w, 3)` -> `# (rows, columns, h, w, 3)`: the filmstrip's frames (rows: steps)."""
    height, width = image.shape[0] // rows, image.shape[1] // columns
    image = image[: rows * height, : columns * width]
    return image.reshape(rows, height, columns, width, 3).transpose(0, 2, 1, 3, 4)


def orange_cells(frame: np.ndarray, grid: dict) -> set:
    """The maze cells drawn orange in `frame` `# (s, s, 3)`, a frame of side s: the generator's grid (64 px frames)
    scaled to s, read by the scorers' own cell test (`solved.drawn_cells`)."""
    from cos_ray.figures.maze_route import drawn_cells

    scale = frame.shape[1] / MAZE["params"]["size"]
    return drawn_cells(frame, {"origin": grid["origin"] * scale, "cell": grid["cell"] * scale, "cells": grid["cells"]})


def assert_path_visible(image: np.ndarray, maze: dict, where: str) -> None:
    """Last row (final step), last frame: exactly the route's cells are orange (the start and goal markers cover
    theirs); first row (step 0), last frame: not that drawing yet (the answer emerges), and the rows differ."""
    strip = tiles(image, STEPS, SHOWN)  # (steps, shown, s, s, 3)
    route = {tuple(cell) for cell in maze["route"]}
    inner = route - {tuple(maze["start"]), tuple(maze["goal"])}
    final, first = orange_cells(strip[-1, -1], maze["grid"]), orange_cells(strip[0, -1], maze["grid"])
    assert final - {tuple(maze["start"]), tuple(maze["goal"])} == inner, (
        f"{where}: the final step's last frame draws {sorted(final)}, the route is {sorted(route)}")
    assert first != final, f"{where}: step 0 already draws the final answer {sorted(final)}"
    change = np.abs(strip[0].astype(int) - strip[-1].astype(int)).mean()
    assert change > 1.0, f"{where}: step 0 and the last step look alike (mean |difference| {change:.2f})"


def test_chain_of_steps_shows_the_reasoners_path(reasoner_store, maze, tmp_path):
    (run,) = read(reasoner_store, "runs").to_pylist()
    assert run["model"] == "tiny-reasoner" and run["task_id"].endswith("maze/00000") and run["filmstrip"], run
    stored = np.asarray(Image.open(reasoner_store / run["filmstrip"]).convert("RGB"))
    assert stored.shape == (STEPS * TILE, SHOWN * TILE, 3), stored.shape

    def filmstrip_loaded(d) -> bool:
        return d.execute_script("const image = document.querySelector(arguments[0]); "
                                "return !!image && image.complete && image.naturalWidth > 0",
                                "[data-testid=stImage] img")

    with (dashboard(reasoner_store, tmp_path / "server.log") as url, headless_chromium(WAIT) as driver):
        driver.set_window_size(1400, 1800)  # the filmstrip section whole in one screenshot
        driver.get(f"{url}/?view=Chain-of-Steps")
        settle(driver, "Chain-of-Steps", until=filmstrip_loaded)
        (element,) = _css(driver, "[data-testid=stImage] img")
        (heading,) = [h for h in _css(driver, "[data-testid=stMain] h3") if "filmstrips" in h.text]
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", heading)
        fetched = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0].src).then(answer => answer.arrayBuffer()).then(buffer => {
                let text = '';
                for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
                done(btoa(text));
            }).catch(error => done('failed: ' + error));""", element)
        assert not fetched.startswith("failed"), fetched
        rendered = driver.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                         "return [r.width, r.height]", element)
        on_screen = np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB"))
        screenshot(driver, tmp_path / "chain-tiny-reasoner.png")
        (captions,) = _texts(driver, "[data-testid=stMain]")  # the run's line above, the image's caption below

    assert run["run_id"] in captions and f"steps {', '.join(map(str, range(STEPS)))}" in captions, captions
    served = np.asarray(Image.open(io.BytesIO(base64.b64decode(fetched))).convert("RGB"))
    assert np.array_equal(served, stored), "the page shows the store's filmstrip, pixel for pixel"
    assert_path_visible(served, maze, "the served filmstrip")
    assert rendered[0] / SHOWN >= TILE, f"frames shown {rendered[0] / SHOWN:.0f} px wide: smaller than drawn"
    assert abs(on_screen.shape[1] - rendered[0]) <= 2 and abs(on_screen.shape[0] - rendered[1]) <= 2, (
        on_screen.shape, rendered)
    assert_path_visible(on_screen, maze, "the filmstrip on screen")
    print(f"filmstrip {served.shape[1]}x{served.shape[0]} px shown at {rendered[0]:.0f}x{rendered[1]:.0f} px; "
          f"page screenshot {tmp_path / 'chain-tiny-reasoner.png'}")
