"""What every view shares: the store's URI, its one locked connection, cached query results, the sidebar filters.

The connection is a Streamlit resource (one per store for all sessions); query results are cached by store, query
and filter, so a rerun caused by a widget does not query again. "Reload" drops both, to read a sweep's new files.
"""

from __future__ import annotations

import importlib
import os

import altair as alt
import streamlit as st

from cos_ray.dashboard.connection import MissingStore, StoreConnection
from cos_ray.dashboard.filters import RunFilter, shown

STORE_ENV = "COS_RAY_STORE"


def store_uri(argv: list[str]) -> str:
    """`--out URI` after the script's `--`, else $COS_RAY_STORE, else ./results."""
    for index, arg in enumerate(argv):
        if arg == "--out" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--out="):
            return arg.split("=", 1)[1]
    return os.environ.get(STORE_ENV, "./results")


@st.cache_resource(show_spinner=False)
def _open(uri: str) -> StoreConnection:
    return StoreConnection(uri)


def connect(uri: str) -> StoreConnection:
    """The store's connection; a missing store stops the page with the reason."""
    try:
        return _open(uri)
    except MissingStore as err:
        st.error(str(err))
        st.stop()


@st.cache_data(show_spinner=False, max_entries=512)
def _cached(uri: str, name: str, args: tuple):
    module, function = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), function)(_open(uri), *args)


def cached(connection: StoreConnection, name: str, *args):
    """`cos_ray.dashboard.<name>(connection, *args)`, cached by store and arguments (`name`: "runs.runs_page")."""
    return _cached(connection.store.uri, f"cos_ray.dashboard.{name}", args)


def reload() -> None:
    _open.clear()
    _cached.clear()


def sidebar_filters(connection: StoreConnection) -> RunFilter:
    """The shared runs filter, chosen in the sidebar (empty choice = everything)."""
    options = cached(connection, "filters.filter_options")
    bar = st.sidebar
    bar.subheader("Filters")
    labels = dict(options["sweeps"])
    sweeps = bar.multiselect("Sweep", list(labels), format_func=lambda key: labels.get(key, key), key="f_sweep")
    families = bar.multiselect("Task family", options["families"], key="f_family")
    methods = bar.multiselect("Method", options["methods"], key="f_method")
    statuses = bar.multiselect("Status", options["statuses"], key="f_status")
    params = []
    if options["params"]:
        with bar.expander("Method parameters"):
            for key, values in options["params"].items():
                chosen = st.multiselect(key, values, format_func=shown, key=f"f_param_{key}")
                if chosen:
                    params.append((key, tuple(chosen)))
    return RunFilter(tuple(sweeps), tuple(families), tuple(methods), tuple(statuses), tuple(params))



def integer_axis(title: str) -> alt.Axis:
    """An axis of whole numbers (steps, layers, frames): ticks 0, 1, 2, ..., never 0.5."""
    return alt.Axis(title=title, format="d", tickMinStep=1)


def label_axis() -> alt.Axis:
    """An axis of setting names, shown whole (Vega-Lite cuts labels at 180 px by default)."""
    return alt.Axis(title=None, labelLimit=0)


def setting_column(labels) -> st.column_config.TextColumn:
    """The `setting` column wide enough for its longest name (about 7 px a character), pinned on the left."""
    longest = max((len(str(label)) for label in labels), default=10)
    return st.column_config.TextColumn("setting", width=min(900, max(120, 7 * longest + 24)), pinned=True)
