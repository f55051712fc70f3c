"""On a terminal, a set-up step (stack.process.step) shows a spinner, the elapsed time and its
log's latest line, replaced by the step's one line when it ends.

Only the commands a person runs (`python -m stack`, `python -m webapp.build`) enable it, so the
services, and the images that run them, never need rich.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from stack import process
from stack.process import STEP_PREFIX, Step, StepDisplay, last_lines


class _LatestLine(ProgressColumn):
    """The log's latest line, dimmed and cut to the room left: what the tool is doing now."""

    def __init__(self, log: Path, width: int):
        super().__init__()
        self.log = log
        self.width = width

    def render(self, task) -> Text:  # noqa: ARG002 (rich's signature)
        latest = last_lines(self.log, 1)
        line = latest[0].strip() if latest else ""
        return Text(line[: max(0, self.width)], style="dim", no_wrap=True, overflow="ellipsis")


class SpinnerDisplay(StepDisplay):
    def __init__(self, console: Console | None = None):
        super().__init__()
        # No emoji codes: Maven's `group:x:jar` must not come out as a cross mark.
        self.console = console or Console(highlight=False, emoji=False, soft_wrap=True)
        self._progress: Progress | None = None

    def begin(self, step: Step) -> None:
        room = self.console.width - len(STEP_PREFIX) - len(step.title) - 16
        self._progress = Progress(
            TextColumn(STEP_PREFIX, style="bold", markup=False), SpinnerColumn(),
            TextColumn("{task.description}", markup=False), TimeElapsedColumn(), _LatestLine(step.log, room),
            console=self.console, transient=True, refresh_per_second=4,
        )
        self._progress.add_task(step.title, total=None)
        self._progress.start()

    def end(self, step: Step, outcome: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.console.print(Text.assemble((STEP_PREFIX, "bold"), f" {step.title} ... {outcome}"))


def enable(console: Console | None = None) -> None:
    """Show set-up steps with a spinner when stdout is a terminal (plain lines otherwise)."""
    console = console or Console(highlight=False, emoji=False, soft_wrap=True)
    if console.is_terminal and not console.is_dumb_terminal:
        process.step_display = SpinnerDisplay(console)
