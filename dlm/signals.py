"""SIGTERM and SIGHUP stop dlm the way Ctrl-C does: Slurm preempts a job with SIGTERM, `kill PID` sends it, and a
closed terminal sends SIGHUP. Python's default for both is to die on the spot, with no message and nothing
tidied; here each raises `Stopped` (a KeyboardInterrupt) in the main thread instead, so everything that handles
Ctrl-C handles them too: the one-line "interrupted" message, the records and complete checkpoints kept,
`--resume`. The exit code is the shell's for a death by that signal: 128 + its number (130 SIGINT, 143 SIGTERM,
129 SIGHUP), so schedulers and shells still see which signal ended the run.

A signal that was ignored when dlm started (`nohup` ignores SIGHUP) stays ignored. Once a command is on its way
out, `ignore_stops` makes a second Ctrl-C (or the SIGTERM a scheduler repeats) a no-op instead of a traceback from
the middle of the exit path.
"""

from __future__ import annotations

import signal
import threading

STOPS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by a signal other than SIGINT."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_received: list[int] = []  # the stop signals seen since the handlers were set (click turns Stopped into Abort)


def _raise_stopped(signum, frame) -> None:
    _received.append(signum)
    raise Stopped(signum)


def stop_like_ctrl_c() -> None:
    """From now on SIGTERM and SIGHUP raise `Stopped` in the main thread (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    for signum in STOPS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_stopped)


def raise_if_stopped() -> None:
    """Stop now if a stop signal arrived but its `Stopped` never reached the top: a handler that runs while Python
    is inside a finalizer (a `__del__`, a weakref callback) has its exception printed and dropped, and the run
    would go on to its end. Called at every training step."""
    if _received:
        raise Stopped(_received[0])


def ignore_stops() -> None:
    """The process is exiting: further Ctrl-C, SIGTERM and SIGHUP change nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, *STOPS):
        signal.signal(signum, signal.SIG_IGN)


def handlers() -> dict:
    """The current handlers of SIGINT, SIGTERM and SIGHUP (to put back after an in-process command)."""
    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, *STOPS)}


def restore(saved: dict) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in saved.items():
        if handler is not None:
            signal.signal(signum, handler)


def _signum(interrupt: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: its own, or the first stop signal seen (a library that catches the
    KeyboardInterrupt and raises a new one, as click does, loses the exception but not the signal)."""
    if isinstance(interrupt, Stopped):
        return interrupt.signum
    return _received[0] if _received else signal.SIGINT


def exit_code(interrupt: KeyboardInterrupt) -> int:
    return 128 + _signum(interrupt)


def signal_name(interrupt: KeyboardInterrupt) -> str:
    return signal.Signals(_signum(interrupt)).name
