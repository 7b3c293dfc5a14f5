"""How the dashboard is served: Streamlit in a child process, headless, on one address and port, the store after
the script's `--`. The CLI and the first-paint benchmark start it the same way.

The child must never outlive the command that started it: `stop_child` ends it (SIGTERM, then SIGKILL after
`STOP_GRACE_S`), and on Linux the child also asks the kernel for SIGTERM when its parent dies (`PR_SET_PDEATHSIG`),
so even a SIGKILLed `cos-ray dashboard` leaves no Streamlit serving.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"  # inside the installed package: `pip install .` serves it too


def streamlit_command(out: str, port: int, address: str, app: Path = APP) -> list[str]:
    """The child's command line: headless, on `address:port`, the store after the script's `--`."""
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
            "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
            "--", "--out", out]


STOP_GRACE_S = 3.0  # SIGTERM -> SIGKILL: Streamlit stops in well under a second; the port must be free within 5 s


def start_streamlit(out: str, port: int, address: str, app: Path = APP) -> subprocess.Popen:
    """Streamlit serving `app` over the store `out`, as a child that dies with this process."""
    return subprocess.Popen(streamlit_command(out, port, address, app), preexec_fn=die_with_parent)


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def stop_child(child: subprocess.Popen | None, grace_s: float = STOP_GRACE_S) -> None:
    """End `child` (None: never started): SIGTERM, then SIGKILL after `grace_s` seconds; waits for it to exit."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)
