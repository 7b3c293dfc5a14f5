"""The sweep's live progress: done / failed / running units and an ETA weighed by model work.

Units differ in cost by orders of magnitude (a `first_frame` baseline needs no model; a 3-member ensemble of 50 steps
needs 150 member-steps), so the bar and the ETA count *work* - steps × members of each unit, 0 for a trivial one -
and the ETA starts only once model work has ended (the free units say nothing of the rate). Units are named by task
and method, not by their hex ids. On a terminal, a rich progress bar; elsewhere (a Ray Job's logs, a pipe, CI) one
line per finished unit, so that `cos-ray logs -f` shows the same progress.
"""

from __future__ import annotations

import sys
import time


def unit_work(unit) -> int:
    """Model work of a unit: denoising steps × members (0 for a trivial baseline, made without the model)."""
    if not unit.runs_model:
        return 0
    return int(unit.settings.steps) * len(unit.seeds)


def unit_label(unit) -> str:
    """`task · method · seeds` (e.g. `In-Domain_50/maze/00000 · ensemble · seeds 0-2`)."""
    task = getattr(unit.task, "task_id", None)
    seeds = unit.seeds
    if len(seeds) == 1:
        shown = f"seed {seeds[0]}"
    elif list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        shown = f"seeds {seeds[0]}-{seeds[-1]}"
    else:
        shown = "seeds " + ",".join(map(str, seeds))
    return " · ".join(part for part in (task, unit.method, shown) if part)


class SweepProgress:
    """Counts units (and their work) as they start and end; `start()`/`finish()` bracket the live display."""

    def __init__(self, units, skipped: int = 0, enabled: bool = True, stream=None):
        from rich.console import Console

        self.total, self.skipped = len(units), skipped
        self.work_total = sum(unit_work(unit) for unit in units)
        self.work_done = 0
        self.done = self.failed = self.running = 0
        self.console = Console(file=stream or sys.stderr, soft_wrap=True)
        self.enabled = enabled
        self._model_started = None  # when the first model unit started: the ETA's clock
        self._bar = None

    def start(self) -> None:
        if not self.enabled:
            return
        if self.skipped:
            self.console.print(f"{self.skipped} unit(s) already in the store: skipped")
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeRemainingColumn(), console=self.console)
            self._task = self._bar.add_task("sweep", total=max(self.work_total, 1), counts=self.counts())
            self._bar.start()

    def counts(self) -> str:
        return (f"units {self.done + self.failed}/{self.total} · failed {self.failed} · running {self.running} · "
                f"steps {self.work_done}/{self.work_total}")

    def eta_s(self) -> float | None:
        """Seconds left at the rate of the model work ended so far (None before the first model unit ends)."""
        if not self.work_done or self._model_started is None:
            return None
        elapsed = time.monotonic() - self._model_started
        return elapsed / self.work_done * (self.work_total - self.work_done)

    def unit_started(self, unit) -> None:
        self.running += 1
        if unit_work(unit) and self._model_started is None:
            self._model_started = time.monotonic()
        self._refresh()

    def unit_ended(self, unit, ok: bool, seconds: float, error: str | None = None) -> None:
        self.running -= 1
        self.done += ok
        self.failed += not ok
        self.work_done += unit_work(unit)
        label = unit_label(unit)
        if self._bar is not None:
            if not ok:
                self._bar.console.print(f"[red]{label} failed[/red]: {error}", highlight=False)
            self._bar.update(self._task, completed=self.work_done, description=label, counts=self.counts())
        elif self.enabled:
            eta = self.eta_s()
            state = "ok" if ok else f"failed: {error}"
            self.console.print(f"[{self.done + self.failed}/{self.total}] {label} {state} ({seconds:.1f} s); "
                               f"{self.counts()}; eta {'?' if eta is None else f'{eta:.0f} s'}",
                               highlight=False, markup=False)

    def note(self, text: str) -> None:
        """A line between units (e.g. while worker groups load their models: minutes on real checkpoints)."""
        if self.enabled:
            self.console.print(text, highlight=False, markup=False)

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, counts=self.counts())

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
