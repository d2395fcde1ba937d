"""The terminal driver: Textual's, surviving a terminal that went away.

Textual writes to the terminal from one thread fed by a queue of 30 writes.
When the terminal goes (an SSH session dropped, a tmux pane killed) a write
fails with EIO, that thread ends, and the next 30 writes fill the queue: the
event loop then blocks on the 31st, or on the shutdown's last ``put``, for
ever. A console whose hangup ends it through its cleanup (``opstui demo``:
the world stopped, its runs cancelled, its lock released) hung there,
orphaned, still writing runs into its store. Here the writer drops what it
cannot write once the terminal failed, so the queue always drains.
"""

from __future__ import annotations

import contextlib

from textual.drivers._writer_thread import WriterThread
from textual.drivers.linux_driver import LinuxDriver


class SteadyWriter(WriterThread):
    """Textual's writer thread, draining its queue after the terminal failed."""

    #: The error that ended writing (None while the terminal takes writes).
    failed: OSError | None = None

    def run(self) -> None:
        write, flush = self._file.write, self._file.flush
        get, qsize = self._queue.get, self._queue.qsize
        while True:
            text = get()
            if text is None:
                break
            if self.failed is not None:
                continue  # nowhere to write: drained, so no writer blocks
            try:
                write(text)
                if qsize() == 0:
                    flush()
            except OSError as exc:  # EIO after a hangup, EPIPE, ENOSPC on a file
                self.failed = exc
        if self.failed is None:
            with contextlib.suppress(OSError):
                flush()


class SteadyDriver(LinuxDriver):
    """``LinuxDriver`` with ``SteadyWriter``."""

    def start_application_mode(self) -> None:
        super().start_application_mode()  # type: ignore[no-untyped-call]
        started, out = self._writer_thread, self._file
        if out is None:  # no terminal to write to: Textual's own writer as it is
            return
        # Swapped on the event loop's thread, before anything else can write:
        # what Textual queued (entering the alternate screen) is written first.
        steady = SteadyWriter(out)
        if started is not None:
            started.stop()
        steady.start()
        self._writer_thread = steady
