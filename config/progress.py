"""Progress for long commands: a bar on a terminal, a plain line now and then when not on one."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Reports how far a long job has come, in some unit (bytes, rows, entries).

    On a terminal it draws a tqdm bar; otherwise (CI, a log file, a pipe) it writes one line at most
    every `interval` seconds and one at the end, so logs stay readable.
    """

    def __init__(
        self, *, total: int | None, description: str, unit: str = "it", stream: TextIO | None = None,
        interval: float = 5.0, unit_scale: bool = False,
    ) -> None:  # fmt: skip
        self._stream = stream or sys.stderr
        self._description = description
        self._unit = unit
        self._total = total
        self._interval = interval
        self._last_line = 0.0
        self._done = 0
        self._bar = None
        if self._stream.isatty():
            self._bar = tqdm(
                total=total, desc=description, unit=unit, unit_scale=unit_scale, file=self._stream, dynamic_ncols=True
            )

    def update_to(self, done: int, note: str = "") -> None:
        self._done = done
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._write_line(note)

    def _write_line(self, note: str) -> None:
        of_total = f" of {self._total}" if self._total else ""
        suffix = f" ({note})" if note else ""
        self._stream.write(f"{self._description}: {self._done}{of_total} {self._unit}{suffix}\n")
        self._stream.flush()

    def close(self, note: str = "") -> None:
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note)
            self._bar.close()
        else:
            self._write_line(note)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
