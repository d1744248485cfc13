"""A one-line progress bar for long runs (the audit): done/total, rate and time left, redrawn in place on stderr.

Redraws at most every `interval` seconds so drawing never costs what it measures. On a stream that is not a
terminal it writes nothing until `finish`, which prints one final line, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 28


class Progress:
    """Progress of `total` units of `unit` (e.g. events)."""

    def __init__(
        self,
        total: int,
        *,
        unit: str = "events",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 0)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if enabled is None else enabled
        self.interval = interval
        self.clock = clock
        self.done = 0
        self.started = clock()
        self._drawn = 0.0

    def advance(self, count: int, note: str = "") -> None:
        """Record `count` more units done; redraw if the last drawing is old enough."""
        self.done += count
        now = self.clock()
        if self.live and now - self._drawn >= self.interval:
            self._drawn = now
            self.stream.write("\r" + self.line(now, note) + "\x1b[K")
            self.stream.flush()

    def rate(self, now: float | None = None) -> float:
        """Units per second so far."""
        elapsed = (self.clock() if now is None else now) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float, note: str = "") -> str:
        """The bar as text: ``[#####.....]  45.2%  452,000/1,000,000 events  11,234 events/s  ETA 0:00:48``."""
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * BAR_WIDTH)
        rate = self.rate(now)
        remaining = (self.total - self.done) / rate if rate > 0 else None
        eta = "--:--:--" if remaining is None else _clock(remaining)
        text = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction * 100:5.1f}%  "
            f"{self.done:,}/{self.total:,} {self.unit}  {rate:,.0f} {self.unit}/s  ETA {eta}"
        )
        return f"{text}  {note}" if note else text

    def finish(self, note: str = "") -> None:
        """Draw the final state and end the line."""
        now = self.clock()
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self.line(now, note) + ("\x1b[K" if self.live else "") + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
