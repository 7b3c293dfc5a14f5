"""Method comparison: mean score per setting with 95% CIs paired by task and seed, and ensembles vs best of N.

Intervals stay inside the scores' range (`cos_ray.figures.intervals`); setting names are shown whole."""

from __future__ import annotations

import altair as alt
import streamlit as st

from cos_ray.dashboard.views.common import cached, label_axis, setting_column

NUMBER = st.column_config.NumberColumn(format="%.4f")


def render(connection, where) -> None:
    st.header("Method comparison")
    kinds = cached(connection, "compare.score_kinds", where)
    if not kinds:
        st.info("no scored runs match the filters")
        return
    for kind in kinds:
        _one_kind(connection, where, kind)
    for kind in kinds:
        _answers(connection, where, kind)


def _one_kind(connection, where, kind: str) -> None:
    st.subheader(f"Score: {kind}")
    table = cached(connection, "compare.method_comparison", where, kind)
    frame = table.to_pandas()
    st.caption("mean with its 95% interval over runs (a logit interval: inside [0, 1]); diff: the setting minus the "
               "baseline on the same (task, seed, model, sampler settings), with its 95% interval (inside [−1, 1]) "
               "and the paired t-test's p-value; an ensemble's row is its members' own scores (answer: members), "
               "its merge (stream | update) is in the setting")
    _table(frame)
    if len(frame):
        base = alt.Chart(frame).encode(y=alt.Y("setting:N", axis=label_axis()))
        chart = (base.mark_rule().encode(x=alt.X("ci_low:Q", title=f"mean {kind}", scale=alt.Scale(zero=False)),
                                         x2="ci_high:Q")
                 + base.mark_point(filled=True, size=60).encode(x="mean:Q", tooltip=["setting", "runs", "mean"]))
        st.altair_chart(chart, width="stretch")

    best = cached(connection, "compare.ensemble_vs_best_of_n", where, kind)
    st.markdown(f"**Ensemble vs best of N baseline runs with the same seeds** ({kind})")
    if best.num_rows == 0:
        st.info("no ensemble unit whose seeds all have baseline runs")
        return
    frame = best.to_pandas()
    st.caption("per ensemble unit: its members' mean and best member vs the best baseline run among the same N "
               "seeds on the same task; diff = member mean − best of N, diff_best = best member − best of N")
    _table(frame)


def _answers(connection, where, kind: str) -> None:
    """The ensemble's two named answers side by side: every member's score, and the consensus member's."""
    from cos_ray.dashboard.compare import ANSWERS

    table = cached(connection, "compare.ensemble_answers", where, kind)
    if table.num_rows == 0:
        return
    named = "; ".join(f"`{name}`: {text}" for name, text in ANSWERS.items())
    st.markdown(f"**The ensemble's answer** ({kind}): {named}")
    _table(table.to_pandas())


def _table(frame) -> None:
    """A comparison table: numbers to 4 places, the setting's name whole and pinned."""
    config = {column: NUMBER for column in frame.columns if frame[column].dtype.kind == "f"}
    config["setting"] = setting_column(frame["setting"])
    st.dataframe(frame.drop(columns=["method", "params"]), hide_index=True, width="stretch", column_config=config)
