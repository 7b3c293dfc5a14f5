"""Where a store lives: a local path or a pyarrow filesystem URI, its file names, and listing its live files.

Layout: `{root}/{table}/part-{key}.parquet` (one per finished unit, or per sweep), `{root}/{table}/compact-*.parquet`
(compacted), `{root}/media/{unit_id}/member-{k}/...`. Temporary files start with a dot and are never listed.
Small files win over compacted rows of the same key (a retried unit replaces its old rows), and a compacted file
lists in its footer the compacted files it supersedes, so readers never count a row twice during a compaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from cos_ray.store.schema import TABLES

PART = re.compile(r"^part-(?P<key>[A-Za-z0-9_.=-]+)\.parquet$")
COMPACT = re.compile(r"^compact-[0-9a-f]+\.parquet$")
SUPERSEDES = b"cos_ray.supersedes"
DEFAULT_STORE = "./results"


@dataclass
class TableFiles:
    """The live files of one table: small files by key, compacted files not superseded by another one."""

    parts: dict[str, str] = field(default_factory=dict)  # key -> path
    compacted: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.parts and not self.compacted


class Store:
    """A store root on a pyarrow filesystem: `Store("./results")`, `Store("s3://bucket/sweeps")`."""

    def __init__(self, uri: str | Path = DEFAULT_STORE):
        uri = str(uri)
        if "://" in uri:
            self.fs, self.root = pafs.FileSystem.from_uri(uri)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
        self.uri = uri
        self.root = self.root.rstrip("/")

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def part_path(self, table: str, key: str) -> str:
        if not PART.match(f"part-{key}.parquet"):
            raise ValueError(f"store key {key!r}: letters, digits, _ . = - only")
        return self.path(table, f"part-{key}.parquet")

    def exists(self) -> bool:
        return self.fs.get_file_info(self.root).type == pafs.FileType.Directory

    def list_table(self, table: str) -> TableFiles:
        """The table's live files now (a snapshot: a concurrent writer may add more)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(table), allow_not_found=True))
        files = TableFiles()
        for info in sorted(infos, key=lambda i: i.path):
            if info.type != pafs.FileType.File:
                continue
            name = info.base_name
            match = PART.match(name)
            if match:
                files.parts[match.group("key")] = info.path
            elif COMPACT.match(name):
                files.compacted.append(info.path)
        if len(files.compacted) > 1:
            superseded = set()
            for path in files.compacted:
                superseded |= set(self._supersedes(path))
            files.superseded = [p for p in files.compacted if p.rsplit("/", 1)[-1] in superseded]
            files.compacted = [p for p in files.compacted if p.rsplit("/", 1)[-1] not in superseded]
        return files

    def _supersedes(self, path: str) -> list[str]:
        import pyarrow.parquet as pq

        try:
            with self.fs.open_input_file(path) as handle:
                metadata = pq.read_metadata(handle).metadata or {}
        except FileNotFoundError:
            return []
        return json.loads(metadata.get(SUPERSEDES, b"[]"))

    def is_empty(self) -> bool:
        return all(self.list_table(table).empty for table in TABLES)

    def media_path(self, unit_id: str, member: int, name: str) -> str:
        """Store-relative path of a media file, as rows reference it."""
        return f"media/{unit_id}/member-{member}/{name}"

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"
