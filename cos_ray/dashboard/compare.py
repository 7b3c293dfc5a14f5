"""Method comparison: mean score per method and setting with 95% CIs, paired against the baseline by task and seed,
and each ensemble against the best of N baseline runs with the same seeds.

The aggregates (counts, means, standard deviations of scores and of paired differences) are computed in DuckDB;
only one row per setting comes back, and the 95% intervals come from those moments (`intervals`): scores lie in
[0, 1] and paired differences in [-1, 1], so their intervals are logit intervals that stay inside that range (a
t interval on a mostly-solved baseline passed 1). The p-value is the paired t-test's. Neither needs resampling, so
the numbers do not change between page loads (a bootstrap would) and stay cheap on 10^5 runs.

Pairing: a setting's runs on (model, sampler settings, task, seed) are averaged into one cell and matched with the
baseline runs of the same cell; the filters' sweep, family and status apply to both sides, method filters to the
compared side only. Best of N: an ensemble unit with seeds S..S+N−1 against the best baseline score among those N
seeds on the same task (the baseline's oracle pick); units whose seeds are not all in the baseline are left out.

The tables live in `cos_ray.figures.comparison`: one implementation for this view and `cos-ray figures`.
"""

from __future__ import annotations

from cos_ray.figures.comparison import (  # noqa: F401 - the views call them as compare.<name>
    ANSWER_COLUMNS, ANSWERS, BASELINE, BEST_OF_N_COLUMNS, COMPARISON_COLUMNS, SCORE_KINDS, ensemble_answers,
    ensemble_vs_best_of_n, method_comparison, score_kinds)
from cos_ray.figures.intervals import bounded_interval, difference_interval, paired_p, t_interval  # noqa: F401
