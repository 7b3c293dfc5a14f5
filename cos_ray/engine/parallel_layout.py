"""A parallel layout as data: how many ranks hold one replica of the model and what they split (no torch needed).

`cos_ray.engine.parallel` applies it to a loaded pipeline; the spec (`model.parallel`), the CLI (`--ulysses K
--fsdp --cfg-parallel`) and the planner (`cos-ray plan`) validate and cost it without importing torch or diffusers.
A replica is `cfg x ulysses` ranks: with `cfg` two rank sets (cond, uncond) of `ulysses` ranks each.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.errors import UsageError


@dataclass(frozen=True)
class ParallelLayout:
    """How the ranks of one replica share a model: `ulysses` ranks split the sequence; `fsdp` shards the weights
    over them as well; `cfg` runs the cond and uncond passes of classifier-free guidance on two sets of `ulysses`
    ranks at the same time (`cos_ray.engine.cfg_parallel`), so a replica is `2 x ulysses` ranks."""

    ulysses: int = 1
    fsdp: bool = False
    cfg: bool = False
    field: str = "model.parallel"  # the name errors use

    def __post_init__(self):
        if not isinstance(self.ulysses, int) or isinstance(self.ulysses, bool) or self.ulysses < 1:
            raise UsageError(f"{self.field}.ulysses: expected an integer >= 1 (ranks per replica), got {self.ulysses!r}")
        if not isinstance(self.fsdp, bool) or not isinstance(self.cfg, bool):
            raise UsageError(f"{self.field}: fsdp and cfg are true or false, got fsdp={self.fsdp!r}, cfg={self.cfg!r}")
        if self.fsdp and self.ulysses < 2:
            raise UsageError(f"{self.field}.fsdp: shards the weights over a replica's ranks, so it needs ulysses >= 2 "
                             f"(got ulysses {self.ulysses}); one rank per replica holds the whole model")

    @property
    def cfg_degree(self) -> int:
        """Rank sets a replica's CFG branches run on: 2 with `cfg`, else 1 (both branches on every rank)."""
        return 2 if self.cfg else 1

    @property
    def ranks_per_replica(self) -> int:
        return self.cfg_degree * self.ulysses

    @property
    def active(self) -> bool:
        return self.ranks_per_replica > 1

    def describe(self) -> str:
        if not self.active:
            return "one replica per rank"
        sequence = f"Ulysses-{self.ulysses}" + (" + FSDP2" if self.fsdp else "") if self.ulysses > 1 else ""
        return " x ".join(part for part in ("CFG-2" if self.cfg else "", sequence) if part)

    def guidance_problem(self, guidance: float) -> str | None:
        """Why this layout cannot run a sampler of CFG scale `guidance` (diffusers makes the uncond pass only when
        the scale is > 1: without it the uncond rank set would have nothing to compute), or None."""
        if self.cfg and not guidance > 1.0:
            return (f"CFG-parallel runs the cond and uncond passes on two rank sets, but guidance {guidance:g} makes "
                    "no uncond pass (diffusers runs it only for guidance > 1): use guidance > 1 or no CFG-parallel")
        return None


def ranks_per_replica(parallel) -> int:
    """Ranks (Ray actors, GPUs) per replica of a spec's `model.parallel` mapping (or None): cfg x ulysses."""
    return as_layout(parallel).ranks_per_replica


def layout_problems(layout: ParallelLayout, heads: int, tokens: int | None = None) -> list[str]:
    """Why `layout` cannot run a transformer of `heads` attention heads on `tokens` tokens (no torch needed)."""
    problems = []
    k = layout.ulysses
    if heads % k:
        divisors = [d for d in range(1, heads + 1) if heads % d == 0]
        problems.append(f"ulysses {k} does not divide the model's {heads} attention heads (Ulysses gives each rank "
                        f"whole heads); use one of {divisors}")
    if tokens is not None and tokens % k:
        problems.append(f"ulysses {k} does not divide the {tokens:,} tokens of a forward pass (latent frames x "
                        f"patches); change the frames or the size, or use a K that divides {tokens}")
    return problems




def as_layout(raw, field: str = "model.parallel") -> ParallelLayout:
    """A `ParallelLayout` from a spec's mapping `{ulysses: K, fsdp: bool, cfg: bool}` (or None: one rank per replica)."""
    if raw is None:
        return ParallelLayout(field=field)
    if isinstance(raw, ParallelLayout):
        return raw
    if not isinstance(raw, dict):
        raise UsageError(f"{field}: expected a mapping like {{ulysses: 2, fsdp: true}}, got {raw!r}")
    unknown = sorted(set(raw) - {"ulysses", "fsdp", "cfg"})
    if unknown:
        raise UsageError(f"{field}: unknown key(s) {', '.join(unknown)}; expected ulysses, fsdp, cfg")
    return ParallelLayout(**raw, field=field)
