"""`sampler:` - overrides of the model family's sampler defaults; an omitted field keeps the family's default.

The section is generated from `cos_ray.sampler.SamplerSettings` (every field optional), so a field added there is
accepted here, appears in the JSON Schema and enters unit ids without touching this file. One more field, `preset`
(`cos_ray.sampler.SAMPLER_PRESETS`, e.g. `lightning-4step`), lays a published protocol over the family's defaults
before the other fields apply; units record the settings it resolved to, not its name.
"""

from __future__ import annotations

import dataclasses
import typing

from cos_ray.errors import UsageError
from cos_ray.sampler import SamplerSettings, default_settings, preset_settings
from cos_ray.spec.fields import SpecNode


def _optional(hint):
    return hint if type(None) in typing.get_args(hint) else typing.Optional[hint]


_HINTS = typing.get_type_hints(SamplerSettings)

SamplerSpec = dataclasses.make_dataclass(
    "SamplerSpec",
    [(f.name, _optional(_HINTS[f.name]), dataclasses.field(default=None)) for f in dataclasses.fields(SamplerSettings)]
    + [("preset", typing.Optional[str], dataclasses.field(default=None))],
    bases=(SpecNode,),
    frozen=True,
    namespace={"__doc__": "Overrides of SamplerSettings; null or omitted: the model family's default.",
               "__module__": __name__},
)


def sampler_settings(spec, family: str) -> SamplerSettings:
    """The family's defaults with the spec's overrides applied (UsageError names the sampler field)."""
    overrides = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)} if spec is not None else {}
    preset = overrides.pop("preset", None)
    try:
        base = default_settings(family) if preset is None else preset_settings(preset, family)
        return base.replace(**overrides)
    except UsageError as err:
        raise UsageError(f"sampler.{err}") from None
