"""Nothing is left running (issue 28): `cos-ray dashboard` stopped by SIGTERM or SIGINT ends its Streamlit child, and
its port is free within 5 s - on loopback and behind the token gate; even a SIGKILLed dashboard leaves no Streamlit
serving (the child asked the kernel for SIGTERM on its parent's death).

Real processes: the dashboard is started as a user starts it, the signal goes to that one process (not its group),
and its children are found with psutil before the signal and looked for again after.
"""

from __future__ import annotations

import signal
import socket
import sys
import time

import psutil
import pytest

from process_groups import still_running
from served_dashboard import free_port, serving
from test_dashboard_stores import write_probe_store

pytestmark = pytest.mark.timeout(240)

START = 90
FREE_WITHIN = 5.0
TOKEN = "signal-test-token-1234"


@pytest.fixture(scope="module")
def probe_store(tmp_path_factory):
    return write_probe_store(tmp_path_factory.mktemp("probe") / "store")


def port_is_free(port: int) -> bool:
    """A new server can listen on 127.0.0.1:`port` (with SO_REUSEADDR, as Streamlit's does)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return True
        except OSError:
            return False


def _served(store, port: int, gated: bool) -> list[str]:
    command = [sys.executable, "-m", "cos_ray.cli", "dashboard", "--out", str(store), "--port", str(port)]
    return command + (["--address", "0.0.0.0", "--token", TOKEN] if gated else [])


def _dashboard_process(port: int) -> psutil.Process:
    """The `cos-ray dashboard` process serving `port` (serving() started it in a session of its own)."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "cos_ray.cli" in cmdline and "dashboard" in cmdline and str(port) in cmdline:
            return process
    raise AssertionError(f"no cos-ray dashboard on port {port}")


@pytest.mark.parametrize("signum,gated", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["sigterm", "sigint", "sigterm-gated"])
def test_a_signal_stops_the_dashboard_and_its_children(probe_store, tmp_path, signum, gated):
    port = free_port()
    headers = {"Authorization": f"token {TOKEN}"} if gated else None
    with serving(_served(probe_store, port, gated), port, tmp_path / "server.log", START, headers=headers):
        parent = _dashboard_process(port)
        children = parent.children(recursive=True)
        assert any("streamlit" in child.cmdline() for child in children), children
        sent = time.monotonic()
        parent.send_signal(signum)
        code = parent.wait(timeout=15)
        while not port_is_free(port) and time.monotonic() - sent < 10:
            time.sleep(0.05)
        freed = time.monotonic() - sent
        left = still_running(children)
    assert code == 128 + signum, code
    assert freed <= FREE_WITHIN, f"port {port} still taken {freed:.1f} s after the signal"
    assert not left, f"left running: {[p.cmdline() for p in left]}"
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    print(f"{signal.Signals(signum).name}{' (gated)' if gated else ''}: exit {code}, port free after {freed:.2f} s")


def test_a_killed_dashboard_leaves_no_streamlit_serving(probe_store, tmp_path):
    port = free_port()
    with serving(_served(probe_store, port, False), port, tmp_path / "server.log", START):
        parent = _dashboard_process(port)
        children = parent.children(recursive=True)
        sent = time.monotonic()
        parent.kill()  # no handler runs: only the kernel's parent-death signal stops the child
        parent.wait(timeout=15)
        while (still_running(children) or not port_is_free(port)) and time.monotonic() - sent < 15:
            time.sleep(0.05)
        freed = time.monotonic() - sent
        left = still_running(children)
    assert not left and freed <= FREE_WITHIN, (freed, [p.cmdline() for p in left])
