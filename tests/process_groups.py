"""Stop a server the tests started in its own process group (`start_new_session=True`): the whole group, not just
the process, since servers start children (`cos-ray dashboard` runs streamlit, `ray start` its daemons)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the group and wait up to `grace_s`, then SIGKILL what is left and wait as long again."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def still_running(processes: list) -> list:
    """Those of `processes` (psutil.Process) still running; a zombie counts as gone (it holds no port, runs nothing)."""
    import psutil

    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive
