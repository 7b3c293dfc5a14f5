"""The dashboard in a real browser: `cos-ray dashboard` serves the small sweep's store on loopback and headless
Chromium (selenium) opens every view. AppTest runs the script without a browser; this checks what a user gets - the
server, the websocket, the rendered page, media URLs - and keeps a screenshot of each view.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian `chromium`, `chromium-driver`; `.ci/run` installs them):
without them the tests fail, they do not skip. The server and the browser are started by `served_dashboard`.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from served_dashboard import free_port, headless_chromium, serving
from test_dashboard_stores import read, write_probe_store

pytestmark = pytest.mark.timeout(300)  # the first test also waits for the session's small sweep (~30 s)

HEADERS = {"Sweeps": "Sweeps", "Runs": "Runs", "Compare": "Method comparison", "Chain-of-Steps": "Chain-of-Steps",
           "Probes": "Probes", "SQL": "SQL"}
WAIT = 60  # seconds for a view to render: 2 shared cores, and a view's first queries run in DuckDB
START = 90  # seconds for the server to answer its health check


@contextmanager
def dashboard(store: Path, log_path: Path):
    """`cos-ray dashboard` on a free loopback port; yields its URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "cos_ray.cli", "dashboard", "--out", str(store), "--port", str(port)]
    with serving(command, port, log_path, START) as url:
        yield url


@pytest.fixture(scope="module")
def server(small_sweep, tmp_path_factory):
    _, store, _ = small_sweep
    with dashboard(store, tmp_path_factory.mktemp("dashboard") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def driver():
    with headless_chromium(WAIT) as browser:
        yield browser


@pytest.fixture(scope="module")
def page(server, driver):
    driver.get(server)
    settle(driver, "Sweeps")
    return driver


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _texts(driver, selector: str) -> list[str]:
    """The text of every element matching `selector`, read in one script: Streamlit re-renders elements between a
    find and a per-element read, which would raise StaleElementReferenceException."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent.trim())", selector)


def settle(driver, view: str, until=None) -> None:
    """Wait until the view's header is shown, the script has finished ("Running..." gone, nothing stale) and `until`
    holds; then check that the page shows no exception and no error."""
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d) -> bool:
        return (_texts(d, "[data-testid=stMain] [data-testid=stHeading] h2")[:1] == [HEADERS[view]]
                and not _css(d, "[data-testid=stStatusWidget]") and not _css(d, "[data-stale=true]")
                and (until is None or until(d)))

    WebDriverWait(driver, WAIT, poll_frequency=0.2).until(done, f"the {view} view did not render within {WAIT} s")
    problems = _texts(driver, "[data-testid=stException], [data-testid=stAlertContentError]")
    assert not problems, f"{view}: {problems}"


def show(driver, view: str, until=None) -> None:
    """Pick `view` in the sidebar's radio (key "view") and wait for it. The sidebar may be re-rendering: the option is
    waited for, and found again if it was replaced before the click."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    option = (By.XPATH, "//*[contains(@class, 'st-key-view')]//label[@data-testid="
                        f"'stRadioOption'][normalize-space()='{view}']")

    def clicked(d) -> bool:
        found = d.find_elements(*option)
        if not found:
            return False
        found[0].click()
        return True

    WebDriverWait(driver, WAIT, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        clicked, f"the sidebar offered no {view!r} option within {WAIT} s")
    settle(driver, view, until)


def screenshot(driver, path: Path) -> None:
    assert driver.save_screenshot(str(path)), path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= 1000 and image.height >= 800, image
        low, high = image.convert("L").getextrema()
    assert path.stat().st_size > 20_000 and high - low > 150, f"{path}: a blank page?"


def metrics(driver) -> dict:
    labels = _texts(driver, "[data-testid=stMetricLabel]")
    values = _texts(driver, "[data-testid=stMetricValue]")
    return dict(zip(labels, values))


def cells(driver) -> list[str]:
    """The text of the dataframes' cells (the grid draws on a canvas; its accessible table holds the text)."""
    return _texts(driver, "[data-testid=stDataFrame] td[role=gridcell]")


def grids_filled(driver, count: int) -> bool:
    """At least `count` dataframes are on the page and every one has drawn its cells (each grid fills on its own)."""
    grids = _css(driver, "[data-testid=stDataFrame]")
    return len(grids) >= count and all(grid.find_elements("css selector", "td[role=gridcell]") for grid in grids)


def charts_drawn(driver) -> bool:
    return bool(_css(driver, "[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg"))


def test_sweeps_view(page, small_sweep, tmp_path):
    _, store, _ = small_sweep
    runs, sweeps = read(store, "runs"), read(store, "sweeps").to_pylist()
    show(page, "Runs")  # away and back: the radio, not the page load, renders it
    show(page, "Sweeps", until=lambda d: sweeps[0]["sweep_id"] in cells(d))
    screenshot(page, tmp_path / "sweeps.png")
    assert metrics(page) == {"Sweeps": "1", "Runs": str(runs.num_rows),
                             "Step rows": f"{read(store, 'steps').num_rows:,}"}
    assert "done" in cells(page)


def test_runs_view(page, small_sweep, tmp_path):
    _, store, _ = small_sweep
    runs = read(store, "runs").to_pylist()
    show(page, "Runs", until=lambda d: "Runs" in metrics(d) and cells(d))
    screenshot(page, tmp_path / "runs.png")
    shown = metrics(page)
    assert shown["Runs"] == str(len(runs)) and shown["OK"] == str(len(runs)) and shown["Failed"] == "0"
    run_ids = {row["run_id"] for row in runs}
    assert run_ids & set(cells(page)), "the page's rows are the store's runs"


def test_compare_view(page, tmp_path):
    show(page, "Compare", until=lambda d: charts_drawn(d) and grids_filled(d, 2))  # each grid draws after the charts
    screenshot(page, tmp_path / "compare.png")
    assert _texts(page, "[data-testid=stMain] h3") == ["Score: score", "Score: score_overall"]
    assert "baseline" in cells(page) and any(cell.startswith("ensemble (") for cell in cells(page))


def test_chain_of_steps_view_shows_a_filmstrip(page, small_sweep, tmp_path):
    _, store, _ = small_sweep
    with_filmstrip = {row["run_id"] for row in read(store, "runs").to_pylist() if row["filmstrip"]}

    def filmstrip_loaded(d) -> bool:
        return d.execute_script("const image = document.querySelector(arguments[0]); "
                                "return !!image && image.complete && image.naturalWidth > 0", "[data-testid=stImage] img")

    show(page, "Chain-of-Steps", until=lambda d: charts_drawn(d) and filmstrip_loaded(d))
    (image,) = _css(page, "[data-testid=stImage] img")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    screenshot(page, tmp_path / "chain.png")
    captions = " ".join(_texts(page, "[data-testid=stMarkdownContainer]"))
    assert any(run_id in captions for run_id in with_filmstrip), "the filmstrip's run is named above it"


def test_probes_view_without_probes(page, tmp_path):
    show(page, "Probes")
    screenshot(page, tmp_path / "probes.png")
    assert any("no probe runs in this store" in text for text in _texts(page, "[data-testid=stAlertContentInfo]"))


def test_sql_view_runs_a_query_typed_in_the_box(page, small_sweep, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    _, store, _ = small_sweep
    baselines = sorted(row["run_id"] for row in read(store, "runs").to_pylist() if row["method"] == "baseline")
    captions = "[data-testid=stMain] [data-testid=stCaptionContainer]"
    show(page, "SQL", until=lambda d: any("row(s)" in text for text in _texts(d, captions))
         and {"baseline", "ensemble"} <= set(cells(d)))  # the example query's answer

    def run(sql: str, until) -> None:
        box = page.find_element(By.CSS_SELECTOR, ".st-key-sql_text textarea")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(sql)
        page.find_element(By.CSS_SELECTOR, "[data-testid=stFormSubmitButton] button").click()
        WebDriverWait(page, WAIT, poll_frequency=0.2).until(
            lambda d: until(d) and not _css(d, "[data-testid=stStatusWidget]"), f"no answer to {sql!r}")

    run("SELECT run_id, score FROM runs WHERE method = 'baseline' ORDER BY run_id",
        lambda d: f"{len(baselines)} row(s) (at most 10,000 shown)" in _texts(d, captions)
        and set(baselines) <= set(cells(d)))
    assert not _css(page, "[data-testid=stException], [data-testid=stAlertContentError]")
    assert [cell for cell in cells(page) if cell in baselines] == baselines
    screenshot(page, tmp_path / "sql.png")

    run("COPY runs TO 'stolen.parquet'", lambda d: _css(d, "[data-testid=stAlertContentError]"))
    assert any("SELECT statements only" in text for text in _texts(page, "[data-testid=stAlertContentError]"))


def test_probes_view_on_a_store_with_probes(driver, tmp_path):
    """A second server, on a store with probe rows: the four probe sections and their charts are drawn."""
    root = write_probe_store(tmp_path / "store")
    with dashboard(root, tmp_path / "server.log") as url:
        driver.get(f"{url}/?view=Probes")
        settle(driver, "Probes", until=lambda d: len(_css(d, "[data-testid=stVegaLiteChart]")) == 5
               and charts_drawn(d))
        screenshot(driver, tmp_path / "probes-store.png")
        assert _texts(driver, "[data-testid=stMain] h3") == [
            "Noise at step vs noise at frame", "Sensitivity (CKA dissimilarity to the clean run)",
            "Layer activation energy", "Latent swap outcome by layer"]


def test_streamlit_run_dashboards_app(small_sweep, driver, tmp_path):
    """Streamlit users' habit, `streamlit run dashboards/app.py -- --out results`: the thin top-level entry serves
    the package's app - the same views over the same store (here Compare and Chain-of-Steps)."""
    _, store, _ = small_sweep
    entry = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(entry), "--server.headless", "true", "--server.port",
               str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--", "--out", str(store)]
    with serving(command, port, tmp_path / "server.log", START) as url:
        driver.get(f"{url}/?view=Compare")
        settle(driver, "Compare", until=lambda d: charts_drawn(d) and grids_filled(d, 2))
        assert "baseline" in cells(driver) and any(cell.startswith("ensemble (") for cell in cells(driver))
        screenshot(driver, tmp_path / "entry-compare.png")
        show(driver, "Chain-of-Steps", until=charts_drawn)
        sidebar = _texts(driver, "[data-testid=stSidebar] [data-testid=stCaptionContainer]")
        assert any(str(store) in text for text in sidebar), sidebar
