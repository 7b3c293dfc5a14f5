"""`expand(spec) -> [Unit]`: every grid point x task x method x start seed, deduplicated by unit id, in order.

Units are deterministic: the same spec always gives the same ids, and a spec extended with more seeds, tasks or grid
values gives the old units plus only the new ones - so a resubmission skips what the store already holds.
"""

from __future__ import annotations

from cos_ray.spec.layout import even_layout
from cos_ray.spec.load import Spec
from cos_ray.spec.methods import MethodContext, latent_frames
from cos_ray.tasks.protocol import prefetch_ground_truths, settings_for_task
from cos_ray.spec.unit import Unit, identity_of, unit_id


def sweep_id(spec: Spec, units: list[Unit]) -> str:
    """The sweep's id: its name and the set of its units (a resubmission of the same spec keeps it)."""
    return unit_id({"name": spec.name, "units": sorted(unit.unit_id for unit in units)})


def resolved_params(method, num_layers: int, steps: int, source=None) -> dict:
    """A method's parameters with ranges resolved to indices, so `0-20%` and `0-9` of 50 steps are the same unit;
    a swap's source is its run B's task identity (not how the spec named it)."""
    params = method.params()  # a concrete variant's params are its resolved config's canonical dict
    if source is not None:
        params["source"] = source.identity
    return params


def engine_configs(method, x0, probes: dict, source=None) -> dict:
    """What the engine runs for a method: `ensemble` (EnsembleConfig or None), `x0` (X0Config or None) and `program`
    (perturbation, energy and sensitivity probes, run B of a swap as its TaskRef - read when the unit runs)."""
    from cos_ray.probes.program import Program

    field = f"methods.{method.name}"
    fields = dict(method.program(field))
    if source is not None:
        fields["swap_source"] = source
    energy = probes.get("energy")
    if energy is not None:
        from cos_ray.probes.configs import EnergyConfig

        fields["energy"] = EnergyConfig(layers=energy["layers"], steps=energy["steps"], max_side=energy["max_side"],
                                        field="probes.energy")
    if probes.get("sensitivity") is not None:
        fields["sensitivity"] = probes["sensitivity"]
    return {"ensemble": method.config(field), "x0": x0.config() if x0 is not None else None,
            "program": Program(**fields) if fields else None}


def model_identity_of(spec: Spec) -> dict:
    from cos_ray.model.identity import model_identity

    return model_identity(spec.model.name, spec.model.lora, spec.model.experts_files())


def expand(spec: Spec, model_identity: dict | None = None) -> list[Unit]:
    """The units of a validated spec (model identity: preset key or a cheap checkpoint hash, computed once)."""
    return list(iter_units(spec, model_identity))


def iter_units(spec: Spec, model_identity: dict | None = None):
    """`expand`'s units one at a time, deduplicated by id: memory grows with the ids seen, not with the units, so
    counting a large sweep (`cos-ray spec check`) holds no unit longer than it takes to hash it."""
    identity = model_identity if model_identity is not None else model_identity_of(spec)
    workers = spec.model.workers
    seen: set[str] = set()
    prefetch_ground_truths((point.settings, task) for point in spec.points for task in point.tasks)
    for point in spec.points:
        probes = point.spec.probes
        x0 = probes.x0 if probes is not None else None
        steps = point.settings.steps
        context = MethodContext(point.num_layers, steps, latent_frames(point.settings.nominal_frames), point.tasks,
                                spec.base)
        methods = [variant for method in point.spec.methods for variant in method.variants(context)]
        for task_index, task in enumerate(point.tasks):
            settings = settings_for_task(point.settings, task)  # frames: null -> the sample's ground-truth count
            for method in methods:
                source = method.source_task(context, task_index)
                if source is not None and source.identity == task.identity:
                    continue  # run B is A itself: A and B must differ in their answer, a self-swap is the baseline
                params = resolved_params(method, point.num_layers, steps, source)
                shown = method.params() if source is None else {**method.params(), "source_task": source.task_id}
                applied = probes.resolved(point.num_layers, steps, method.perturbs) if probes is not None else {}
                configs = engine_configs(method, x0, applied, source)  # resolved once, for every seed
                for seed in method.start_seeds(point.spec.seed_list):
                    seeds = tuple(method.member_seeds(seed))
                    layout = even_layout(len(seeds), workers)
                    ident = identity_of(identity, settings, task, method.name, params, seeds, layout,
                                        configs["x0"], applied)
                    uid = unit_id(ident)
                    if uid not in seen:
                        seen.add(uid)
                        yield Unit(task, settings, seeds, layout=layout, unit_id=uid,
                                   model=spec.model.name, method=method.name, params=shown,
                                   method_spec=method, identity=ident, probes=applied, **configs)
