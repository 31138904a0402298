"""Progress of a benchmark run, on stderr (stdout is kept for the report).

On a terminal: a rich progress bar, else a tqdm one, else plain lines. When
stderr is not a terminal (a log file, CI, a pipe): plain lines, which read
well there. ``quiet``: nothing."""

from __future__ import annotations

import sys

__all__ = ["Progress", "make"]


class Progress:
    """Plain lines: ``[bench 3/9] mse_loss: timing 12 cases (as run)``."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done = 0, 0

    def start(self, total):
        self.total, self.done = total, 0

    def step(self, message):
        """A new step begins (the previous one is done)."""
        self.done += 1
        print(f"[bench {self.done}/{self.total}] {message}", file=self.stream, flush=True)

    def note(self, message):
        print(f"[bench] {message}", file=self.stream, flush=True)

    def close(self):
        pass


class _Quiet(Progress):
    def step(self, message):
        pass

    def note(self, message):
        pass


class _Rich(Progress):
    def __init__(self, stream):
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self._bar = Bar(TextColumn("bench"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=Console(file=stream), transient=True)
        self._task = None

    def start(self, total):
        super().start(total)
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def step(self, message):
        if self.done:
            self._bar.advance(self._task)
        self.done += 1
        self._bar.update(self._task, description=message)

    def note(self, message):
        self._bar.console.print(f"[bench] {message}", markup=False, highlight=False)

    def close(self):
        self._bar.stop()


class _Tqdm(Progress):
    def __init__(self, stream):
        super().__init__(stream)
        self._bar = None

    def start(self, total):
        from tqdm import tqdm

        super().start(total)
        self._bar = tqdm(total=total, file=self.stream, desc="bench", leave=False)

    def step(self, message):
        if self.done:
            self._bar.update(1)
        self.done += 1
        self._bar.set_postfix_str(message)

    def note(self, message):
        if self._bar is None:
            super().note(message)
        else:
            self._bar.write(f"[bench] {message}", file=self.stream)

    def close(self):
        if self._bar is not None:
            self._bar.close()


def make(quiet=False, stream=None):
    """The progress display for ``stream`` (default stderr)."""
    stream = stream or sys.stderr
    if quiet:
        return _Quiet(stream)
    if getattr(stream, "isatty", lambda: False)():
        for cls, module in ((_Rich, "rich"), (_Tqdm, "tqdm")):
            try:
                __import__(module)
            except ImportError:
                continue
            return cls(stream)
    return Progress(stream)
