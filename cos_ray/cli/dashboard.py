"""`cos-ray dashboard`: the Streamlit dashboard (`cos_ray/dashboard/app.py`) over a results store, served headless.

Streamlit runs in a child process (`python -m streamlit run ...`), so its exit code is this command's; the store is
checked first, so a wrong `--out` is one clear line instead of a page with an error.
"""

from __future__ import annotations

import subprocess
import sys

import click

from cos_ray.dashboard.server import streamlit_command


@click.command()
@click.option("--out", default="./results", show_default=True, help="Results store (path or URI).")
@click.option("--port", default=8501, show_default=True, type=int, help="Port to serve on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0: reachable from other machines).")
def dashboard(out, port, address):
    """Serve the dashboard for the store at --out: sweeps, runs, method comparison, Chain-of-Steps, probes, SQL."""
    from cos_ray.store.location import Store

    store = Store(out)
    if not store.exists():
        click.echo(f"error: store {out!r} does not exist: give the results store of a sweep (--out, the folder "
                   f"`cos-ray submit` wrote; default ./results)", err=True)
        sys.exit(2)
    click.echo(f"cos-ray dashboard: http://{address}:{port}  (store {store.uri}; Ctrl-C stops it)")
    try:
        code = subprocess.call(streamlit_command(out, port, address))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
