"""The endpoint poller on a thread of its own, for the console and the demo.

Polling parses responses and judges them in Python; on the console's event
loop that would steal time from drawing. On its own thread with its own
event loop it only shares the GIL, and the console reads what it writes from
the store like any other reader (it holds the same leases as ``opstui poll``,
so a shared poller elsewhere is not doubled).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Sequence

from opstui.config.endpoints import EndpointDef
from opstui.sources.poller import Poller
from opstui.store.location import StoreLocation


class PollerThread:
    def __init__(
        self,
        store_path: str | os.PathLike[str] | StoreLocation,
        endpoints: Sequence[EndpointDef],
        *,
        on_exit: Callable[[BaseException | None], object] | None = None,
    ) -> None:
        self.poller = Poller(store_path, endpoints)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: str | None = None
        #: Called on the poller's thread when it ends, with what ended it
        #: (None: stopped, or returned): a thread dies silently otherwise.
        self.on_exit = on_exit
        self._thread = threading.Thread(target=self._main, name="opstui-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self.poller.run(stop=self._stop)

        ended: BaseException | None = None
        try:
            asyncio.run(run())
        except BaseException as exc:  # shown by the console; never kills it
            # (BaseException: a SystemExit would end the thread without a word.)
            ended = exc
            self.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            self._ready.set()
            if self.on_exit is not None:
                self.on_exit(ended)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling, flush what was seen, release the leases."""
        if not self._thread.is_alive():
            return
        self._ready.wait(timeout)
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
