"""`cos-ray dashboard`: the Streamlit dashboard (`dashboards/app.py`) over a results store, served headless.

Streamlit runs in a child process (`python -m streamlit run ...`), so its exit code is this command's; the store is
checked first, so a wrong `--out` is one clear line instead of a page with an error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

APP = Path(__file__).resolve().parent.parent / "dashboards" / "app.py"


def streamlit_command(out: str, port: int, address: str, app: Path = APP) -> list[str]:
    """The child's command line: headless, on `address:port`, the store after the script's `--`."""
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
            "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
            "--", "--out", out]


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
    if not APP.is_file():
        click.echo(f"error: the dashboard script {APP} is missing (install cos-ray from its source tree: "
                   f"pip install -e .)", err=True)
        sys.exit(2)
    click.echo(f"cos-ray dashboard: http://{address}:{port}  (store {store.uri}; Ctrl-C stops it)")
    try:
        code = subprocess.call(streamlit_command(out, port, address))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
