"""The CLI's one error trampoline: a CosRayError becomes one line on stderr and its exit code, never a traceback."""

from __future__ import annotations

import functools
import sys

import click

from cos_ray.errors import CosRayError


def reports_errors(command):
    """Print a CosRayError as one line on stderr and exit with its code, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CosRayError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)

    return wrapper
