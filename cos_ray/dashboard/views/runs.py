"""Runs: the filtered runs, one page at a time, with the filtered set's aggregates and a run's video on demand."""

from __future__ import annotations

import streamlit as st

from cos_ray.dashboard.media import media_bytes
from cos_ray.dashboard.runs import SORTABLE, pages
from cos_ray.dashboard.views.common import cached


def _number(value, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(connection, where) -> None:
    st.header("Runs")
    summary = cached(connection, "runs.runs_summary", where)
    columns = st.columns(5)
    columns[0].metric("Runs", f"{summary['runs']:,}")
    columns[1].metric("OK", f"{summary['ok']:,}")
    columns[2].metric("Failed", f"{summary['failed']:,}")
    columns[3].metric("Mean score", _number(summary["mean_score"]))
    columns[4].metric("Mean overall", _number(summary["mean_overall"]))
    if summary["runs"] == 0:
        st.info("no runs match the filters")
        return
    controls = st.columns(4)
    order = controls[0].selectbox("Sort by", SORTABLE, key="runs_order")
    descending = controls[1].toggle("Descending", key="runs_desc")
    size = controls[2].selectbox("Rows per page", (25, 50, 100, 500), index=1, key="runs_size")
    total_pages = pages(summary["runs"], size)
    page = controls[3].number_input(f"Page (of {total_pages:,})", 1, total_pages, 1, key="runs_page")
    table = cached(connection, "runs.runs_page", where, int(page) - 1, size, order, descending)
    st.caption(f"rows {(page - 1) * size + 1:,}-{(page - 1) * size + table.num_rows:,} of {summary['runs']:,}")
    st.dataframe(table, hide_index=True, width="stretch")

    with st.expander("Video of a run"):
        run_ids = [run for run, video in zip(table.column("run_id").to_pylist(), table.column("video").to_pylist())
                   if video]
        run_id = st.selectbox("Run (this page)", ["(none)", *run_ids], key="runs_video")
        if run_id != "(none)":
            video = table.column("video").to_pylist()[table.column("run_id").to_pylist().index(run_id)]
            data = media_bytes(connection.store, video)
            if data is None:
                st.warning(f"{video} is missing from the store")
            else:
                st.video(data, format="video/mp4")
