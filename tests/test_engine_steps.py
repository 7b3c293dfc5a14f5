"""Step and layer ranges: inclusive, fractions of the run, errors naming the field."""

import pytest

from cos_ray.engine.steps import parse_index_range
from cos_ray.errors import UsageError


@pytest.mark.parametrize(
    "value, count, expected",
    [
        ("0-20%", 50, tuple(range(10))),
        ("0-20%", 10, (0, 1)),
        ("0-100%", 10, tuple(range(10))),
        ("20-29", 40, tuple(range(20, 30))),
        ("5", 10, (5,)),
        (7, 10, (7,)),
        ([3, 1, 3], 10, (1, 3)),
        ("none", 10, ()),
        ("", 10, ()),
        (None, 10, ()),
        ("50-60%", 10, (5,)),
    ],
)
def test_ranges(value, count, expected):
    assert parse_index_range(value, count, "ensemble.steps") == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("0-60", r"ensemble.steps: '0-60' reaches step 60, out of range 0-49"),
        ("9-3", "ensemble.steps: range start 9 is after its end 3"),
        ("0-120%", "ensemble.steps: percentages must satisfy"),
        ("early", "ensemble.steps: expected a step range"),
        (55, "ensemble.steps: step 55 is out of range 0-49"),
        ([1, "x"], "ensemble.steps: expected a list of integer steps"),
    ],
)
def test_bad_ranges_name_the_field(value, message):
    with pytest.raises(UsageError, match=message):
        parse_index_range(value, 50, "ensemble.steps")
