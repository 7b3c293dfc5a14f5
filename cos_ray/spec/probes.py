"""`probes:` - what each run records besides its video: x̂0 statistics (and filmstrips), the paper's layer
activation energy maps, and the sensitivity of perturbed runs (linear CKA against the clean run).

`energy` applies to every run of the sweep; `sensitivity` only to runs of a perturbation method (`noise_at_step`,
`noise_at_frame`, `swap`): each such unit also runs the clean trajectory with the same seed and compares the two at
every step. Their rows go to the store's `layers` table (kind `energy` / `cka`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.engine.hook_points import GRAMMAR, LATENTS, HookPoint, point_problems
from cos_ray.probes.configs import EnergyConfig
from cos_ray.spec.fields import SpecNode
from cos_ray.spec.limits import SAMPLER_CAPS
from cos_ray.spec.methods import config_problems


@dataclass(frozen=True)
class X0Spec(SpecNode):
    """x̂0 = x_s - σ_s·v every `every` steps (and at the last); `decode: true` also decodes them into a filmstrip."""

    every: int = 1
    decode: bool = False

    def check(self):
        if self.every < 1:
            yield "every", f"expected an integer >= 1, got {self.every}"

    def config(self):
        from cos_ray.engine.records import X0Config

        return X0Config(every=self.every, decode_every=self.every if self.decode else None)


@dataclass(frozen=True)
class EnergySpec(SpecNode):
    """Activation energy maps (per-token L2 norm over channels of block outputs, cond branch) of blocks `layers`
    (every expert), at `steps` taken every `every` (and the last of them), stored with longest side `max_side`."""

    layers: int | str | list[int] = EnergyConfig.layers
    steps: int | str | list[int] = EnergyConfig.steps
    every: int = 1
    max_side: int = EnergyConfig.max_side

    def check(self):
        if self.every < 1:
            yield "every", f"expected an integer >= 1, got {self.every}"
        yield from config_problems(lambda: self.config(""))

    def config(self, path: str = "energy") -> EnergyConfig:
        return EnergyConfig(layers=self.layers, steps=self.steps, max_side=self.max_side, field=path)

    def resolved(self, num_layers: int, steps: int) -> dict:
        """{'layers': [...], 'steps': [...], 'max_side': n}: what the unit id hashes and the engine runs."""
        return self.config().resolved(num_layers, steps, every=self.every).params()

    def check_against(self, num_layers: int, steps: int | None, path: str):
        config = self.config(path)
        problems = config_problems(lambda: config.resolved(num_layers, SAMPLER_CAPS["steps"] if steps is None else steps))
        if problems:
            return problems
        resolved = config.resolved(num_layers, SAMPLER_CAPS["steps"] if steps is None else steps)
        return [(f"{path}.{name}", f"selects no {unit}")
                for name, unit in (("layers", "layer"), ("steps", "step")) if not getattr(resolved, name)]


@dataclass(frozen=True)
class SensitivitySpec(SpecNode):
    """Sensitivity of perturbed runs: linear CKA dissimilarity of `state` - `latents` (the latent x_s each step) or a
    block's output (`high.blocks.20`, `low.blocks.20`, `blocks.20`) - against the clean run, per step."""

    state: str = LATENTS

    @classmethod
    def shorthand(cls, raw):
        return {"state": raw} if isinstance(raw, str) else raw

    def check(self):
        if self.state != LATENTS and not HookPoint.is_name(self.state):
            yield "state", f"expected 'latents' or a block like {GRAMMAR}, got {self.state!r}"

    @property
    def point(self):
        """LATENTS, or the HookPoint the state names."""
        return LATENTS if self.state == LATENTS else HookPoint.parse(self.state)

    def check_against(self, num_layers: int, family: str | None, path: str):
        if self.state == LATENTS:
            return
        point = self.point
        for message in point_problems(point, num_layers):
            yield f"{path}.state", message
        if point.expert == "low" and family is not None and "ti2v" in family:
            yield f"{path}.state", f"a {family} model has one transformer ('high' / 'blocks.N'), no 'low' expert"


@dataclass(frozen=True)
class ProbesSpec(SpecNode):
    """Probes applied to the runs of the sweep: x̂0 (every run), energy (every run), sensitivity (perturbed runs)."""

    x0: X0Spec | None = None
    energy: EnergySpec | None = None
    sensitivity: str | SensitivitySpec | None = None

    def check(self):
        state = self.sensitivity
        if isinstance(state, str) and state != LATENTS and not HookPoint.is_name(state):
            yield "sensitivity", f"expected 'latents' or a block like {GRAMMAR}, got {self.sensitivity!r}"

    @property
    def sensitivity_spec(self) -> SensitivitySpec | None:
        if self.sensitivity is None or isinstance(self.sensitivity, SensitivitySpec):
            return self.sensitivity
        return SensitivitySpec(self.sensitivity)

    def check_against(self, num_layers: int, steps: int | None, family: str | None, path: str = "probes"):
        """Problems that need the model and sampler: (path, message) pairs."""
        if self.energy is not None:
            yield from self.energy.check_against(num_layers, steps, f"{path}.energy")
        if self.sensitivity_spec is not None:
            yield from self.sensitivity_spec.check_against(num_layers, family, f"{path}.sensitivity")

    def resolved(self, num_layers: int, steps: int, perturbed: bool) -> dict:
        """The probes a unit runs, resolved (only those that apply to it): {'energy': {...}, 'sensitivity': state}."""
        out = {}
        if self.energy is not None:
            out["energy"] = self.energy.resolved(num_layers, steps)
        if self.sensitivity_spec is not None and perturbed:
            out["sensitivity"] = self.sensitivity_spec.state
        return out
