"""``opstui demo``: a live world on a local store, and the console on it."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from opstui.cli.output import say
from opstui.cli.root import app
from opstui.errors import UsageError

if TYPE_CHECKING:
    from opstui.demo.layout import Layout
    from opstui.demo.world import World

_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _say(line: str) -> None:
    say(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


@contextmanager
def _stop_on_signals(stop: threading.Event, seen: list[int]) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP end the demo through its cleanup, never halfway."""

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in _STOPS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@app.command()
def demo(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="The demo's directory: created, or reused if a demo made it."),
    ] = Path("opstui-demo"),
    speed: Annotated[
        float, typer.Option(help="Run the world this many times faster.", min=0.1, max=100)
    ] = 1.0,
    headless: Annotated[
        bool, typer.Option("--headless", help="No console: run the world until stopped.")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option(help="With --headless: stop after this many seconds.", min=0.1),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            help="The demo service's port [default: the last one, else any free port]; "
            "a port in use is replaced by a free one.",
            min=0,
            max=65535,
        ),
    ] = 0,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="A team store (postgresql://...) to run the demo in, instead of its own file.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A live demo: pipelines that run and fail, an endpoint that burns its SLO, a model
    that drifts; every key of the console does real work on it. q quits and stops it all."""
    if duration is not None and not headless:
        raise UsageError("--duration needs --headless", hint="the console runs until q")
    if not headless:
        from opstui.cli.launch import require_terminal

        require_terminal("the demo's console", "`opstui demo --headless`")
    from opstui.demo import setup

    if store is not None and not store.startswith(("postgresql://", "postgres://")):
        raise UsageError(
            f"--store {store!r} is not a PostgreSQL URL",
            hint="the demo keeps its own SQLite file in --dir; --store takes postgresql://...",
        )
    layout = setup.prepare_dir(directory, store)
    lock = setup.DemoLock(layout)
    lock.acquire()
    stop, seen = threading.Event(), list[int]()
    echo = _say if headless else None
    world: World | None = None
    # The handlers stay for the shutdown too: a second Ctrl-C must not cut it short.
    with _stop_on_signals(stop, seen):
        try:
            world = _build_world(layout, speed=speed, port=port, echo=echo)
            world.start()
            if headless:
                _headless(world, layout, stop, duration, speed)
            else:
                _console(world, layout, stop)
        finally:
            if world is not None:
                _shutdown(world, headless=headless)
            lock.release()
    if seen:
        raise typer.Exit(128 + seen[0])


def _build_world(
    layout: Layout, *, speed: float, port: int, echo: Callable[[str], None] | None
) -> World:
    from opstui.demo import setup
    from opstui.demo.layout import read_json
    from opstui.demo.service import Service
    from opstui.demo.world import World

    tell = echo or (lambda line: None)
    if not read_json(layout.state, {}).get("seeded"):
        tell("seeding the store from the bundled history (two weeks, four pipelines)…")
    setup.seed(layout)
    wanted = port or setup.previous_port(layout)
    service = Service(layout, port=wanted)
    if service.port_taken:
        # Said on stderr too: in console mode the console takes the screen next.
        say(
            f"opstui demo: port {wanted} is in use; the demo service listens on "
            f"127.0.0.1:{service.port} instead",
            err=True,
            flush=True,
        )
    config = setup.write_config(layout, port=service.port, speed=speed)
    setup.write_state(layout, speed=speed, service=service.url)
    return World(layout, config, service, speed=speed, echo=echo)


def _headless(world: World, layout: Layout, stop: threading.Event, duration: float | None,
              speed: float) -> None:  # fmt: skip
    from opstui.store.location import parse_location

    # A URL without its password, should one have been given in it.
    look = f"--store {parse_location(layout.store).display} --config {layout.config}"
    _say(f"opstui demo in {layout.root} at {speed:g}x")
    _say(f"web-api serves on {world.service.url} (/metrics, /health)")
    _say(f"look at it from another terminal: opstui {look}")
    _say(f"  or: opstui status|endpoints|drift {look}")
    _say(f"running {f'for {duration:g}s' if duration else 'until stopped'} (Ctrl-C stops it)")
    deadline = None if duration is None else time.monotonic() + duration
    reported: set[str] = set()
    while not stop.is_set():
        remaining = 1.0 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            break
        stop.wait(min(1.0, remaining))
        for problem in set(world.problems()) - reported:
            _say(f"error (it keeps going): {problem}")
            reported.add(problem)


def _console(world: World, layout: Layout, stop: threading.Event) -> None:
    from opstui.config import load_config
    from opstui.tui.app import OpstuiApp

    config = load_config(layout.config)
    # poll=False: the world already polls the endpoints and checks drift;
    # the console reads what they store, like a second operator's would.
    console = OpstuiApp(
        layout.store, config, refresh=config.tui.refresh, theme=config.tui.theme,
        keymap=config.tui.keys, poll=False,
    )  # fmt: skip

    def quit_on_stop() -> None:
        stop.wait()
        if console.is_running:
            console.call_from_thread(console.exit)

    threading.Thread(target=quit_on_stop, name="opstui-demo-stop", daemon=True).start()
    try:
        console.run()
    finally:
        stop.set()  # ends quit_on_stop whichever way the console ended
        console.remember_seen()


def _shutdown(world: World, *, headless: bool) -> None:
    say("opstui demo: stopping (runs in flight are cancelled)…", err=True, flush=True)
    cancelled = world.stop()
    if not headless:  # a headless demo said them as they came
        for problem in world.problems():
            say(f"opstui demo: error while it ran: {problem}", err=True)
    runs = ", ".join(map(str, cancelled))
    what = f"cancelled run {runs}; " if len(cancelled) == 1 else ""
    what = f"cancelled runs {runs}; " if len(cancelled) > 1 else what
    port = world.service.port
    line = f"opstui demo: stopped; {what}the service on 127.0.0.1:{port} is closed"
    say(line, err=True, flush=True)
    if headless:
        started = len(world.simulator.started_runs)
        _say(f"{started} runs started, {world.traffic.batches} feature batches, "
             f"{world.drift.checks} drift checks")  # fmt: skip
