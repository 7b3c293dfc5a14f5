"""The spec's JSON Schema, generated from the section dataclasses' annotations (so it cannot drift from them).

Grids are allowed at any path: every property also accepts `{grid: [values]}`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from cos_ray.spec.fields import _is_union, hints_of, is_node, is_tagged
from cos_ray.spec.sweep import SweepSpec

GRID_REF = {"$ref": "#/$defs/grid"}


def _type_schema(hint, defs: dict) -> dict:
    if hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    if hint is Any:
        return {}
    origin = typing.get_origin(hint)
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin is list:
        return {"type": "array", "items": _with_grid(_type_schema(typing.get_args(hint)[0], defs))}
    if origin is dict:
        return {"type": "object", "additionalProperties": _with_grid(_type_schema(typing.get_args(hint)[1], defs))}
    if _is_union(hint):
        return {"anyOf": [_type_schema(arg, defs) for arg in typing.get_args(hint)]}
    if is_tagged(hint):
        options = []
        for name, cls in hint.registry.items():
            ref = _section(cls, defs)
            options.append({"const": name})
            options.append({"type": "object", "properties": {name: {"anyOf": [ref, {"type": "null"}]}},
                            "required": [name], "additionalProperties": False})
        return {"anyOf": options}
    if is_node(hint):
        return _section(hint, defs)
    raise TypeError(f"no JSON Schema for {hint!r}")


def _with_grid(schema: dict) -> dict:
    return {"anyOf": [schema, GRID_REF]}


def _section(cls, defs: dict) -> dict:
    name = cls.__name__
    if name not in defs:
        defs[name] = {}  # placeholder against recursion
        hints = hints_of(cls)
        properties, required = {}, []
        for field in dataclasses.fields(cls):
            if field.name.startswith("_"):
                continue
            prop = _type_schema(hints[field.name], defs)
            if field.default is not dataclasses.MISSING:
                prop = {**prop, "default": field.default}
            elif field.default_factory is not dataclasses.MISSING:
                prop = {**prop, "default": field.default_factory()}
            else:
                required.append(field.name)
            properties[field.name] = _with_grid(prop)
        section = {"type": "object", "description": (cls.__doc__ or "").strip().splitlines()[0],
                   "properties": properties, "additionalProperties": False}
        if required:
            section["required"] = required
        short = {"ModelSpec": "a preset name or a checkpoint path", "TasksSpec": "a task folder"}.get(name)
        defs[name] = {"anyOf": [section, {"type": "string", "description": short}]} if short else section
    return {"$ref": f"#/$defs/{name}"}


def spec_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a sweep spec."""
    defs: dict = {"grid": {"type": "object", "properties": {"grid": {"type": "array", "minItems": 1}},
                           "required": ["grid"], "additionalProperties": False,
                           "description": "a grid: the sweep runs once per value (several grids: their product)"}}
    root = _section(SweepSpec, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "cos-ray sweep spec", **root,
            "$defs": defs}
