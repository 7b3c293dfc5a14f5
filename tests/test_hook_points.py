"""The hook-point grammar in one module; one config per method (one set of defaults); engine -> nothing above it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from cos_ray.engine.hook_points import LATENTS, HookPoint, point_problems
from cos_ray.errors import UsageError
from cos_ray.interventions.configs import EnsembleConfig, NoiseAtFrameConfig, NoiseAtStepConfig, SwapConfig
from cos_ray.probes.configs import EnergyConfig

PACKAGE = Path(__file__).resolve().parents[1] / "cos_ray"


@pytest.mark.parametrize("text, expert, layer", [
    ("high.blocks.20", "high", 20), ("low.blocks.0", "low", 0), ("blocks.39", None, 39), (" blocks.3 ", None, 3)])
def test_names_parse_and_format_back(text, expert, layer):
    point = HookPoint.parse(text)
    assert (point.expert, point.layer) == (expert, layer)
    assert point.name == text.strip() and HookPoint.parse(point.name) == point and HookPoint.is_name(text)


@pytest.mark.parametrize("text", ["mid.blocks.3", "blocks.-1", "blocks.x", "high.block.2", "", None, 20, LATENTS])
def test_bad_names_say_what_is_expected(text):
    with pytest.raises(UsageError, match=r"probes.sensitivity: expected 'high.blocks.20', 'low.blocks.20' or"):
        HookPoint.parse(text, "probes.sensitivity")
    assert not HookPoint.is_name(text)


def test_problems_without_a_model():
    assert point_problems(HookPoint("low", 3), 30, experts=("high",)) == [
        "this model has no 'low' expert (it has high; or use 'blocks.N')"]
    assert point_problems(HookPoint(None, 40), 40) == ["layer 40 is out of range 0-39"]
    assert point_problems(HookPoint("high", 39), 40) == []


def test_the_grammar_is_written_in_one_module_only():
    """No other module of the package carries a regex or an f-string that builds `blocks.N` names (the model package's
    checkpoint loaders match weight keys, `blocks.N.self_attn.q.weight`: another grammar, not hook points)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "hook_points.py" or path.relative_to(PACKAGE).parts[0] == "model":
            continue
        text = path.read_text()
        for marker in ('blocks\\.(', 'f"blocks.{', "f'blocks.{", '.blocks.{', 'rpartition("blocks.")'):
            if marker in text:
                offenders.append(f"{path.relative_to(PACKAGE)}: {marker}")
    assert offenders == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_engine_imports_neither_interventions_nor_probes():
    """One-way arrows: engine <- interventions <- probes (the engine calls them through `apply(run)`)."""
    wrong = {f"{path.name}: {name}" for path in (PACKAGE / "engine").glob("*.py") for name in _imports(path)
             if name.startswith(("cos_ray.interventions", "cos_ray.probes"))}
    assert wrong == set()
    wrong = {f"{path.name}: {name}" for path in (PACKAGE / "interventions").glob("*.py") for name in _imports(path)
             if name.startswith("cos_ray.probes")}
    assert wrong == set()


def test_the_spec_takes_its_defaults_from_the_configs():
    """One set of defaults: a method written with no fields resolves to the config built with no arguments."""
    from cos_ray.spec.methods import EnsembleSpec, MethodContext, NoiseAtFrameSpec, NoiseAtStepSpec, SwapSpec
    from cos_ray.spec.probes import EnergySpec

    context = MethodContext(num_layers=40, steps=50, latent_frames=21)
    (ensemble,) = EnsembleSpec().variants(context)
    assert ensemble.config("ensemble") == EnsembleConfig().resolved(40, 50)
    assert ensemble.params() == {"size": 3, "layers": list(range(20, 30)), "steps": list(range(10)), "merge": "stream"}
    assert NoiseAtStepSpec(step=4).edit("noise_at_step") == NoiseAtStepConfig(step=4)
    assert NoiseAtFrameSpec(frame=2).edit("noise_at_frame") == NoiseAtFrameConfig(frame=2)
    assert NoiseAtStepConfig(step=0).seed == 1  # not 0: the run's own generator
    swap = SwapSpec(layer=20).swap("swap")
    assert swap == SwapConfig(layer=20) and swap.mode == "update" and swap.region == "all"
    energy = EnergySpec().resolved(30, 10)  # the 30-block TI2V: every layer it has, no 39
    assert energy == EnergyConfig().resolved(30, 10).params() and energy["layers"] == list(range(30))


@pytest.mark.parametrize("build, message", [
    (lambda: EnsembleConfig(size=1), "ensemble.size: expected an integer >= 2"),
    (lambda: EnsembleConfig(merge="mean"), "ensemble.merge: expected one of stream, update"),
    (lambda: EnsembleConfig(layers="a-b"), "ensemble.layers: expected a layer range"),
    (lambda: EnsembleConfig(layers="25-35").resolved(30, 10), "ensemble.layers: '25-35' reaches layer 35"),
    (lambda: NoiseAtStepConfig(step=1, strength=0), r"noise_at_step.strength: expected a number in \(0, 1\]"),
    (lambda: NoiseAtFrameConfig(frame=1, seed=-1), "noise_at_frame.seed: expected an integer >= 0"),
    (lambda: SwapConfig(layer=1, mode="residual"), "swap.mode: expected one of stream, update"),
    (lambda: SwapConfig(layer=1, step="none"), "swap.step: selects no step"),
    (lambda: EnergyConfig(max_side=0), "energy.max_side: expected an integer >= 1"),
])
def test_each_config_validates_itself(build, message):
    with pytest.raises(UsageError, match=message):
        build()


def test_resolved_configs_hold_integers_and_their_dict_is_the_identity():
    config = EnsembleConfig(layers="20-29", steps="0-20%", merge="update").resolved(40, 50)
    assert config.layers == tuple(range(20, 30)) and config.steps == tuple(range(10))
    assert [point.name for point in config.hook_points()] == [f"blocks.{layer}" for layer in range(20, 30)]
    assert config == EnsembleConfig(layers=list(range(20, 30)), steps="0-9", merge="update").resolved(40, 50)
    assert dataclasses.replace(config, field="elsewhere").params() == config.params()  # the field is no identity


def test_a_huge_range_is_checked_without_listing_it():
    """A config keeps range text until it is resolved against a run: `0-99999999999` costs nothing to validate, and
    resolving it against the model names the field and its bound."""
    config = EnsembleConfig(layers="0-99999999999")
    assert config.layers == "0-99999999999"
    with pytest.raises(UsageError, match="ensemble.layers: '0-99999999999' reaches layer 99999999999, out of range"):
        config.resolved(40, 10)
