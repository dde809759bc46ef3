"""The loop actor: one thread owns the device; every other thread asks it through :meth:`LoopActor.call`.

Requests queue for the loop thread, which runs them between audio blocks (:meth:`run_calls`), so the
mode, the store and the slider are only ever touched by one thread and no lock is held on the audio
path. A caller that gives up waiting cancels its request, so a command its sender was told had
failed never runs later.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

from edge.errors import StateError

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0


class LoopActor:
    def __init__(self) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._owner = threading.get_ident()

    def adopt_thread(self) -> None:
        """The calling thread becomes the loop thread (call before the loop starts)."""
        self._owner = threading.get_ident()

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._owner

    def call(self, fn: Callable, *args, timeout: float = CALL_TIMEOUT_S, wait: bool = True) -> Any:
        """Run ``fn(*args)`` on the loop thread and return its result (or raise its EdgeError)."""
        if self.on_loop_thread():
            return self._run(fn, args)
        fut: Future = Future()
        self._calls.put((fn, args, fut))
        if not wait:
            return None
        try:
            return fut.result(timeout)
        except TimeoutError:
            pass
        # NOTE: cancel, so a request its sender was told had failed never runs later (run_calls skips a
        # cancelled Future). cancel() fails when the loop took it in the meantime: running or done.
        if fut.cancel():
            raise StateError(f"the device did not answer within {timeout:g} s (audio loop busy or stopped); "
                             "the request was cancelled and will not run") from None
        if fut.done():
            return fut.result()
        log.warning("call %s timed out after %g s but is already running on the audio loop",
                    getattr(fn, "__name__", fn), timeout)
        raise StateError(f"the device did not answer within {timeout:g} s: the request is still running "
                         "and will finish (check the state before repeating it)") from None

    def run_calls(self) -> None:
        """On the loop thread: run every queued request, handing results and errors to their callers."""
        while True:
            try:
                fn, args, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(self._run(fn, args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                fut.set_exception(exc)

    def _run(self, fn: Callable, args: tuple) -> Any:
        """Every request passes here, on the loop thread; subclasses hook what follows a change."""
        return fn(*args)
