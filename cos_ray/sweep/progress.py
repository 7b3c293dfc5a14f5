"""The sweep's live progress: done / failed / running units and an ETA.

On a terminal, a rich progress bar; elsewhere (a Ray Job's logs, a pipe, CI) one line per finished unit, so that
`cos-ray logs -f` shows the same progress.
"""

from __future__ import annotations

import sys
import time


class SweepProgress:
    """Counts units as they start and end; `start()`/`finish()` bracket the live display."""

    def __init__(self, total: int, skipped: int = 0, enabled: bool = True, stream=None):
        from rich.console import Console

        self.total, self.skipped = total, skipped
        self.done = self.failed = self.running = 0
        self.console = Console(file=stream or sys.stderr, soft_wrap=True)
        self.enabled = enabled
        self.started = time.monotonic()
        self._bar = None

    def start(self) -> None:
        if not self.enabled:
            return
        if self.skipped:
            self.console.print(f"{self.skipped} unit(s) already in the store: skipped")
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]units"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeRemainingColumn(), console=self.console)
            self._task = self._bar.add_task("units", total=self.total, counts=self.counts())
            self._bar.start()

    def counts(self) -> str:
        return f"done {self.done} · failed {self.failed} · running {self.running}"

    def eta_s(self) -> float | None:
        """Seconds left at the rate of the units ended so far (None before the first)."""
        ended = self.done + self.failed
        if not ended:
            return None
        return (time.monotonic() - self.started) / ended * (self.total - ended)

    def unit_started(self) -> None:
        self.running += 1
        self._refresh()

    def unit_ended(self, unit_id: str, ok: bool, seconds: float, error: str | None = None) -> None:
        self.running -= 1
        self.done += ok
        self.failed += not ok
        if self._bar is not None:
            if not ok:
                self._bar.console.print(f"[red]unit {unit_id} failed[/red]: {error}")
            self._bar.update(self._task, completed=self.done + self.failed, counts=self.counts())
        elif self.enabled:
            eta = self.eta_s()
            state = "ok" if ok else f"failed: {error}"
            self.console.print(f"[{self.done + self.failed}/{self.total}] unit {unit_id} {state} ({seconds:.1f} s); "
                               f"{self.counts()}; eta {'?' if eta is None else f'{eta:.0f} s'}",
                               highlight=False, markup=False)

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, counts=self.counts())

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
