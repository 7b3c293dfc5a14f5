"""Sampler settings: model defaults, overrides and validation messages."""

import pytest

from cos_ray.errors import UsageError
from cos_ray.sampler import default_settings, fit_size


def test_real_checkpoints_default_to_the_authors_protocol():
    settings = default_settings("a14b")
    assert (settings.steps, settings.guidance, settings.guidance_2, settings.shift) == (50, 5.0, 5.0, 5.0)
    assert (settings.boundary, settings.fps, settings.scheduler) == (0.875, 16, "flowmatch-euler")
    # frames and size: the sample's own (ground-truth count, first frame's size), no pixel cap
    assert settings.frames is None and settings.height is None and settings.max_area is None
    assert default_settings("ti2v").scheduler == "flowmatch-euler" and default_settings("ti2v").boundary is None
    assert default_settings("a14b").replace(scheduler="unipc").scheduler == "unipc"


def test_tiny_defaults_are_small_and_overridable():
    settings = default_settings("tiny-a14b")
    assert (settings.steps, settings.frames, settings.height, settings.width) == (10, 9, 64, 64)
    assert settings.replace(steps=4, frames=None).steps == 4
    assert settings.replace(steps=4).frames == 9


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"frames": 80}, "frames: expected a count of the form 4k\\+1"),
        ({"steps": 0}, "steps: expected an integer >= 1"),
        ({"guidance": -1.0}, "guidance: expected a positive number"),
        ({"scheduler": "ddim"}, "scheduler: expected one of flowmatch-euler, unipc, euler"),
        ({"boundary": 1.5}, "boundary: expected a ratio"),
        ({"stpes": 3}, "unknown sampler field"),
    ],
)
def test_bad_fields_are_named(overrides, message):
    with pytest.raises(UsageError, match=message):
        default_settings("a14b").replace(**overrides)


def test_fit_size_keeps_aspect_within_budget():
    height, width = fit_size(832, 480, 480 * 832, 16)
    assert (height, width) == (480, 832)
    height, width = fit_size(1000, 1000, 480 * 832, 16)
    assert height == width and height % 16 == 0 and height * width <= 480 * 832
