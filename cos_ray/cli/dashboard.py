"""`cos-ray dashboard`: the Streamlit dashboard (`cos_ray/dashboard/app.py`) over a results store, served headless.

Streamlit runs in a child process (`python -m streamlit run ...`), so its exit code is this command's; the store is
checked first, so a wrong `--out` is one clear line instead of a page with an error. Bound to anything but loopback,
the dashboard needs a token: Streamlit then listens on a private loopback port and `cos_ray.dashboard.gate` (a
reverse proxy that checks the token on every request, the websocket included) on the public one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import click

from cos_ray.dashboard.server import streamlit_command


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=15)


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
def dashboard(out, port, address, token, sql_timeout, sql_memory):
    """Serve the dashboard for the store at --out: sweeps, runs, method comparison, Chain-of-Steps, probes, SQL.

    On loopback (the default) it is open; on any other address every request needs the token (open the printed URL
    once: a cookie keeps it). To view a cluster head's store from a laptop, prefer an SSH port forward:
    ssh -L 8501:127.0.0.1:8501 HEAD, then cos-ray dashboard on HEAD and http://127.0.0.1:8501 on the laptop.
    """
    from cos_ray.dashboard.connection import MEMORY_ENV, TIMEOUT_ENV
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
    try:
        _size(sql_memory)
    except Exception as err:  # UsageError naming the value
        fail(f"--sql-memory: {err}")
    os.environ.update({TIMEOUT_ENV: f"{sql_timeout:g}", MEMORY_ENV: sql_memory})  # read by the app, in the child
    if is_loopback(address):
        click.echo(f"cos-ray dashboard: http://{address}:{port}  (store {store.uri}; Ctrl-C stops it)")
        try:
            code = subprocess.call(streamlit_command(out, port, address))
        except KeyboardInterrupt:
            code = 130
        sys.exit(code)

    token = token or os.environ.pop(TOKEN_ENV, None) or new_token()  # not passed on to Streamlit
    if len(token) < 8:
        fail("--token: expected at least 8 characters")
    inner = _free_loopback_port()
    child = subprocess.Popen(streamlit_command(out, inner, "127.0.0.1"))
    shown = socket.gethostname() if address in ("0.0.0.0", "::", "") else address
    click.echo(f"cos-ray dashboard: http://{shown}:{port}/?token={token}\n  bound to {address}: every request needs "
               f"this token (open the URL once; a cookie keeps it). Store {store.uri}; Ctrl-C stops it.")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, schedulers: stop Streamlit too
    try:
        code = serve(address, port, inner, token, child)
    except KeyboardInterrupt:
        code = 130
    except OSError as err:
        _stop(child)
        fail(f"--address {address} --port {port}: cannot listen there ({err.strerror or err})")
    finally:
        _stop(child)
    sys.exit(code)
