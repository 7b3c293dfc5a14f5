"""The denoising loop made observable and steerable: pipeline calls, hook points, per-step records, latent edits.

Knows nothing of Ray: everything here runs and is tested in one process. It knows nothing of the interventions or the
probes either: they build on it (engine <- interventions <- probes) and the engine calls them through `apply(run)`.
"""
