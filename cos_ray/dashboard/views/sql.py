"""SQL box: SELECT statements over the store's views, on a connection that cannot reach files outside the store."""

from __future__ import annotations

import streamlit as st

from cos_ray.store.sql_guard import RefusedQuery

EXAMPLE = "SELECT method, count(*) AS runs, avg(score) AS mean_score\nFROM runs GROUP BY 1 ORDER BY 1"


def render(connection, where) -> None:
    st.header("SQL")
    tables = sorted(table for table in connection.tables if not table.startswith("_"))
    st.caption(f"views: {', '.join(tables)} - SELECT statements only; COPY, ATTACH, INSTALL, CREATE and reads of "
               f"files outside the store are refused. The sidebar filters do not apply here.")
    with st.form("sql_form"):
        sql = st.text_area("Query", EXAMPLE, height=120, key="sql_text")
        st.form_submit_button("Run")
    try:
        table = connection.user_query(sql)
    except RefusedQuery as err:
        st.error(f"refused: {err}")
        return
    st.caption(f"{table.num_rows:,} row(s) (at most 10,000 shown)")
    st.dataframe(table, hide_index=True, width="stretch")
