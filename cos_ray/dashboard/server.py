"""How the dashboard is served: Streamlit in a child process, headless, on one address and port, the store after
the script's `--`. The CLI and the first-paint benchmark start it the same way."""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"  # inside the installed package: `pip install .` serves it too


def streamlit_command(out: str, port: int, address: str, app: Path = APP) -> list[str]:
    """The child's command line: headless, on `address:port`, the store after the script's `--`."""
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
            "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
            "--", "--out", out]
