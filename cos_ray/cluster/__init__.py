"""Seed ensembles on Ray: model-holding workers, groups joined by their own process group, a driver-side coordinator.

The only part of cos-ray that imports Ray. Layers, each in its own file:
- `worker`: the actor that loads a model once and runs many trajectories (`run_trajectory`) on it;
- `collective`: the distributed `SeedGroup` (all-reduce / all-gather over a torch.distributed group of workers);
- `group`: N workers in one placement group, joined by one process group, called in lockstep through one call path
  that classifies every failure; the unit of failure;
- `coordinator`: the driver's API - groups built once, units of work (`cos_ray.spec.unit.Unit`, the one unit class)
  fed to them by `run_with_retries` (the policy in `retry`), one `UnitOutcome` per unit (`outcome`);
- `connect`: the one way a driver connects to Ray; `faults`: fault drills;
- `waits`, `errors`: timeouts that say what to check, failure kinds.
Importing this package imports neither Ray nor torch; the modules import what they need.
"""
