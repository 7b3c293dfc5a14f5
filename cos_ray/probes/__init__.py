"""The paper's probes, read off the engine's hook points: captured states, CKA sensitivity, layer energy maps, the
ensemble's consensus member - and `program`, which composes a unit's perturbation with the probes that read it.

Like the engine they know nothing of Ray and run in one process; interventions that change a run (noise, swaps)
live in `cos_ray.interventions`.
"""
