"""Install diffusers `ModelHook`s for the length of a run; they are always removed, whatever happens."""

from __future__ import annotations

import itertools
from contextlib import contextmanager

from diffusers.hooks.hooks import HookRegistry

PREFIX = "cos_ray."
_names = itertools.count()


class HookSet:
    """Hooks registered through one `installed_hooks(roots)` context; `roots` are the experts they live under."""

    def __init__(self, roots):
        self._roots = list(roots)
        self._registered: list[tuple[object, str]] = []

    def add(self, module, hook, label: str) -> None:
        name = f"{PREFIX}{label}.{next(_names)}"
        HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)
        self._registered.append((module, name))
        if hook._is_stateful:
            # diffusers caches each registry's child registries to pass cache_context to stateful hooks; a new
            # stateful hook must be seen. Stale entries for stateless hooks are harmless (and skipped for speed).
            self._invalidate()

    def remove_all(self) -> None:
        while self._registered:
            module, name = self._registered.pop()
            HookRegistry.check_if_exists_or_initialize(module).remove_hook(name, recurse=False)

    def _invalidate(self) -> None:
        for root in self._roots:
            registry = getattr(root, "_diffusers_hook", None)
            if registry is not None:
                registry.invalidate_child_registries_cache()


@contextmanager
def installed_hooks(roots):
    hooks = HookSet(roots)
    try:
        yield hooks
    finally:
        hooks.remove_all()


def has_cos_ray_hooks(module) -> bool:
    """True if any cos-ray hook remains on `module` or its children (tests check that runs clean up)."""
    for child in module.modules():
        registry = getattr(child, "_diffusers_hook", None)
        if registry is not None and any(name.startswith(PREFIX) for name in registry.hooks):
            return True
    return False
