"""Work beside the stream (scoring) in one worker thread, batched across questions.

Everything queued while the worker was busy goes to `work` as one batch (one scorer call for
every question waiting), and results are handed to their owners on the scheduler's thread
(`pump`, through `deliver`), so jobs are only ever touched by that thread. An error in `work`
is raised by the next `pump`, on the scheduler's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ..evaluation.ledger import StageClock

W = TypeVar("W")
R = TypeVar("R")


class BatchSide(Generic[W, R]):
    """A `scheduler.Side`: `submit(item)`; `work(items) -> results` (one per item) runs in the
    worker thread, timed as `stage`; `deliver(item, result)` runs in `pump`."""

    def __init__(self, work: Callable[[list[W]], list[R]], deliver: Callable[[W, R], None],
                 clock: StageClock, stage: str = "score_s", name: str = "bestofn-side") -> None:
        self.work, self.deliver, self.clock, self.stage = work, deliver, clock, stage
        self.todo: queue.Queue[W | None] = queue.Queue()
        self.done: queue.Queue[tuple[list[W], list[R] | BaseException]] = queue.Queue()
        self.outstanding = 0
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def submit(self, item: W) -> None:
        self.outstanding += 1
        self.todo.put(item)

    def busy(self) -> bool:
        return self.outstanding > 0

    def _loop(self) -> None:
        while True:
            first = self.todo.get()
            if first is None:
                return
            batch, closing = [first], False
            while not closing:
                try:
                    nxt = self.todo.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    closing = True
                else:
                    batch.append(nxt)
            try:
                with self.clock.stage(self.stage):
                    got: list[R] | BaseException = self.work(batch)
                assert len(got) == len(batch), f"{len(batch)} items, {len(got)} results"
            except BaseException as e:  # noqa: BLE001 - raised on the scheduler's thread
                got = e
            self.done.put((batch, got))
            if closing:
                return

    def pump(self, wait: float) -> None:
        try:
            got = [self.done.get(timeout=wait) if wait > 0 else self.done.get_nowait()]
        except queue.Empty:
            return
        while True:
            try:
                got.append(self.done.get_nowait())
            except queue.Empty:
                break
        for batch, results in got:
            if isinstance(results, BaseException):
                raise results
            self.outstanding -= len(batch)
            for item, result in zip(batch, results, strict=True):
                self.deliver(item, result)

    def close(self) -> None:
        self.todo.put(None)
