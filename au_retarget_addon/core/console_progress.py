"""Progress lines for runs without a window (`blender -b`, scripts): "Tracking NAME: frame
N of M (F frames/s)", at most once per interval and always for the last frame."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ConsoleProgress:
    """A `progress(done, total)` callback that prints a line now and then; returns True
    (never cancels)."""

    def __init__(self, name: str, every_s: float = 1.0, out: TextIO | None = None) -> None:
        self.name = name
        self.every_s = every_s
        self.out = out
        self.start = time.perf_counter()
        self.last = -float("inf")
        self.lines = 0

    def line(self, done: int, total: int) -> str:
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        return f"Tracking {self.name}: frame {done} of {total} ({rate:.1f} frames/s)"

    def __call__(self, done: int, total: int) -> bool:
        now = time.perf_counter()
        if done >= total or now - self.last >= self.every_s:
            self.last = now
            self.lines += 1
            print(self.line(done, total), file=self.out or sys.stdout, flush=True)
        return True
