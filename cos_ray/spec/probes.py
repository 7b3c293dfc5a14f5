"""`probes:` - what each run records besides its video: x̂0 statistics every k steps, decoded into filmstrips or not."""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.spec.fields import SpecNode


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
class ProbesSpec(SpecNode):
    """Probes applied to every run of the sweep (the probes issue adds energy maps and CKA here)."""

    x0: X0Spec | None = None
