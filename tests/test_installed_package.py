"""`pip install .` (not editable, from a clean copy of the tracked files) gives a working `cos-ray dashboard`: the
Streamlit app and its views ship inside the package, so an installed cos-ray serves its page from site-packages.

The venv sees this environment's packages (`see_this_environment`) so that only cos-ray itself is installed in it; the
test checks that the imported cos_ray is the venv's copy, not this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from served_dashboard import free_port, headless_chromium, serving
from test_dashboard_browser import START, WAIT, settle
from test_dashboard_stores import write_probe_store

pytestmark = pytest.mark.timeout(400)
ROOT = Path(__file__).resolve().parent.parent


def clean_copy(target: Path) -> Path:
    """The tracked files of this checkout (what a clone holds), nothing built or ignored."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60)
    for name in listed.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def see_this_environment(python: Path) -> None:
    """Let the new venv import this interpreter's packages too: `--system-site-packages` shows the *base*
    interpreter's, which inside a virtualenv (as a newcomer runs the suite) lack cos-ray's dependencies. A .pth file
    lists this environment's site-packages after the venv's own; its own .pth files (this checkout's editable
    install) are not processed, so cos_ray still comes from the venv's install."""
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(own) / "zz_outer_environment.pth").write_text("".join(f"{path}\n" for path in ours))


def test_pip_install_dot_serves_the_dashboard(tmp_path):
    source = clean_copy(tmp_path / "clone")
    venv = tmp_path / "venv"
    # no pip of its own (ensurepip costs ~8 s): this interpreter's pip installs into it (`pip --python`)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    see_this_environment(python)
    wheels = tmp_path / "wheels"  # built by this interpreter (its setuptools and wheel), installed into the venv
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, timeout=300, cwd=tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    *map(str, wheels.glob("*.whl"))], check=True, timeout=300, cwd=tmp_path)
    where = subprocess.run([str(python), "-c", "import cos_ray.dashboard.server as s; print(s.APP)"],
                           capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv)), f"cos_ray imported from {where}, not the venv's install"

    store = write_probe_store(tmp_path / "store")
    port = free_port()
    command = [str(venv / "bin" / "cos-ray"), "dashboard", "--out", str(store), "--port", str(port)]
    with serving(command, port, tmp_path / "server.log", START) as url, headless_chromium(WAIT) as browser:
        browser.get(url)
        settle(browser, "Sweeps")
