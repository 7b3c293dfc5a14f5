"""Probes: scores under noise at a step vs at a frame, CKA sensitivity curves, layer energy maps and latent swaps."""

from __future__ import annotations

import altair as alt
import streamlit as st

from cos_ray.dashboard.filters import setting_label
from cos_ray.dashboard.views.common import cached, integer_axis


def render(connection, where) -> None:
    st.header("Probes")
    found = cached(connection, "probes.presence", where)
    if not (found["noise"] or found["swap"] or found["cka"] or found["energy"]):
        st.info("no probe runs in this store (methods noise_at_step, noise_at_frame, swap; probes energy and "
                "sensitivity) - or none match the filters")
        return
    kinds = cached(connection, "compare.score_kinds", where) or ["score"]
    kind = st.radio("Score", kinds, horizontal=True, key="probe_kind") if len(kinds) > 1 else kinds[0]
    references = cached(connection, "probes.reference_levels", where, kind)
    if found["noise"]:
        _scores_by(connection, where, kind, references, "noise_outcomes",
                   "Noise at step vs noise at frame", "step (noise_at_step) or latent frame (noise_at_frame)")
    if found["cka"]:
        _cka(connection, where)
    if found["energy"]:
        _energy(connection, where)
    if found["swap"]:
        _scores_by(connection, where, kind, references, "swap_outcomes", "Latent swap outcome by layer",
                   "layer swapped from run B")


def _scores_by(connection, where, kind, references, name, title, axis) -> None:
    st.subheader(title)
    frame = cached(connection, f"probes.{name}", where, kind).to_pandas()
    base = alt.Chart(frame).encode(x=alt.X("position:Q", axis=integer_axis(axis)), color="method:N")
    chart = (base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title=f"mean {kind}"), y2="ci_high:Q")
             + base.mark_line(point=True).encode(y="mean:Q", tooltip=["method", "position", "runs", "mean"]))
    if references.num_rows:
        levels = references.to_pandas()
        chart += alt.Chart(levels).mark_rule(strokeDash=[4, 4]).encode(
            y="mean:Q", color=alt.value("gray"), tooltip=["method", "runs", "mean"])
        st.caption("dashed: " + ", ".join(f"{row.method} {row.mean:.4f}" for row in levels.itertuples()))
    st.altair_chart(chart, width="stretch")
    st.dataframe(frame, hide_index=True, width="stretch")


def _cka(connection, where) -> None:
    st.subheader("Sensitivity (CKA dissimilarity to the clean run)")
    frame = cached(connection, "probes.cka_curves", where).to_pandas()
    frame["setting"] = [setting_label(m, p) for m, p in zip(frame["method"], frame["params"])]
    layers = sorted(frame["layer"].unique())
    layer = st.selectbox("State compared", layers, key="probe_cka_layer") if len(layers) > 1 else layers[0]
    shown = frame[frame["layer"] == layer]
    st.altair_chart(alt.Chart(shown).mark_line(point=True).encode(
        x=alt.X("step:Q", axis=integer_axis("denoising step")), y=alt.Y("mean:Q", title="1 − CKA"), color="setting:N",
        tooltip=["setting", "step", "runs", "mean"]), width="stretch")


def _energy(connection, where) -> None:
    st.subheader("Layer activation energy")
    heat = cached(connection, "probes.energy_heatmap", where).to_pandas()
    st.altair_chart(alt.Chart(heat).mark_rect().encode(
        x=alt.X("step:O", title="denoising step"), y=alt.Y("layer:O", title="layer", sort="descending"),
        color=alt.Color("energy:Q", scale=alt.Scale(scheme="viridis")), tooltip=["layer", "step", "energy"]),
        width="stretch")
    steps = cached(connection, "probes.energy_steps", where)
    step = st.select_slider("Step (per-frame map)", steps, key="probe_energy_step") if len(steps) > 1 else steps[0]
    frames = cached(connection, "probes.energy_per_frame", where, step).to_pandas()
    st.altair_chart(alt.Chart(frames).mark_rect().encode(
        x=alt.X("frame:O", title="latent frame"), y=alt.Y("layer:O", title="layer", sort="descending"),
        color=alt.Color("energy:Q", scale=alt.Scale(scheme="viridis")), tooltip=["layer", "frame", "energy"]),
        width="stretch")
