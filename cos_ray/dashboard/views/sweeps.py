"""Sweeps: every sweep in the store with its status and progress, and the store's size."""

from __future__ import annotations

import streamlit as st

from cos_ray.dashboard.views.common import cached


def render(connection, where) -> None:
    st.header("Sweeps")
    summary = cached(connection, "sweeps.store_summary")
    columns = st.columns(3)
    columns[0].metric("Sweeps", f"{summary['sweeps']:,}")
    columns[1].metric("Runs", f"{summary['runs']:,}")
    columns[2].metric("Step rows", f"{summary['steps']:,}")
    table = cached(connection, "sweeps.sweeps_table")
    if table.num_rows == 0:
        st.info("no sweep has written to this store yet")
        return
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        "mean_score": st.column_config.NumberColumn("mean score", format="%.4f"),
    })
