"""Where a store lives: a local path or a URI (s3://, gs://, az://), the URIs of its Delta tables, its media paths.

Layout: `{root}/{table}/` is a Delta table (Parquet data files + `_delta_log/`), `{root}/media/{unit_id}/member-{k}/`
holds videos and filmstrips, `{root}/_damaged/` what `store check --repair` or a resume set aside,
`{root}/_leases/` the compaction leases (a Delta table too). Remote stores pass `storage_options` (or the JSON in
`COS_RAY_STORAGE_OPTIONS`) to delta-rs; media go through pyarrow's filesystems. Stores written before Delta (`{table}/part-*.parquet`, `compact-*.parquet`) are legacy: `is_legacy`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.fs as pafs

from cos_ray.store.schema import TABLES

DEFAULT_STORE = "./results"
LOG = "_delta_log"
DAMAGED = "_damaged"


class Store:
    """A store root: `Store("./results")`, `Store("s3://bucket/sweeps", storage_options={...})`."""

    def __init__(self, uri: str | Path = DEFAULT_STORE, storage_options: dict[str, str] | None = None):
        uri = str(uri)
        self.scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if self.scheme:
            self.fs, self.root = pafs.FileSystem.from_uri(uri)
        else:
            try:
                self.fs, self.root = pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
            except (RuntimeError, OSError) as err:  # a symbolic link loop: RuntimeError before Python 3.13
                from cos_ray.errors import UsageError

                raise UsageError(f"store {uri}: not a usable path ({err})") from None
        if storage_options is None and os.environ.get("COS_RAY_STORAGE_OPTIONS"):
            storage_options = json.loads(os.environ["COS_RAY_STORAGE_OPTIONS"])
        self.storage_options = storage_options or None
        self.uri = uri
        self.root = self.root.rstrip("/")

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path on `fs` (no scheme)."""
        return "/".join([self.root, *parts])

    def table_uri(self, table: str) -> str:
        """The URI delta-rs opens for `table`."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")
        return self.table_uri_of(table)

    def table_uri_of(self, name: str) -> str:
        """The URI of any Delta table under the root (the store's own `_leases` too)."""
        if self.scheme == "":
            return self.path(name)
        return f"{self.scheme}://{self.path(name)}"

    def exists(self) -> bool:
        return self.fs.get_file_info(self.root).type == pafs.FileType.Directory or (
            not self.is_local and any(self.has_table(table) for table in TABLES))

    def has_table(self, table: str) -> bool:
        """Whether `table` has a Delta log (it has had a commit)."""
        return self.fs.get_file_info(self.path(table, LOG)).type == pafs.FileType.Directory

    def is_legacy(self, table: str) -> bool:
        """A table folder in the pre-Delta format: Parquet parts and compacted files, no `_delta_log`."""
        if self.has_table(table):
            return False
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(table), allow_not_found=True))
        return any(info.base_name.endswith(".parquet") and not info.base_name.startswith(".") for info in infos)

    def is_empty(self) -> bool:
        return not any(self.has_table(table) or self.is_legacy(table) for table in TABLES)

    def media_path(self, unit_id: str, member: int, name: str) -> str:
        """Store-relative path of a media file, as rows reference it."""
        return f"media/{unit_id}/member-{member}/{name}"

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"
