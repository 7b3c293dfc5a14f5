"""Errors a user can act on: each says what was expected, what arrived, and how to fix it."""


class CosRayError(Exception):
    """Base class of every error cos-ray reports to a user (the CLI prints it and exits non-zero)."""

    exit_code = 1


class UsageError(CosRayError):
    """Bad input given by the user: a field, a flag or a file that is not what was expected."""

    exit_code = 2


class CheckpointError(UsageError):
    """A model directory that is missing, incomplete or malformed; raised before any weights are read."""


class InputError(UsageError):
    """A task's own file (first frame, prompt, ground truth) that cannot be used.

    Deterministic: the same input fails the same way on any worker, so a unit failing with it is recorded failed at
    once - never retried on a fresh worker group, never blamed on the cluster.
    """


def run_reporting_errors(body) -> int:
    """Run a `python -m` entry point's `body()`: 0, or a CosRayError printed as one line on stderr and its exit code
    (what `cli.errors.reports_errors` does for the click commands)."""
    import sys

    try:
        body()
    except CosRayError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0
