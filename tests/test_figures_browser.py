"""One number, one implementation: the dashboard's Probes and Compare views, in headless Chromium, show the same
numbers as the CSVs `cos-ray figures` wrote for the same store (a probe store: noise at step / frame, swaps, energy,
CKA). Needs /usr/bin/chromium and /usr/bin/chromedriver, as tests/test_dashboard_browser.py."""

from __future__ import annotations

import pytest

from test_dashboard_browser import cells, charts_drawn, dashboard, grids_filled, settle, show
from test_dashboard_stores import write_probe_store
from test_figures_probes import cli, read_csv
from served_dashboard import headless_chromium

pytestmark = pytest.mark.timeout(300)
WAIT = 60


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe-store")
    store = write_probe_store(root / "store")
    code, out, err = cli("figures", "probes", "--to", str(root / "figures"), "--out", str(store))
    assert code == 0, out + err
    return store, root / "figures"


@pytest.fixture(scope="module")
def page(drawn, tmp_path_factory):
    store, _ = drawn
    with dashboard(store, tmp_path_factory.mktemp("dashboard") / "server.log") as url:
        with headless_chromium(WAIT) as driver:
            driver.get(url)
            settle(driver, "Sweeps")
            yield driver


def numbers(texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        try:
            out.append(float(text.replace(",", "")))
        except ValueError:
            pass
    return out


def shown(value: float, on_page: list[float]) -> bool:
    """`value` is on the page as the grid prints it (rounded to 4 places at most)."""
    return any(abs(value - x) <= 5.1e-5 for x in on_page)


def test_probes_view_shows_the_fig3b_csv(page, drawn):
    _, figures = drawn
    rows = [r for r in read_csv(figures / "fig3b.csv") if r["method"] != "baseline"]
    show(page, "Probes", until=lambda d: charts_drawn(d) and grids_filled(d, 1))
    on_page = numbers(cells(page))
    assert rows and all(shown(r[key], on_page) for r in rows for key in ("mean", "ci_low", "ci_high")), (rows, on_page)


def test_compare_view_shows_the_compare_csv(page, drawn):
    _, figures = drawn
    rows = read_csv(figures / "compare.csv")
    show(page, "Compare", until=lambda d: charts_drawn(d) and grids_filled(d, 1))
    texts = cells(page)
    on_page = numbers(texts)
    visible = [r for r in rows if r["setting"] in texts]
    assert len(visible) >= 5, texts
    for row in visible:
        assert all(shown(row[key], on_page) for key in ("mean", "ci_low", "ci_high")), (row, on_page)
