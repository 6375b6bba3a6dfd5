"""How a run shows its progress: one bar per method on a terminal, plain lines in a log file.

A batch job's log must read well as a file: no carriage returns or cursor codes, a few lines per
method, each a complete sentence of numbers (``calfuse  task 3/8  acc 71.2  1.4 s``). On a terminal
one bar per method is enough; bars nested inside it (per split, per training step) redraw over each
other and leave debris, so the engine draws none.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class RunProgress(Protocol):
    """What the engine reports while it runs."""

    shows_bars: bool
    """Whether terminal progress bars may be drawn (the feature store's extraction bar)."""

    def method_started(self, label: str, total: int, done: int) -> None:
        """Method ``label`` starts (or resumes with ``done`` of ``total`` tasks finished)."""

    def task_finished(
        self, label: str, done: int, total: int, accuracy: float, seconds: float
    ) -> None:
        """Task ``done`` of ``total`` is learned and evaluated; ``accuracy`` (percent) on what was
        learned so far; ``seconds`` of learning and evaluation."""

    def method_finished(self, label: str) -> None:
        """Method ``label`` has finished every task."""

    def features_extracted(self, description: str, images: int, seconds: float) -> None:
        """The feature store encoded ``images`` images of one split (not called for a cache hit)."""


class NoProgress:
    """Reports nothing."""

    shows_bars = False

    def method_started(self, label: str, total: int, done: int) -> None:
        """Nothing."""

    def task_finished(
        self, label: str, done: int, total: int, accuracy: float, seconds: float
    ) -> None:
        """Nothing."""

    def method_finished(self, label: str) -> None:
        """Nothing."""

    def features_extracted(self, description: str, images: int, seconds: float) -> None:
        """Nothing."""


class ProgressBars(NoProgress):
    """One tqdm bar per method, kept when it completes; nothing nested inside it."""

    shows_bars = True

    def __init__(self) -> None:
        self._bars: dict[str, object] = {}

    def method_started(self, label: str, total: int, done: int) -> None:
        """Open the method's bar."""
        from tqdm.auto import tqdm

        self._bars[label] = tqdm(total=total, initial=done, desc=label, unit="task", leave=True)

    def task_finished(
        self, label: str, done: int, total: int, accuracy: float, seconds: float
    ) -> None:
        """Advance the bar; its postfix shows the accuracy so far."""
        bar = self._bars[label]
        bar.set_postfix_str(f"acc {accuracy:.1f}", refresh=False)  # type: ignore[attr-defined]
        bar.update(1)  # type: ignore[attr-defined]

    def method_finished(self, label: str) -> None:
        """Close the bar."""
        bar = self._bars.pop(label, None)
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]


class ProgressLines(NoProgress):
    """Plain lines for a log file, one per finished task: ``calfuse  task 3/8  acc 71.2  1.4 s``.

    Thirteen methods of eight tasks would be a hundred lines nobody reads, so unless
    ``every_task`` a method's line is written for its last task always; for a task at a quarter of
    the way (2, 4 and 6 of 8) when ``min_interval`` seconds have passed since the method's previous
    line; and for any task when ``heartbeat`` seconds have. A quick method writes one line, a slow
    one at most four, and a method whose tasks take minutes each still shows that it is alive.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every_task: bool = False,
        min_interval: float = 10.0,
        heartbeat: float = 300.0,
    ):
        self.stream = stream
        self.every_task = every_task
        self.min_interval = min_interval
        self.heartbeat = heartbeat
        self._last: dict[str, float] = {}

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()

    def method_started(self, label: str, total: int, done: int) -> None:
        """Start the method's clock."""
        self._last[label] = time.monotonic()

    def task_finished(
        self, label: str, done: int, total: int, accuracy: float, seconds: float
    ) -> None:
        """Write the task's line when the rules above ask for it."""
        now = time.monotonic()
        since = now - self._last.get(label, now)
        quarter = any(done == -(-k * total // 4) for k in (1, 2, 3))
        if (
            self.every_task
            or done == total
            or (quarter and since >= self.min_interval)
            or since >= self.heartbeat
        ):
            self._last[label] = now
            self._write(f"{label}  task {done}/{total}  acc {accuracy:.1f}  {seconds:.1f} s")

    def features_extracted(self, description: str, images: int, seconds: float) -> None:
        """One line per split the store had to encode (a cold cache can take minutes)."""
        self._write(f"features  {description}  {images:,} images  {seconds:.1f} s")


def choose_progress(progress: bool | RunProgress, stream: TextIO | None = None) -> RunProgress:
    """``True``: bars when ``stream`` (default stdout) is a terminal, plain lines otherwise;
    ``False``: nothing; a :class:`RunProgress` is used as it is."""
    if progress is False:
        return NoProgress()
    if progress is True:
        stream = stream or sys.stdout
        isatty = getattr(stream, "isatty", None)
        return ProgressBars() if isatty is not None and isatty() else ProgressLines(stream)
    return progress
