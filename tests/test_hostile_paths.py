"""Every `cos-ray` command that takes a path, given a hostile one, says why in one line: exit 1 or 2 within TIMEOUT_S
and under an address-space limit, the path named, no Python traceback - and, for a bad input, without importing
torch or ray (no model is loaded, no cluster started, to refuse a path).

Each case runs the installed console script (`/work/venv/bin/cos-ray`, beside the test's Python) as a child process,
under `python -X importtime` so the modules it imported can be read from its stderr, with RLIMIT_AS set in the child.
The commands are read from the CLI itself (`cos_ray.cli.main`): a command missing from COMMANDS fails
`test_every_command_is_attacked`, so a new command cannot be forgotten. The cases run a few at a time in a module
fixture (the machine has 2 cores; each child starts in well under a second), and each is reported as its own test.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from cos_ray.cli import main

COS_RAY = Path(sys.executable).parent / "cos-ray"
TIMEOUT_S = 30.0  # a refusal takes ~1 s; the machine is shared
AS_LIMIT = 4 << 30  # the child's address space: /dev/zero read whole dies here instead of taking the machine
KINDS = ("file_for_folder", "folder_for_file", "dev_zero", "fifo", "symlink_loop", "deep", "empty")
NO_PATHS = {"spec schema", "list", "status", "logs", "stop"}  # take no path (a cluster address at most)
MODEL_COMMANDS = {"generate", "convert", "train", "train-eval"}  # may import torch; never to refuse a path

TRIVIAL_SPEC = """\
name: trivial
model: tiny
tasks: {generate: {family: maze, n: 1, seed: 3}}
seeds: [0]
methods: [first_frame]
"""


def commands(group: click.Group = main, prefix: str = "") -> list[str]:
    """Every leaf command of the CLI, as typed ("store check")."""
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix}{name} ")
        else:
            found.append(prefix + name)
    return found


# command -> {slot: argv builder}; "file" is a path the command reads as a file, "folder" one it reads or writes as a
# folder. A builder gets the world (valid inputs) and the hostile path.
COMMANDS = {
    "spec check": {"file": lambda w, p: ["spec", "check", p],
                   "folder": lambda w, p: ["spec", "check", w.spec_with_tasks(p)]},
    "plan": {"file": lambda w, p: ["plan", p], "folder": lambda w, p: ["plan", w.spec, "--out", p]},
    "submit": {"file": lambda w, p: ["submit", p, "--no-progress"],
               "folder": lambda w, p: ["submit", w.spec, "--out", p, "--no-progress"]},
    "verify": {"file": lambda w, p: ["verify", "trivial", "--out", w.store, "--spec", p],
               "folder": lambda w, p: ["verify", "trivial", "--out", p]},
    "export": {"folder": lambda w, p: ["export", "trivial", "--out", w.store, "--evalkit", w.under(p)]},
    "score": {"file": lambda w, p: ["score", "trivial", "--out", w.store, "--evalkit-results", p],
              "folder": lambda w, p: ["score", "trivial", "--out", p, "--evalkit-results", w.results]},
    "sql": {"folder": lambda w, p: ["sql", "select 1", "--out", p]},
    "compact": {"folder": lambda w, p: ["compact", "--out", p]},
    "store check": {"folder": lambda w, p: ["store", "check", "--out", p]},
    "store migrate": {"folder": lambda w, p: ["store", "migrate", "--out", p]},
    "dashboard": {"folder": lambda w, p: ["dashboard", "--out", p]},
    "tasks generate": {"folder": lambda w, p: ["tasks", "generate", "maze", "--n", "1", "--out", w.under(p)]},
    "tasks score": {"file": lambda w, p: ["tasks", "score", p, w.sample],
                    "folder": lambda w, p: ["tasks", "score", w.video, p]},
    "generate": {"file": lambda w, p: ["generate", "--image", p, "--prompt", "solve the maze"],
                 "folder": lambda w, p: ["generate", p]},
    "convert": {"folder": lambda w, p: ["convert", p, w.fresh("converted")]},
    "train": {"file": lambda w, p: ["train", p, "--out", w.fresh("trained")],
              "folder": lambda w, p: ["train", w.train_config, "--out", w.under(p)]},
    "train-eval": {"folder": lambda w, p: ["train-eval", "tiny-reasoner", "--n", "1", "--out", w.under(p)]},
    "figures": {"folder": lambda w, p: ["figures", "trivial", "--out", p, "--to", w.fresh("figures")]},
}


def cases() -> list[tuple[str, str, str]]:
    """(command, kind, slot): a file-like kind goes to the command's file slot if it has one, else its folder slot;
    a file where a folder is expected to its folder slot, a folder where a file is expected to its file slot."""
    found = []
    present = set(commands())
    for command, slots in COMMANDS.items():
        if command not in present:  # attacked once it lands
            continue
        for kind in KINDS:
            if kind == "file_for_folder":
                slot = "folder" if "folder" in slots else None
            elif kind == "folder_for_file":
                slot = "file" if "file" in slots else None
            else:
                slot = "file" if "file" in slots else "folder"
            if slot is not None:
                found.append((command, kind, slot))
    return found


class World:
    """Valid inputs around the hostile one, and the hostile paths themselves (made once per module)."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "COS_RAY_CACHE": str(root / "cache"), "RAY_AUTH_MODE": "disabled",
                    "PYTHONUNBUFFERED": "1", "COS_RAY_CPU_THREADS": "1"}
        hostile = root / "hostile"
        hostile.mkdir()
        (hostile / "a-file").write_text("not a folder\n")
        (hostile / "a-folder").mkdir()
        os.mkfifo(hostile / "a-fifo")
        os.symlink(hostile / "loop-b", hostile / "loop-a")
        os.symlink(hostile / "loop-a", hostile / "loop-b")
        depth = 5000
        (hostile / "deep.json").write_text("[" * depth + "]" * depth)  # JSON, and YAML too (a flow sequence)
        (hostile / "empty").write_bytes(b"")
        self.hostile = {"file_for_folder": hostile / "a-file", "folder_for_file": hostile / "a-folder",
                        "dev_zero": Path("/dev/zero"), "fifo": hostile / "a-fifo", "symlink_loop": hostile / "loop-a",
                        "deep": hostile / "deep.json", "empty": hostile / "empty"}
        self.spec = str(root / "trivial.yaml")
        Path(self.spec).write_text(TRIVIAL_SPEC)
        self.store = str(root / "store")
        self._cli(["submit", self.spec, "--out", self.store, "--no-progress"])  # a real store: one trivial unit
        tasks = root / "tasks"
        self._cli(["tasks", "generate", "maze", "--n", "1", "--out", str(tasks)])
        self.sample = str(tasks / "In-Domain_50" / "maze" / "00000")
        self.video = str(Path(self.sample) / "ground_truth.mp4")
        self.results = str(root / "results.json")
        Path(self.results).write_text('{"samples": []}')
        self.train_config = str(Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny-reasoner.yaml")
        self._fresh = 0

    def _cli(self, args: list[str]) -> None:
        subprocess.run([str(COS_RAY), *args], env=self.env, cwd=self.root, check=True, capture_output=True,
                       timeout=300)

    def fresh(self, name: str) -> str:
        """A path nothing is at yet (a command's output that should never be written)."""
        self._fresh += 1
        return str(self.root / "fresh" / f"{name}-{self._fresh}")

    def under(self, path: str) -> str:
        """The hostile path itself: an output folder the command must refuse."""
        return path

    def spec_with_tasks(self, folder: str) -> str:
        """A spec whose task folder is the hostile path."""
        self._fresh += 1
        spec = self.root / f"spec-tasks-{self._fresh}.yaml"
        spec.write_text(f"name: hostile\nmodel: tiny\ntasks: {{folder: '{folder}'}}\nseeds: [0]\n"
                        "methods: [first_frame]\n")
        return str(spec)


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def run_case(world: World, command: str, kind: str, slot: str) -> dict:
    path = str(world.hostile[kind])
    args = COMMANDS[command][slot](world, path)
    try:
        done = subprocess.run([sys.executable, "-X", "importtime", str(COS_RAY), *args], env=world.env,
                              cwd=world.root, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S,
                              preexec_fn=_limit_address_space, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        return {"args": args, "code": None, "stdout": err.stdout or "", "stderr": str(err.stderr or ""),
                "imported": set(), "path": path}
    imported, stderr = set(), []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)$", line)
        if match:
            imported.add(match.group(2))
        elif not line.startswith("import time:"):
            stderr.append(line)
    return {"args": args, "code": done.returncode, "stdout": done.stdout, "stderr": "\n".join(stderr),
            "imported": imported, "path": path}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict:
    world = World(tmp_path_factory.mktemp("hostile-paths"))
    with ThreadPoolExecutor(3) as pool:
        futures = {case: pool.submit(run_case, world, *case) for case in cases()}
        return {case: future.result() for case, future in futures.items()}


def test_every_command_is_attacked():
    missing = set(commands()) - set(COMMANDS) - NO_PATHS
    assert not missing, f"commands no case attacks: {missing}; add them to COMMANDS (or NO_PATHS)"
    attacked = {command for command, _, _ in cases()}
    assert attacked == set(commands()) - NO_PATHS
    for command in attacked:  # every kind that applies to the command's slots
        kinds = {kind for name, kind, _ in cases() if name == command}
        assert kinds >= set(KINDS) - {"file_for_folder", "folder_for_file"}, command


# Known, reported, owned elsewhere: strict, so a fix shows up as XPASS and the entry is removed.
KNOWN = {}
# Known and timing-dependent (not strict): (command, kind) -> why.
SLOW = {}


def _params():
    for command, kind, slot in cases():
        reason = KNOWN.get((command, kind))
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        if (command, kind) in SLOW:
            marks = [pytest.mark.xfail(reason=SLOW[(command, kind)], strict=False)]
        yield pytest.param(command, kind, slot, marks=marks, id=f"{command.replace(' ', '-')}-{kind}-{slot}")


@pytest.mark.parametrize("command, kind, slot", _params())
def test_a_hostile_path_is_one_line(outcomes, command, kind, slot):
    outcome = outcomes[(command, kind, slot)]
    shown = f"cos-ray {' '.join(outcome['args'])}\nstdout: {outcome['stdout'][-2000:]}\nstderr: {outcome['stderr'][-3000:]}"
    assert outcome["code"] is not None, f"no answer in {TIMEOUT_S:.0f} s: {shown}"
    assert outcome["code"] in (1, 2), shown
    assert "Traceback" not in outcome["stdout"] + outcome["stderr"], shown
    errors = [line for line in outcome["stderr"].splitlines() if line.lower().startswith("error")]
    assert errors, f"no error line: {shown}"
    message = outcome["stderr"][outcome["stderr"].lower().index("error"):]
    assert len(message) < 1000, shown
    assert Path(outcome["path"]).name in message, f"the path is not named: {shown}"
    if command not in MODEL_COMMANDS:
        assert not {"torch", "ray"} & outcome["imported"], f"imported {{'torch', 'ray'}} & ...: {shown}"
    else:
        assert "ray" not in outcome["imported"], shown
