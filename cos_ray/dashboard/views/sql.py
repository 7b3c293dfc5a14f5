"""SQL box: SELECT statements over the store's views, on a connection that cannot reach files outside the store.

Each browser session queries on its own connection (`StoreConnection.sql_session`), kept in the session's state,
so a slow query here stalls no other viewer; it is stopped at the time limit and the page says how to raise it. A
result is read in Arrow batches up to the row and byte caps; past them the page shows the rows read and says why
the rest is missing.
"""

from __future__ import annotations

import streamlit as st

from cos_ray.store.sql_guard import QueryTimeout, RefusedQuery

EXAMPLE = "SELECT method, count(*) AS runs, avg(score) AS mean_score\nFROM runs GROUP BY 1 ORDER BY 1"


SESSION_KEY = "_cos_ray_sql_session"


def session_sql(connection):
    """This browser session's SQL connection (a new one after "Reload" replaced the store's connection)."""
    held = st.session_state.get(SESSION_KEY)
    if held is None or held[0] is not connection:
        if held is not None:
            held[1].close()
        held = (connection, connection.sql_session())
        st.session_state[SESSION_KEY] = held
    return held[1]


def render(connection, where) -> None:
    st.header("SQL")
    box = session_sql(connection)
    limits = box.limits
    tables = sorted(table for table in connection.tables if not table.startswith("_"))
    st.caption(f"views: {', '.join(tables)} - SELECT statements only; COPY, ATTACH, INSTALL, CREATE and reads of "
               f"files outside the store are refused. The sidebar filters do not apply here. A query may run "
               f"{limits.timeout_s:g} s and use {limits.memory_limit} of memory; its result is cut at "
               f"{limits.rows:,} rows or {limits.result_bytes / 10**6:,.0f} MB (cos-ray dashboard --sql-timeout, "
               f"--sql-memory, --sql-max-bytes).")
    with st.form("sql_form"):
        sql = st.text_area("Query", EXAMPLE, height=120, key="sql_text")
        st.form_submit_button("Run")
    try:
        fetched = box.fetch(sql)
    except QueryTimeout as err:
        st.error(f"stopped: {err}")
        return
    except RefusedQuery as err:
        st.error(f"refused: {err}")
        return
    table = fetched.table
    if fetched.cut:
        st.warning(f"cut: {fetched.cut}")
    st.caption(f"{table.num_rows:,} row(s) (at most {limits.rows:,} shown)")
    st.dataframe(table, hide_index=True, width="stretch")
