"""A shared dashboard: a token beyond loopback, and SQL-box queries that cannot stall other viewers.

`cos-ray dashboard --address 0.0.0.0` is started for real (a gate in front of Streamlit); the tests only ever
connect to 127.0.0.1. Without the token every path is refused - the page, the health check and the websocket that
carries all data - and with it (URL once, then the cookie) the page is served. In headless Chromium, two browsers
(two sessions): one runs a query that cannot finish and is stopped at the time limit, while the other's Sweeps view
renders in the meantime.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from served_dashboard import free_port, headless_chromium, serving
from test_dashboard_stores import read, write_probe_store

pytestmark = pytest.mark.timeout(300)

TOKEN = "test-token-7f3a9c2e"
SQL_TIMEOUT = 15  # seconds: long enough for the other browser's view to render on 2 shared cores
WAIT = 90
BOX = ".st-key-sql_text textarea"
CAPTIONS = "[data-testid=stMain] [data-testid=stCaptionContainer]"
TABLE = "[data-testid=stDataFrame]"
FOREVER = "SELECT count(*) FROM range(1000000000000)"  # the query: ~10^3 s of CPU


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, headers: dict | None = None):
    """(status, headers, body) of a GET, redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@contextmanager
def gated_dashboard(store: Path, log_path: Path, start_s: float = 90):
    """`cos-ray dashboard --address 0.0.0.0` on a free port; yields its loopback URL once it answers the token."""
    port = free_port()
    command = [sys.executable, "-m", "cos_ray.cli", "dashboard", "--out", str(store), "--port", str(port),
               "--address", "0.0.0.0", "--token", TOKEN, "--sql-timeout", str(SQL_TIMEOUT)]
    with serving(command, port, log_path, start_s, headers={"Authorization": f"token {TOKEN}"}) as url:
        yield url


@pytest.fixture(scope="module")
def probe_store(tmp_path_factory) -> Path:
    """A store of probe runs written directly (no sweep, no Ray): read by the server and the in-process tests."""
    return write_probe_store(tmp_path_factory.mktemp("probe") / "store")


@pytest.fixture(scope="module")
def server(probe_store, tmp_path_factory):
    log = tmp_path_factory.mktemp("gated") / "server.log"
    with gated_dashboard(probe_store, log) as url:
        yield url, log


def test_loopback_is_open_and_other_addresses_are_not():
    from cos_ray.dashboard.gate import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")


def test_without_the_token_nothing_is_served(server):
    url, log = server
    assert "?token=" + TOKEN in log.read_text()  # printed once, for the user to open
    for path in ("/", "/?view=SQL", "/_stcore/health", "/_stcore/host-config", "/static/index.html",
                 "/media/anything", f"/?token=wrong-{TOKEN}", "/?token=%C3%A9t%C3%A9"):
        status, _, body = fetch(url + path)
        assert status == 403, (path, status)
        assert b"<html" not in body.lower() and b"streamlit" not in body.lower()
    status, _, _ = fetch(url + "/", {"Authorization": "token wrong-token-123"})
    assert status == 403


def test_the_websocket_is_refused_without_the_token(server):
    import asyncio

    import aiohttp

    url, _ = server

    async def connect(headers: dict) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url + "/_stcore/stream", protocols=["streamlit"], headers=headers,
                                              timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
                    return 101 if ws.protocol == "streamlit" else -1
            except aiohttp.WSServerHandshakeError as err:
                return err.status

    assert asyncio.run(connect({})) == 403
    assert asyncio.run(connect({"Authorization": f"token {TOKEN}"})) == 101  # forwarded: Streamlit accepted it


def test_the_token_in_the_url_sets_a_cookie_that_serves(server):
    url, _ = server
    status, headers, _ = fetch(f"{url}/?token={TOKEN}&view=Runs")
    assert status == 302 and headers["Location"] == "/?view=Runs"  # the token leaves the address bar
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert TOKEN not in cookie and "HttpOnly" in headers["Set-Cookie"]
    status, _, body = fetch(url + "/", {"Cookie": cookie})
    assert status == 200 and b"<div id=\"root\">" in body  # Streamlit's page
    status, _, body = fetch(url + "/_stcore/health", {"Cookie": cookie})
    assert (status, body.strip()) == (200, b"ok")


def _texts(driver, selector: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent.trim())", selector)


def _header(driver) -> list[str]:
    return _texts(driver, "[data-testid=stMain] [data-testid=stHeading] h2")[:1]


def _idle(driver) -> bool:
    return not driver.find_elements("css selector", "[data-testid=stStatusWidget]")


def test_a_query_at_its_time_limit_does_not_stall_another_session(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    errors = "[data-testid=stAlertContentError]"
    with headless_chromium(WAIT) as first, headless_chromium(WAIT) as second:
        first.get(f"{url}/?token={TOKEN}&view=SQL")  # the token once: the gate sets a cookie, redirects
        WebDriverWait(first, WAIT, poll_frequency=0.2).until(  # the example query answered: the page is complete
            lambda d: _header(d) == ["SQL"] and _idle(d) and d.find_elements(By.CSS_SELECTOR, BOX)
            and any("row(s)" in text for text in _texts(d, CAPTIONS)))
        box = first.find_element(By.CSS_SELECTOR, BOX)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(FOREVER)
        first.find_element(By.CSS_SELECTOR, "[data-testid=stFormSubmitButton] button").click()
        started = time.monotonic()
        WebDriverWait(first, WAIT, poll_frequency=0.1).until(lambda d: not _idle(d), "the query did not start")

        second.get(f"{url}/?token={TOKEN}&view=Sweeps")  # a second session while the first query runs
        WebDriverWait(second, WAIT, poll_frequency=0.2).until(
            lambda d: _header(d) == ["Sweeps"] and _idle(d) and d.find_elements(By.CSS_SELECTOR, TABLE))
        rendered = time.monotonic() - started
        still_running = not _idle(first) and not _texts(first, errors)
        second.save_screenshot(str(tmp_path / "second-session.png"))
        assert still_running, f"the second view took {rendered:.1f} s: the first query was over before it rendered"
        assert rendered < SQL_TIMEOUT

        WebDriverWait(first, WAIT, poll_frequency=0.2).until(lambda d: _texts(d, errors) and _idle(d))
        stopped = time.monotonic() - started
        message = _texts(first, errors)[0]
        first.save_screenshot(str(tmp_path / "first-session.png"))
        assert f"time limit of {SQL_TIMEOUT} s" in message and "--sql-timeout" in message, message
        assert SQL_TIMEOUT - 1 <= stopped < SQL_TIMEOUT + 30, stopped
        print(f"second session rendered after {rendered:.1f} s; first query stopped after {stopped:.1f} s")


# --- the SQL box's limits, in one process (no server) -------------------------------------------------------------

def test_a_session_query_is_stopped_at_its_limit_and_the_session_goes_on(probe_store):
    from cos_ray.dashboard.connection import SQLLimits, StoreConnection
    from cos_ray.store.sql_guard import QueryTimeout

    shared = StoreConnection(str(probe_store))
    box = shared.sql_session(SQLLimits(timeout_s=1.5, memory_limit="256MB", threads=1))
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"time limit of 1.5 s .* --sql-timeout"):
        box.query(FOREVER)
    assert 1.4 <= time.monotonic() - started < 15
    runs = box.query("SELECT count(*) AS n FROM runs").column("n")[0].as_py()
    assert runs == len(read(probe_store, "runs"))  # the same session answers its next query


def test_a_slow_session_holds_no_lock_the_others_wait_on(probe_store):
    """While one session's query runs, the shared connection (every view's queries) and a second session answer."""
    import threading

    from cos_ray.dashboard.connection import SQLLimits, StoreConnection
    from cos_ray.store.sql_guard import QueryTimeout

    shared = StoreConnection(str(probe_store))
    slow = shared.sql_session(SQLLimits(timeout_s=5, threads=1))
    outcome = []

    def run_slow():
        try:
            slow.query(FOREVER)
        except QueryTimeout as err:
            outcome.append(err)

    thread = threading.Thread(target=run_slow, daemon=True)
    thread.start()
    time.sleep(0.5)  # the slow query is running
    started = time.monotonic()
    assert shared.count("runs") == len(read(probe_store, "runs"))
    other = shared.sql_session(SQLLimits(timeout_s=5, threads=1))
    assert other.query("SELECT count(DISTINCT method) AS n FROM runs").column("n")[0].as_py() == \
        len({row["method"] for row in read(probe_store, "runs").to_pylist()})
    answered = time.monotonic() - started
    assert thread.is_alive() and answered < 4, answered  # answered while the slow one still ran
    thread.join(timeout=30)
    assert outcome and "time limit of 5 s" in str(outcome[0])


def test_memory_and_threads_are_capped_as_duckdb_sets_them(probe_store):
    import duckdb

    from cos_ray.dashboard.connection import SQLLimits, StoreConnection

    box = StoreConnection(str(probe_store)).sql_session(SQLLimits(memory_limit="300MB", threads=1))
    reference = duckdb.connect(":memory:")  # DuckDB's own reading of the same settings
    reference.execute("SET memory_limit = '300MB'")
    expected = reference.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    got = box.query("SELECT current_setting('memory_limit') AS m, current_setting('threads') AS t").to_pylist()[0]
    assert got == {"m": expected, "t": 1}
    from cos_ray.store.sql_guard import RefusedQuery

    with pytest.raises(RefusedQuery):  # the configuration is locked: the box cannot lift its own limits
        box.query("SET memory_limit = '100GB'")


def test_install_is_refused_as_install(probe_store):
    from cos_ray.dashboard.connection import StoreConnection
    from cos_ray.store.sql_guard import RefusedQuery

    box = StoreConnection(str(probe_store)).sql_session()
    with pytest.raises(RefusedQuery, match="statement 1 is INSTALL"):
        box.query("INSTALL httpfs")
    with pytest.raises(RefusedQuery, match="statement 1 is LOAD"):
        box.query("LOAD httpfs")


def test_cos_ray_sql_timeout(probe_store):
    from click.testing import CliRunner

    from cos_ray.cli import main

    started = time.monotonic()
    result = CliRunner().invoke(main, ["sql", FOREVER, "--out", str(probe_store), "--timeout", "1"])
    assert result.exit_code == 2 and "time limit of 1 s" in result.output and "--timeout" in result.output
    assert time.monotonic() - started < 20
    result = CliRunner().invoke(main, ["sql", "SELECT count(*) AS n FROM runs", "--out", str(probe_store),
                                       "--timeout", "30", "--format", "json"])
    assert result.exit_code == 0 and f'"n": {len(read(probe_store, "runs"))}' in result.output
