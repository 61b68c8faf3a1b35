"""One render thread for every page, newest request only.

A slider drag sends positions faster than a CPU renders them. Rendering every position queues
seconds of stale images; instead each client holds at most one waiting request: a newer one
replaces it (the replaced request is answered `Superseded`, the page ignores it), and the thread
takes waiting requests client by client, oldest first, so two pages share the machine fairly.
Renders run one at a time on one thread: the network's own kernels use every core, and nothing
else ever touches the networks' render copies."""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable, Hashable


class Superseded(Exception):
    """A newer request from the same client replaced this one before it was rendered."""


class Renderer:
    def __init__(self, name: str = "stylegan-render"):
        self._waiting: OrderedDict[Hashable, tuple[Callable[[], Any], Future]] = OrderedDict()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, client: Hashable, work: Callable[[], Any]) -> Future:
        """Run `work()` on the render thread; a waiting request of the same client is superseded."""
        future: Future = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("the renderer is closed")
            old = self._waiting.pop(client, None)
            self._waiting[client] = (work, future)      # at the back: other clients' requests go first
            self._cv.notify()
        if old is not None:
            old[1].set_exception(Superseded())
        return future

    def pending(self) -> int:
        with self._cv:
            return len(self._waiting)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            waiting, self._waiting = list(self._waiting.values()), OrderedDict()
            self._cv.notify()
        for _, future in waiting:
            future.cancel()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._waiting and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                _, (work, future) = self._waiting.popitem(last=False)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as e:   # handed to the request that asked for it
                future.set_exception(e)
