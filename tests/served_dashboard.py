"""A Streamlit server on loopback, in its own process group, and headless Chromium to open it.

Shared by the dashboard's browser tests and `benchmarks/dashboard_first_paint.py` (which puts `tests/` on its path),
so both start, wait for and stop the server, and drive the browser, the same way.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from process_groups import stop_group

BROWSER_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1400,1200")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(command: list[str], port: int, log_path: Path, start_s: float, headers: dict | None = None):
    """Run `command` (a server on 127.0.0.1:`port`: `cos-ray dashboard` starts streamlit as a child) in its own
    process group; yield its URL once /_stcore/health answers (sent with `headers`: a token), then stop the whole
    group."""
    env = {**os.environ, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n"
                                   f"{log_path.read_text()[-3000:]}")
            try:
                health = urllib.request.Request(f"{url}/_stcore/health", headers=headers or {})
                with urllib.request.urlopen(health, timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not answer on {url} within {start_s:g} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        stop_group(process, grace_s=15)


@contextmanager
def headless_chromium(timeout_s: float):
    """Headless Chromium through the system chromedriver (no Selenium Manager, no network)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        raise RuntimeError("the browser tests need chromium and chromedriver on PATH: apt-get install chromium "
                           "chromium-driver (Debian), as .ci/run does")
    options = Options()
    options.binary_location = chromium
    for arg in BROWSER_ARGS:
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_page_load_timeout(timeout_s)
    browser.set_script_timeout(timeout_s)
    try:
        yield browser
    finally:
        browser.quit()
