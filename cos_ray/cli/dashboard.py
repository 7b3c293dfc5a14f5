"""`cos-ray dashboard`: the Streamlit dashboard (`cos_ray/dashboard/app.py`) over a results store, served headless.

Streamlit runs in a child process (`python -m streamlit run ...`), so its exit code is this command's; the store is
checked first, so a wrong `--out` is one clear line instead of a page with an error. Bound to anything but loopback,
the dashboard needs a token: Streamlit then listens on a private loopback port and `cos_ray.dashboard.gate` (a
reverse proxy that checks the token on every request, the websocket included) on the public one.

Whatever stops this command - Ctrl-C (SIGINT), `kill` or a scheduler (SIGTERM) - stops Streamlit with it: the child
gets SIGTERM, then SIGKILL after `STOP_GRACE_S`, so the port is free and no process is left when this one exits.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

import click

from cos_ray.cli.errors import reports_errors
from cos_ray.dashboard.server import start_streamlit, stop_child


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop the children and exit 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.code = 128 + signum


def _raise_stopped(signum, _frame) -> None:
    raise _Stopped(signum)


def _on_signals(handler=_raise_stopped) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def _stop(child) -> None:
    """Stop Streamlit; a second Ctrl-C or SIGTERM meanwhile changes nothing (the stop is bounded anyway)."""
    _on_signals(signal.SIG_IGN)
    stop_child(child)


@click.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--port", default=8501, show_default=True, type=int, help="Port to serve on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0: reachable from other machines, behind a token).")
@click.option("--token", help="The token a browser must present off loopback (default: $COS_RAY_DASHBOARD_TOKEN, "
                              "else a new one, printed once).")
@click.option("--sql-timeout", type=float, default=30.0, show_default=True,
              help="Seconds one SQL-box query may run before it is stopped.")
@click.option("--sql-memory", default="2GB", show_default=True, help="DuckDB memory of one SQL-box session.")
@click.option("--sql-max-bytes", default="32MB", show_default=True,
              help="Bytes of one SQL-box result shown (at most a quarter of --sql-memory); the rest is cut, saying so.")
@reports_errors
def dashboard(out, port, address, token, sql_timeout, sql_memory, sql_max_bytes):
    """Serve the dashboard for the store at --out: sweeps, runs, method comparison, Chain-of-Steps, probes, SQL.

    On loopback (the default) it is open; on any other address every request needs the token (open the printed URL
    once: a cookie keeps it). To view a cluster head's store from a laptop, prefer an SSH port forward:
    ssh -L 8501:127.0.0.1:8501 HEAD, then cos-ray dashboard on HEAD and http://127.0.0.1:8501 on the laptop.
    """
    from cos_ray.dashboard.connection import MAX_BYTES_ENV, MEMORY_ENV, TIMEOUT_ENV
    from cos_ray.dashboard.gate import TOKEN_ENV, is_loopback, new_token, serve
    from cos_ray.store.location import Store
    from cos_ray.store.sql_guard import _size

    def fail(message: str):
        click.echo(f"error: {message}", err=True)
        sys.exit(2)

    store = Store(out)
    if not store.exists():
        fail(f"store {out!r} does not exist: give the results store of a sweep (--out, the folder `cos-ray submit` "
             f"wrote; default ./results)")
    if not sql_timeout > 0:
        fail(f"--sql-timeout: expected seconds > 0, got {sql_timeout:g}")
    for option, value in (("--sql-memory", sql_memory), ("--sql-max-bytes", sql_max_bytes)):
        try:
            _size(value, option)
        except Exception as err:  # UsageError naming the value
            fail(str(err))
    os.environ.update({TIMEOUT_ENV: f"{sql_timeout:g}", MEMORY_ENV: sql_memory,  # read by the app, in the child
                       MAX_BYTES_ENV: sql_max_bytes})
    if is_loopback(address):
        click.echo(f"cos-ray dashboard: http://{address}:{port}  (store {store.uri}; Ctrl-C stops it)")
        child = None
        _on_signals()  # before the child starts: a signal from here on stops it too
        try:
            child = start_streamlit(out, port, address)
            code = child.wait()
        except _Stopped as stopped:
            code = stopped.code
        finally:
            _stop(child)
        sys.exit(code)

    token = token or os.environ.pop(TOKEN_ENV, None) or new_token()  # not passed on to Streamlit
    if len(token) < 8:
        fail("--token: expected at least 8 characters")
    inner = _free_loopback_port()
    shown = socket.gethostname() if address in ("0.0.0.0", "::", "") else address
    child = None
    _on_signals()
    try:
        child = start_streamlit(out, inner, "127.0.0.1")
        click.echo(f"cos-ray dashboard: http://{shown}:{port}/?token={token}\n  bound to {address}: every request "
                   f"needs this token (open the URL once; a cookie keeps it). Store {store.uri}; Ctrl-C stops it.")
        code = serve(address, port, inner, token, child)
    except _Stopped as stopped:
        code = stopped.code
    except OSError as err:
        _stop(child)
        fail(f"--address {address} --port {port}: cannot listen there ({err.strerror or err})")
    finally:
        _stop(child)
    sys.exit(code)
