"""Read a spec file as bounded YAML: size, encoding, aliases, nesting, strings and integers checked while parsing.

`yaml.safe_load` is safe against code execution but not against size: a 535-byte "billion laughs" file (aliases of
aliases) composes into a graph that every later tree walk expands to 9^10 values, 50,000 nested brackets overflow
the composer's recursion, and a non-UTF-8 byte surfaces as a UnicodeDecodeError traceback. The checks themselves are
cos-ray's one bounded reader (`cos_ray.bounded_read`: a regular file only, its size from `fstat` before reading, the
encoding with the offending byte's offset; `cos_ray.bounded_yaml.BoundedLoader`: every alias, level of nesting and
string against `Limits` while composing), shared with task.json, EvalKit results and training configs. Here a
refusal becomes a SpecError (exit 2) naming the field it was found in.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cos_ray import bounded_read
from cos_ray.bounded_read import FileRefused
from cos_ray.bounded_yaml import BoundedLoader  # noqa: F401 - the spec's loader, re-exported
from cos_ray.spec.limits import DEFAULT, Limits
from cos_ray.spec.problems import SpecError

WHAT = "spec file"


@contextlib.contextmanager
def _as_spec_error(source: str | None):
    """A FileRefused becomes the spec's SpecError: the field (if any) and the reason, under the spec's name."""
    try:
        yield
    except FileRefused as err:
        raise SpecError([(err.field, err.reason)], source) from None


def read_text(path: Path, limits: Limits = DEFAULT) -> str:
    """The file's text: a regular file of at most `max_bytes`, UTF-8, no NUL byte - or a SpecError saying which."""
    with _as_spec_error(str(path)):
        return bounded_read.read_text(path, limits, WHAT)


def load_yaml(text: str, limits: Limits = DEFAULT, source: str | None = None):
    """The YAML document in `text`, composed under `limits` (SpecError when refused or not valid YAML)."""
    with _as_spec_error(source):
        return bounded_read.load_yaml(text, limits, source, "spec")


def read_spec_data(path: str | Path, limits: Limits = DEFAULT):
    """Read and parse a spec file under `limits`; what `yaml.safe_load` gives, or a SpecError."""
    path = Path(path)
    return load_yaml(read_text(path, limits), limits, str(path))
