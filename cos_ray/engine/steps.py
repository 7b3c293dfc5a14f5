"""Ranges of denoising steps and of layers, as users write them: `0-9`, `0-20%`, `5`, `none`, lists.

Ranges are inclusive. A percentage range covers the fraction of the trajectory it names: with N steps, `a-b%` is
steps floor(a·N/100) .. ceil(b·N/100) − 1, so `0-20%` of 50 steps is 0-9 and `0-100%` is every step. A range that
reaches past the run is an error naming the field, never silently clipped.
"""

from __future__ import annotations

import math
import re

from cos_ray.errors import UsageError

_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*(?:-\s*(\d+(?:\.\d+)?)\s*(%?))?\s*$")
EMPTY = ("", "none")


def parse_index_range(value, count: int, field: str, unit: str = "step") -> tuple[int, ...]:
    """Indices selected by `value` among `count` (steps of a run, or blocks of a transformer)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in EMPTY):
        return ()
    if isinstance(value, bool):
        raise UsageError(f"{field}: expected a {unit} range like '0-9' or '0-20%', got {value!r}")
    if isinstance(value, int):
        indices = (value,)
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise UsageError(f"{field}: expected a list of integer {unit}s, got {value!r}")
        indices = tuple(sorted(set(value)))
    elif isinstance(value, str):
        indices = _parse_text(value, count, field, unit)
    else:
        raise UsageError(f"{field}: expected a {unit} range like '0-9' or '0-20%', got {value!r}")
    for index in indices:
        if not 0 <= index < count:
            raise UsageError(f"{field}: {unit} {index} is out of range 0-{count - 1}")
    return indices


def _parse_text(text: str, count: int, field: str, unit: str) -> tuple[int, ...]:
    match = _RANGE.match(text)
    if not match:
        raise UsageError(f"{field}: expected a {unit} range like '0-9', '0-20%', '5' or 'none', got {text!r}")
    start, start_pct, end, end_pct = match.groups()
    end = start if end is None else end
    end_pct = end_pct or (start_pct if match.group(3) is None else "")
    if bool(start_pct) != bool(end_pct) and match.group(3) is not None:
        start_pct = end_pct = start_pct or end_pct  # '0-20%' : the % applies to both bounds
    if start_pct or end_pct:
        low, high = float(start), float(end)
        if not 0 <= low <= high <= 100:
            raise UsageError(f"{field}: percentages must satisfy 0 <= start <= end <= 100, got {text!r}")
        return tuple(range(math.floor(low * count / 100), math.ceil(high * count / 100)))
    if "." in start or "." in end:
        raise UsageError(f"{field}: {unit} indices are integers (or use a percentage), got {text!r}")
    low, high = int(start), int(end)
    if low > high:
        raise UsageError(f"{field}: range start {low} is after its end {high}")
    if high >= count:
        raise UsageError(f"{field}: {text!r} reaches {unit} {high}, out of range 0-{count - 1}")
    return tuple(range(low, high + 1))


def normalize_index_range(value, field: str, unit: str = "step"):
    """A range as a config keeps it before the run's size is known: indices and lists become sorted integer tuples,
    text (`'20-29'`, `'0-20%'`) is checked for its syntax and kept until `parse_index_range` resolves it against a
    count (`'0-20%'` is 0-9 of 50 steps, 0-1 of 10), so a range too long for the model is reported as written.
    Malformed values fail here, naming `field`."""
    if isinstance(value, str) and value.strip().lower() not in EMPTY:
        if "%" in value:
            parse_index_range(value, 100, field, unit=unit)  # syntax and bounds of the percentages
        else:
            _check_text(value, field, unit)  # syntax and order, without listing the indices (a range may be huge)
        return value.strip()
    return parse_index_range(value, 1 << 62, field, unit=unit)  # an index or a list: as long as written


def _check_text(text: str, field: str, unit: str) -> None:
    match = _RANGE.match(text)
    if not match:
        raise UsageError(f"{field}: expected a {unit} range like '0-9', '0-20%', '5' or 'none', got {text!r}")
    start, end = match.group(1), match.group(3) or match.group(1)
    if "." in start or "." in end:
        raise UsageError(f"{field}: {unit} indices are integers (or use a percentage), got {text!r}")
    if int(start) > int(end):
        raise UsageError(f"{field}: range start {int(start)} is after its end {int(end)}")


def is_resolved(value) -> bool:
    """True for a tuple of indices (what a config holds once the run's size is known)."""
    return isinstance(value, tuple)
