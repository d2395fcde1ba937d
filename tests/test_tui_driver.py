"""The console's terminal writer survives the terminal going away (``tui/driver.py``)."""

from __future__ import annotations

import errno
import io
import threading

import pytest
from textual.drivers._writer_thread import MAX_QUEUED_WRITES, WriterThread

from opstui.tui.driver import SteadyWriter


class Gone(io.StringIO):
    """A terminal after a hangup: every write fails with EIO."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")


def drained(writer: WriterThread, writes: int, timeout: float) -> bool:
    """``writes`` writes then the shutdown's stop(), done within ``timeout``."""
    done = threading.Event()

    def feed() -> None:
        for _ in range(writes):
            writer.write("\x1b[2J frame")
        writer.stop()
        done.set()

    writer.start()
    threading.Thread(target=feed, daemon=True).start()
    return done.wait(timeout)


def test_after_the_terminal_fails_writes_are_dropped_and_stop_returns() -> None:
    writer = SteadyWriter(Gone())
    assert drained(writer, 10 * MAX_QUEUED_WRITES, timeout=10)
    assert isinstance(writer.failed, OSError) and writer.failed.errno == errno.EIO


def test_a_working_terminal_gets_every_write_in_order() -> None:
    out = io.StringIO()
    writer = SteadyWriter(out)
    assert drained(writer, 100, timeout=10)
    assert writer.failed is None and out.getvalue() == "\x1b[2J frame" * 100


# Its thread dies of the EIO, which is the point.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_textuals_own_writer_blocks_there() -> None:
    """Why SteadyWriter exists: Textual 8.2.8's writer thread ends at the first
    failed write and its 31st queued write blocks for ever. (If this starts
    failing, Textual fixed it and SteadyDriver can go.) The blocked feeder is
    a daemon thread: it dies with the test process."""
    assert not drained(WriterThread(Gone()), 2 * MAX_QUEUED_WRITES, timeout=1.5)
