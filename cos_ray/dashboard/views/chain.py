"""Chain-of-Steps: per-step curves by method, when answers lock in, and x̂0 filmstrips (steps × frames) of chosen
runs, one or two side by side, read from the store only when picked."""

from __future__ import annotations

import altair as alt
import streamlit as st

from cos_ray.dashboard.chain import METRICS
from cos_ray.dashboard.media import media_bytes
from cos_ray.dashboard.views.common import cached, integer_axis

NONE = "(none)"
NUMBER = st.column_config.NumberColumn(format="%.4f")


def render(connection, where) -> None:
    st.header("Chain-of-Steps")
    metric = st.selectbox("Per-step metric", list(METRICS), format_func=lambda m: f"{m}: {METRICS[m]}",
                          key="chain_metric")
    curves = cached(connection, "chain.step_curves", where, metric)
    if curves.num_rows == 0:
        st.info(f"no step has a {metric} among the filtered runs")
    else:
        frame = curves.to_pandas()
        base = alt.Chart(frame).encode(x=alt.X("step:Q", axis=integer_axis("denoising step")),
                                       color=alt.Color("method:N"))
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title=metric), y2="ci_high:Q")
        line = base.mark_line(point=True).encode(y="mean:Q", tooltip=["method", "step", "runs", "mean"])
        st.altair_chart(band + line, width="stretch")
        with st.expander("Curve values"):
            st.dataframe(frame, hide_index=True, width="stretch")

    st.subheader("Lock-in")
    st.caption("lock-in step: the first step from which the decoded x̂0's answer stays correct; flips: how often "
               "it changed between correct and wrong along the steps; locked_ci_low/high: the locked-in share's 95% "
               "Wilson interval; commit step: the step after which the answer no longer changes, right or wrong "
               "(exploration per step: the candidates, answer_in_candidates, x0_spread and x0_to_final metrics above)")
    locked = cached(connection, "chain.lock_in", where).to_pandas()
    st.dataframe(locked, hide_index=True, width="stretch", column_config={
        column: NUMBER for column in locked.columns if locked[column].dtype.kind == "f"})
    histogram = cached(connection, "chain.lock_in_histogram", where)
    if histogram.num_rows:
        st.altair_chart(alt.Chart(histogram.to_pandas()).mark_bar().encode(
            x=alt.X("lock_in_step:O", axis=alt.Axis(title="lock-in step", labelAngle=0)), y="runs:Q",
            color="method:N", xOffset="method:N"), width="stretch")
    else:
        st.caption("no filtered run locked in to a correct answer")

    st.subheader("x̂0 filmstrips")
    runs = cached(connection, "chain.runs_with_filmstrips", where)
    if not runs:
        st.info("no filtered run has a filmstrip (probes.x0.decode in the spec)")
        return
    pick = st.columns(2)
    first = pick[0].selectbox("Run", runs, key="chain_run_a")
    second = pick[1].selectbox("Beside it", [NONE, *runs], key="chain_run_b")
    shown = [first] if second == NONE else [first, second]
    for column, run_id in zip(st.columns(len(shown)), shown):
        with column:
            _filmstrip(connection, run_id)


def _filmstrip(connection, run_id: str) -> None:
    detail = cached(connection, "chain.run_detail", run_id)
    if detail is None:
        st.warning(f"run {run_id} is not in the store")
        return
    run = detail["run"]
    lock = "never" if run["lock_in_step"] is None else f"step {run['lock_in_step']}"
    st.markdown(f"**{run['run_id']}** · {run['method']} · {run['task_id']} · seed {run['seed']} · "
                f"score {run['score'] if run['score'] is not None else '—'} · lock-in {lock}")
    image = media_bytes(connection.store, run["filmstrip"])
    if image is None:
        st.warning(f"{run['filmstrip']} is missing from the store")
    else:
        st.image(image, caption=f"rows: steps {', '.join(map(str, detail['x0_steps']))}; columns: frames",
                 width="stretch", output_format="PNG")  # as stored: "auto" re-encodes an RGB PNG as JPEG
