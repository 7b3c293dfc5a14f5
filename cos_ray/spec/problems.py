"""Spec problems collected with their field path, so that every mistake in a spec is reported at once."""

from __future__ import annotations

from cos_ray.errors import UsageError


class SpecError(UsageError):
    """One or more problems in a spec; `problems` holds (path, message) pairs, the message lists them all."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = list(dict.fromkeys(problems))  # grids repeat a problem in every variant: keep one
        self.source = source
        head = f"{len(self.problems)} problem(s) in spec {source}" if source else f"{len(self.problems)} problem(s)"
        lines = [_clip(f"{path}: {message}" if path else message) for path, message in self.problems]
        if len(lines) > MAX_LISTED:  # a spec with 100,000 unknown keys gets a short answer, not megabytes
            lines = lines[:MAX_LISTED] + [f"... and {len(lines) - MAX_LISTED:,} more problem(s)"]
        super().__init__(lines[0] if len(lines) == 1 and source is None else head + ":\n  " + "\n  ".join(lines))


MAX_LISTED = 20  # problems listed in one error
MAX_LINE = 300  # characters of one problem line (a value quoted in a message can be anything)


def _clip(line: str) -> str:
    """A line over MAX_LINE loses its middle, not its end: the field comes first and the reason last, and a long path
    or value quoted between them is what grows (a checkout folder named twice, a pasted value)."""
    if len(line) <= MAX_LINE:
        return line
    cut = " ... "
    head = MAX_LINE // 3
    tail = MAX_LINE - head - len(cut)
    return line[:head] + cut + line[-tail:]


def join(path: str, name: str | int) -> str:
    """`methods` + 1 -> `methods[1]`; `model` + `workers` -> `model.workers`."""
    if isinstance(name, int):
        return f"{path}[{name}]"
    if not name:
        return path
    return f"{path}.{name}" if path else name


class Problems:
    """A collector: `add(path, message)`, then `raise_if_any()` raises one SpecError listing them all."""

    def __init__(self):
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def absorb(self, err: UsageError, path: str = "") -> None:
        """Record an error raised by a validating dataclass, re-rooted at `path`."""
        if isinstance(err, SpecError):
            for sub, message in err.problems:
                self.add(join(path, sub) if sub else path, message)
            return
        text = str(err)
        field, sep, message = text.partition(": ")
        if sep and " " not in field:  # "steps: expected ..." from a config naming its own field
            self.add(field if path and field.startswith(path) else join(path, field), message)
        else:
            self.add(path, text)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, source: str | None = None) -> None:
        if self.items:
            raise SpecError(self.items, source)
