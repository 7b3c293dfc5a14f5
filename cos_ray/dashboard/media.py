"""Media (videos, filmstrips) read from the store only when a view shows them, by their store-relative path.

Rows reference media as `media/{unit_id}/member-{k}/{name}`; anything else - an absolute path, `..`, another
folder - is refused, so a crafted row cannot make the dashboard serve a file from outside the store.
"""

from __future__ import annotations

import re

from cos_ray.errors import UsageError
from cos_ray.store.location import Store

MEDIA = re.compile(r"^media/[A-Za-z0-9_.=-]+/member-\d+/[A-Za-z0-9_.-]+$")


def media_bytes(store: Store, relative: str | None) -> bytes | None:
    """The file's bytes, or None when the row has no media or the file is gone."""
    if not relative:
        return None
    if not MEDIA.match(relative) or ".." in relative.split("/"):
        raise UsageError(f"media path {relative!r}: expected media/<unit_id>/member-<k>/<file> inside the store")
    try:
        with store.fs.open_input_stream(store.path(relative)) as handle:
            return handle.read()
    except (FileNotFoundError, OSError):
        return None
