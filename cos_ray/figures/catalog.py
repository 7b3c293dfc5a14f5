"""Every figure `cos-ray figures` can draw, by name, in the order the index shows them: the name, what it is, and the
function that draws it from (reader, runs filter, verdict) - or says why the sweeps' rows cannot support it."""

from __future__ import annotations

from importlib import import_module

FIGURES = {  # name -> (module, function, what it shows)
    "chain-of-steps": ("chain_of_steps", "figure", "x̂0 per step, lock-in, flips (Fig. 1 / Chain-of-Steps)"),
    "fig3b": ("noise", "figure", "noise at a step vs at a frame"),
    "fig3c": ("cka", "figure", "CKA sensitivity after noise, per step"),
    "fig5": ("energy", "figure", "activation energy by layer (and on the route)"),
    "fig5-maps": ("energy", "maps_figure", "one run's energy maps, layers x steps"),
    "fig6": ("swap", "figure", "latent swap by layer: whose answer A draws"),
    "ensemble": ("ensemble", "figure", "ensemble vs baseline, best-of-N, the medoid control, paired CIs"),
    "compare": ("comparison", "figure", "every method against the baseline (the Compare view)"),
    "frames-steps": ("frames_steps", "figure", "the answer over a frames x steps sampler grid"),
    "distillation": ("distillation", "figure", "few-step sampling vs the full model: answers and exploration per step"),
    "search-frontier": ("search_frontier", "figure", "search vs best-of-N: answers right per forward pass, paired CIs"),
}


def draw_function(name: str):
    module, function, _ = FIGURES[name]
    return getattr(import_module(f"cos_ray.figures.{module}"), function)
