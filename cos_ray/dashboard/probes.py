"""The paper's probes as small tables: scores under noise at a step vs at a frame, CKA sensitivity curves, layer
activation energy (layers × steps, and per frame at a step), and latent-swap outcomes by layer.

Perturbations are methods in the runs table (`noise_at_step` with `params.step`, `noise_at_frame` with
`params.frame`, `swap` with `params.layer`); energy and CKA rows live in the `layers` table (kind `energy` | `cka`).
Reference methods (`baseline`, `first_frame`, `ground_truth`) give the levels a perturbed score is read against.
Every function checks that its table and columns exist, so a store written before the probes reads as "no probes".
The tables live in `cos_ray.figures` (one per figure), shared with `cos-ray figures`.
"""

from __future__ import annotations

from cos_ray.figures.cka import cka_curves  # noqa: F401 - the views call them as probes.<name>
from cos_ray.figures.energy import energy_heatmap, energy_per_frame, energy_steps  # noqa: F401
from cos_ray.figures.noise import by_parameter as _by_parameter, noise_outcomes, reference_levels  # noqa: F401
from cos_ray.figures.presence import (  # noqa: F401
    LAYER_COLUMNS, NOISE, REFERENCES, SWAP, any_probe, has_layers as _has_layers, presence)
from cos_ray.figures.swap import swap_outcomes  # noqa: F401
