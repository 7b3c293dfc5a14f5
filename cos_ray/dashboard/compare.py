"""The Compare view's tables - method comparison with paired intervals, each ensemble against the best of N - live in
`cos_ray.figures.comparison` (one implementation for this view and `cos-ray figures`; the pairing and the intervals
are explained there)."""

from __future__ import annotations

from cos_ray.figures.comparison import (  # noqa: F401 - the views call them as compare.<name>
    ANSWER_COLUMNS, ANSWERS, BASELINE, BEST_OF_N_COLUMNS, COMPARISON_COLUMNS, SCORE_KINDS, ensemble_answers,
    ensemble_vs_best_of_n, method_comparison, score_kinds)
from cos_ray.figures.intervals import bounded_interval, difference_interval, paired_p, t_interval  # noqa: F401
