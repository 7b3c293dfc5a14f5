"""Hostile specs: each kind refused by `cos-ray spec check` in a child process in < 2 s of CPU and < 200 MB, exit 2,
a message under 1 KB naming the field, nothing written.

The child's CPU time and peak RSS come from the kernel (`os.wait4`), not from the code under test, so the test
measures what a user would see; CPU time rather than wall time, because the machine is shared. An address-space
limit on the child keeps a regression from taking the machine down with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

BASE = """model: tiny
tasks: {generate: {family: maze, n: 2}}
out: results
"""
CPU_LIMIT_S = 2.0
RSS_LIMIT_MB = 200
AS_LIMIT = 3 << 30  # the child's address space: a bomb dies here instead of swapping the machine


# The child is started by a small launcher process: a child forked straight from this (large) pytest process would
# report pytest's resident pages as its own peak RSS (the kernel carries the pre-exec high-water mark over).
LAUNCHER = """
import json, os, resource, subprocess, sys, threading
args, cwd, env, timeout, limit = json.loads(sys.argv[1])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
with open(os.path.join(cwd, ".stdout"), "wb") as out, open(os.path.join(cwd, ".stderr"), "wb") as err:
    child = subprocess.Popen([sys.executable, "-m", "cos_ray.cli", *args], cwd=cwd, env=env, stdout=out,
                             stderr=err, preexec_fn=cap)
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        timer.cancel()
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime,
                  "rss_mb": usage.ru_maxrss / 1024}))
"""


def run_cli(args: list[str], cwd: Path, timeout: float = 60.0) -> dict:
    """Run `python -m cos_ray.cli ARGS` in `cwd`; its exit code, stderr, CPU seconds and peak RSS (MB)."""
    env = {**os.environ, "COS_RAY_CACHE": str(cwd / ".cache"), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    launched = subprocess.run([sys.executable, "-c", LAUNCHER, json.dumps([args, str(cwd), env, timeout, AS_LIMIT])],
                              capture_output=True, text=True, timeout=timeout + 30, check=True)
    result = json.loads(launched.stdout)
    stderr = (cwd / ".stderr").read_text(errors="replace")
    stdout = (cwd / ".stdout").read_text(errors="replace")
    for name in (".stdout", ".stderr"):
        (cwd / name).unlink()
    return {**result, "stderr": stderr, "stdout": stdout, "wall": time.monotonic() - started}


def _billion_laughs(levels: int = 10) -> str:
    lines = ["bomb:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nseeds: *l{levels - 1}\nmethods: [baseline]\n"


def _deep(depth: int = 50_000) -> str:
    return "methods: [baseline]\nseeds: " + "[" * depth + "0" + "]" * depth + "\n"


def _grid_bomb() -> str:
    grids = {name: {"grid": list(range(10))} for name in ("guidance", "guidance_2", "shift", "boundary", "steps")}
    seeds = {"grid": [[seed] for seed in range(10)]}
    methods = [{"ensemble": {"size": {"grid": list(range(2, 12))}, "merge": {"grid": ["stream", "update"]},
                             "layers": {"grid": [f"0-{n}" for n in range(10)]},
                             "steps": {"grid": [f"0-{n}" for n in range(10)]}}}]
    return f"sampler: {json.dumps(grids)}\nseeds: {json.dumps(seeds)}\nmethods: {json.dumps(methods)}\n"


def _values_before(prefix: str) -> int:
    """YAML values (nodes, by PyYAML's own composer) before the last key's value in BASE + prefix + 'x'."""
    def count(node) -> int:
        if isinstance(node, yaml.ScalarNode):
            return 1
        if isinstance(node, yaml.SequenceNode):
            return 1 + sum(count(item) for item in node.value)
        return 1 + sum(count(key) + count(value) for key, value in node.value)

    return count(yaml.compose(BASE + prefix + "x")) - 2  # less the root mapping (counted last) and 'x'


LONG_PREFIX = "methods: [baseline]\nseeds: "
COPIES_PREFIX = "methods: [baseline]\nbig: &big [" + ", ".join(["1"] * 4000) + "]\ncopies: "  # 4,001 values a copy

# kind -> (spec body, bytes or text; the field the message must name; a phrase it must hold)
HOSTILE = {
    "alias bomb": (BASE + _billion_laughs(), "bomb.l2[7]", "more than 16 YAML aliases"),  # the 17th alias
    "seed-range bomb": (BASE + 'seeds: "0-9999999"\nmethods: [baseline, {ensemble: {size: 3}}]\n', "seeds",
                        "10,000,000 seeds × 4 runs per seed over 2 methods × 2 tasks = 80,000,000 runs exceeds the "
                        "limit of 1,000,000; raise with --max-runs"),
    "grid-product bomb": (BASE + _grid_bomb(), "sampler.guidance", "make 2,000,000,000 grid points"),
    "ensemble-size bomb": (BASE + "methods: [{ensemble: {size: 100000000}}]\n", "methods[0].ensemble.size",
                           "100,000,000 members"),
    "sampler-steps bomb": (BASE + "sampler: {steps: 1000000000}\nmethods: [noise_at_step]\n", "sampler.steps",
                           "1,000,000,000 exceeds the limit of 10,000"),
    "huge size": (BASE + "methods: [baseline]\nunknown: [" + ", ".join(["1"] * 3_000_000) + "]\n", "spec",
                  "exceeds the limit of 1,048,576 bytes"),
    "long list": (BASE + LONG_PREFIX + "[" + ", ".join(["1"] * 340_000) + "]\n",
                  f"seeds[{50_000 - _values_before(LONG_PREFIX)}]",  # 1 MB, under the size limit: the 50,001st value
                  "the spec holds more than 50,000 values"),
    "few aliases, many values": (BASE + COPIES_PREFIX + "[" + ", ".join(["*big"] * 16) + "]\n",
                                 f"copies[{-(-(50_001 - _values_before(COPIES_PREFIX)) // 4001) - 1}]",
                                 "the spec holds more than 50,000 values (aliases expanded)"),
    "deep nesting": (BASE + _deep(), "seeds[0][0][0]", "nested deeper than 32 levels"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "spec", "NUL byte at offset 8"),
    "non-UTF-8": ((BASE + "methods: [baseline]\nname: caf\xe9\n").encode("latin-1"), "spec",
                  f"byte 0xe9 at offset {len(BASE) + len('methods: [baseline]' + chr(10) + 'name: caf')}"),
    "oversized string": (BASE + "methods: [baseline]\nname: " + "x" * 100_000 + "\n", "name",
                         "a string of 100,000 characters exceeds the limit of 4,096"),
    "seed past int64": (BASE + f"methods: [baseline]\nseeds: [0, {2**64}]\n", "seeds[1]", "64-bit range"),
    "member seeds past 2^63-1": (BASE + f"methods: [{{ensemble: {{size: 3}}}}]\nseeds: [{2**63 - 2}]\n", "seeds",
                                 "past the largest seed"),
}


def _write(path: Path, body) -> None:
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_spec_is_refused_quickly_and_briefly(tmp_path, kind):
    body, field, phrase = HOSTILE[kind]
    spec = tmp_path / "spec.yaml"
    _write(spec, body)
    result = run_cli(["spec", "check", str(spec)], tmp_path)
    message = result["stderr"]
    assert result["code"] == 2, message[:2000]
    assert "Traceback" not in message
    assert len(message.encode()) < 1024, f"{len(message.encode())} bytes: {message[:300]}"
    assert phrase in message, message
    if field == "spec":  # a problem of the file itself: the message names the file
        assert f"spec {spec}" in message, message
    else:
        assert f"  {field}" in message, message
    print(f"{kind}: exit {result['code']}, {result['cpu']:.2f} s CPU, {result['rss_mb']:.0f} MB peak RSS, "
          f"{len(message.encode())}-byte message")  # pytest -s shows the figures
    assert result["cpu"] < CPU_LIMIT_S, f"{kind}: {result['cpu']:.2f} s of CPU"
    assert result["rss_mb"] < RSS_LIMIT_MB, f"{kind}: {result['rss_mb']:.0f} MB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no store, no cache, nothing


def test_max_runs_raises_the_limit(tmp_path):
    """The same seed range passes with --max-runs set above its count, and the count is the units' real number."""
    spec = tmp_path / "spec.yaml"
    _write(spec, BASE + 'seeds: "0-4"\nmethods: [baseline, {ensemble: {size: 3}}]\n')
    refused = run_cli(["spec", "check", "--max-runs", "39", str(spec)], tmp_path)
    assert refused["code"] == 2
    assert "5 seeds × 4 runs per seed over 2 methods × 2 tasks = 40 runs" in refused["stderr"]
    accepted = run_cli(["spec", "check", "--max-runs", "40", str(spec)], tmp_path)
    assert accepted["code"] == 0, accepted["stderr"]
    assert "20 unit(s)" in accepted["stdout"]  # 2 tasks x 5 seeds x 2 methods, as expanded


def test_submit_refuses_before_writing(tmp_path):
    """`cos-ray submit` loads the spec before touching the store: a seed bomb leaves no store behind."""
    body, _, phrase = HOSTILE["seed-range bomb"]
    spec = tmp_path / "spec.yaml"
    _write(spec, body)
    result = run_cli(["submit", str(spec), "--local"], tmp_path, timeout=120)
    assert result["code"] == 2, result["stderr"][-2000:]
    assert phrase in result["stderr"]
    assert not (tmp_path / "results").exists()
