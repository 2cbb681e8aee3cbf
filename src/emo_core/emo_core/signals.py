"""Stop signals: SIGTERM and SIGHUP stop a program the way Ctrl-C does.

Python turns SIGINT into :class:`KeyboardInterrupt`, so ``finally`` blocks and context managers
run -- the servo driver eases home and releases torque. SIGTERM (systemd, ``docker stop``, a ROS
launch shutting down) and SIGHUP (the terminal went away) kill the process outright by default,
leaving every servo torqued mid-move. :func:`stop_on_signals` makes them raise :class:`Stopped`, a
``KeyboardInterrupt``, so every path written for Ctrl-C serves them too; the process then exits
with ``128 + signal`` (:attr:`Stopped.exit_status`), as a shell reports a signal death.

:func:`signals_deferred` holds the stop signals back for a few lines that must not be cut in
half (releasing torque): a signal arriving meanwhile is delivered when the block ends.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Union

LOG = logging.getLogger(__name__)

#: What signal.getsignal() returns and signal.signal() accepts back.
_Handler = Union[Callable[[int, Union[FrameType, None]], Any], int, signal.Handlers, None]

#: Signals that mean "stop now, safely" besides SIGINT (which Python already maps to KeyboardInterrupt).
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by a stop signal; handled wherever Ctrl-C is."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The process exit status for an interrupt: 128 + the signal (130 for a plain Ctrl-C)."""
    return interrupt.exit_status if isinstance(interrupt, Stopped) else 128 + int(signal.SIGINT)


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """While inside, the stop signals raise :class:`Stopped` in the main thread.

    Only signals still at their default disposition are taken over: one the program already handles
    keeps its handler, and one that is ignored (``nohup`` ignores SIGHUP) stays ignored. The previous
    handlers come back on exit. Off the main thread (where Python cannot set handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, _Handler] = {}
    for sig in signals:
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _raise_stopped)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Block SIGINT and the stop signals for the duration (they are delivered right after).

    For the few bus writes that must complete once begun -- torque off on every servo -- so a second
    Ctrl-C or a SIGTERM cannot leave half of them torqued.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    blocked = {signal.SIGINT, *STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


__all__ = ["STOP_SIGNALS", "Stopped", "exit_status", "signals_deferred", "stop_on_signals"]
