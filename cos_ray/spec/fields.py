"""The typed walker behind every spec section: YAML mappings -> validating dataclasses, problems with field paths.

A section is a dataclass deriving from `SpecNode`. Its annotations are the contract: the walker checks each value's
type, reports unknown keys with a did-you-mean (difflib), recurses into nested sections and lists of them, and
collects every problem instead of stopping at the first. A section's own rules live in `check()`, which runs from
`__post_init__`, so a section built in Python validates itself too. `schema.py` turns the same annotations into a
JSON Schema, so the schema can never drift from what is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import reprlib
import types
import typing
from typing import Any, Iterable, Literal, Union

from cos_ray.errors import UsageError
from cos_ray.spec.problems import Problems, join

MAX_UNKNOWN = 20  # unknown keys of one mapping reported (each with a did-you-mean), then counted
FAILED = object()  # a sub-section that could not be built (its problems are already recorded)


class SpecNode:
    """Mixin of every spec section: type checks from the annotations, then the section's own `check()`."""

    def __post_init__(self):
        problems = Problems()
        hints = hints_of(type(self))
        for field in dataclasses.fields(self):
            if field.name.startswith("_"):
                continue
            message = type_problem(getattr(self, field.name), hints[field.name])
            if message:
                problems.add(field.name, message)
        if not problems:
            for name, message in self.check():
                problems.add(name, message)
        problems.raise_if_any()

    def check(self) -> Iterable[tuple[str, str]]:
        """(field, message) for each broken rule of this section; the field path is completed by the walker."""
        return ()

    @classmethod
    def shorthand(cls, raw):
        """Map a short YAML form (e.g. `model: tiny`) to the mapping form; the default accepts mappings only."""
        return raw


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 10, 10, 8
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 80, 80, 40


def shown(value) -> str:
    """repr() of a value quoted in a message, cut short (a spec value can be a megabyte list)."""
    return _REPR.repr(value)


def hints_of(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _args(hint) -> tuple:
    return typing.get_args(hint)


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def is_tagged(hint) -> bool:
    """A base whose `registry` names its kinds (methods): YAML picks one by a one-key mapping."""
    return isinstance(hint, type) and "registry" in hint.__dict__


def is_node(hint) -> bool:
    return isinstance(hint, type) and (issubclass(hint, SpecNode) or is_tagged(hint))


def describe(hint) -> str:
    """What a value of this type looks like, in words for error messages."""
    if hint is type(None):
        return "null"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is Any:
        return "any value"
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(str(arg) for arg in _args(hint))
    if origin is list:
        return f"a list of {_plural(describe(_args(hint)[0]))}"
    if origin is dict:
        return f"a mapping of {_plural(describe(_args(hint)[0]))} to {_plural(describe(_args(hint)[1]))}"
    if _is_union(hint):
        return " or ".join(describe(arg) for arg in _args(hint))
    if is_tagged(hint):
        return "one of " + ", ".join(hint.registry)
    if is_node(hint):
        return f"a {hint.__name__} mapping"
    return getattr(hint, "__name__", str(hint))


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            return text[len(article):] + "s"
    return text


def type_problem(value, hint) -> str | None:
    """None when `value` fits `hint`, else "expected ..., got ..."."""
    return None if _fits(value, hint) else f"expected {describe(hint)}, got {shown(value)}"


def _fits(value, hint) -> bool:
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in _args(hint)
    if origin is list:
        return isinstance(value, (list, tuple)) and all(_fits(item, _args(hint)[0]) for item in value)
    if origin is dict:
        key, item = _args(hint)
        return isinstance(value, dict) and all(_fits(k, key) and _fits(v, item) for k, v in value.items())
    if _is_union(hint):
        return any(_fits(value, arg) for arg in _args(hint))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def suggest(key: str, names: Iterable[str]) -> str:
    """"did you mean 'layers'?" for a mistyped key, or the list of valid keys."""
    names = sorted(names)
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    valid = f"valid: {', '.join(names)}" if names else "this section takes no keys"
    return f"unknown key {shown(key)}; did you mean {close[0]!r}? ({valid})" if close else f"unknown key {shown(key)} ({valid})"


def parse(cls, raw, path: str, problems: Problems):
    """Build section `cls` from YAML data at `path`; on any problem record it and return FAILED."""
    if is_tagged(cls):
        return _parse_tagged(cls, raw, path, problems)
    raw = cls.shorthand(raw)
    names = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping with keys {', '.join(names)}, got {shown(raw)}")
        return FAILED
    before = len(problems.items)
    unknown = [key for key in raw if key not in names]
    for key in unknown[:MAX_UNKNOWN]:
        problems.add(join(path, str(key)[:80]), suggest(key, names))
    if len(unknown) > MAX_UNKNOWN:
        problems.add(path or "spec", f"and {len(unknown) - MAX_UNKNOWN:,} more unknown keys")
    hints = hints_of(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name.startswith("_"):
            continue
        where = join(path, field.name)
        if field.name not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                problems.add(where, f"missing; expected {describe(hints[field.name])}")
            continue
        kwargs[field.name] = convert(raw[field.name], hints[field.name], where, problems)
    if len(problems.items) > before:
        _partial_check(cls, kwargs, path, problems)
        return FAILED
    try:
        return cls(**kwargs)
    except UsageError as err:  # SpecError included
        problems.absorb(err, path)
    return FAILED


def _partial_check(cls, kwargs: dict, path: str, problems: Problems) -> None:
    """Run a section's own rules even though a sub-section failed, so that all problems are reported at once."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            values[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            values[field.name] = field.default_factory()
    broken = {name for name, value in kwargs.items() if value is FAILED or (isinstance(value, list) and FAILED in value)}
    values.update({name: value for name, value in kwargs.items() if name not in broken})
    if set(values) < {f.name for f in dataclasses.fields(cls)}:
        missing = {f.name for f in dataclasses.fields(cls)} - set(values)
        broken |= missing
        values.update(dict.fromkeys(missing))
    try:
        found = list(cls.check(types.SimpleNamespace(**values)))
    except Exception:  # a rule that needs a broken sub-section: its problems are already recorded
        return
    for name, message in found:
        if name.split(".")[0] not in broken:
            problems.add(join(path, name), message)


def convert(value, hint, path: str, problems: Problems):
    """A YAML value for a field of type `hint`: sections and lists of sections are built, scalars type-checked."""
    if is_node(hint):
        return parse(hint, value, path, problems)
    if typing.get_origin(hint) is list and is_node(_args(hint)[0]):
        if not isinstance(value, list):
            problems.add(path, f"expected {describe(hint)}, got {shown(value)}")
            return FAILED
        return [parse(_args(hint)[0], item, join(path, index), problems) for index, item in enumerate(value)]
    if _is_union(hint):
        nodes = [arg for arg in _args(hint) if is_node(arg)]
        if value is None and type(None) in _args(hint):
            return None
        if nodes:
            return parse(nodes[0], value, path, problems)
    message = type_problem(value, hint)
    if message:
        problems.add(path, message)
        return FAILED
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def _parse_tagged(base, raw, path: str, problems: Problems):
    """A one-key mapping naming its kind (`{ensemble: {...}}`), or the bare name for a kind with defaults."""
    registry = base.registry
    if isinstance(raw, str):
        raw = {raw: None}
    if not isinstance(raw, dict) or len(raw) != 1:
        problems.add(path, f"expected one of {', '.join(registry)} (a name, or a mapping with one key: "
                           f"{{ensemble: {{size: 3}}}}), got {shown(raw)}")
        return FAILED
    (name, body), = raw.items()
    if name not in registry:
        close = difflib.get_close_matches(str(name), list(registry), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.add(join(path, str(name)), f"unknown {getattr(base, 'kind', 'kind')} {name!r}; {hint}(valid: "
                                            f"{', '.join(registry)})")
        return FAILED
    return parse(registry[name], {} if body is None else body, join(path, name), problems)
