"""cos-ray dashboard: sweeps, runs, method comparison, Chain-of-Steps, probes and a read-only SQL box over a store.

    cos-ray dashboard --out results            # or: streamlit run dashboards/app.py -- --out results

The store is read through DuckDB only (`cos_ray.dashboard`: the queries, testable without Streamlit); this script
picks the view and the filters and hands them to `views/`. One view runs per page load, and media are read only when
a view shows them, so the first paint stays fast on large stores. No torch, no model: the dashboard reads the store
and nothing else.
"""

from __future__ import annotations

import sys

import streamlit as st

from cos_ray.dashboard.views import chain, common, compare, probes, runs, sql, sweeps

VIEWS = {"Sweeps": sweeps.render, "Runs": runs.render, "Compare": compare.render, "Chain-of-Steps": chain.render,
         "Probes": probes.render, "SQL": sql.render}


def main(argv: list[str]) -> None:
    """One page load: the store named after the script's `--` in `argv`, the chosen view, the sidebar filters."""
    st.set_page_config(page_title="cos-ray", layout="wide")
    uri = common.store_uri(argv)
    connection = common.connect(uri)

    wanted = st.query_params.get("view", "Sweeps")
    view = st.sidebar.radio("View", list(VIEWS), index=list(VIEWS).index(wanted) if wanted in VIEWS else 0,
                            key="view")
    st.query_params["view"] = view
    st.sidebar.caption(f"store: {connection.store.uri}")
    if st.sidebar.button("Reload", help="read the store's files again (a running sweep adds units)"):
        common.reload()
        st.rerun()
    where = common.sidebar_filters(connection)
    VIEWS[view](connection, where)


if __name__ == "__main__":  # `streamlit run` runs this file as __main__; dashboards/app.py calls main() itself
    main(sys.argv)
