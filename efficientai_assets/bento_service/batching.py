"""Merges concurrent predict requests into one forward pass, behind a queue bounded in rows.

Why not BentoML's adaptive batching: its dispatcher (``CorkDispatcher``) holds a batch back until
the queue has waited about as long as the average wait of its last 50 batches. A burst makes that
average seconds long; afterwards every request is held that long, and since each held request
records the same wait again, the average only decays by 5% per refresh. Measured here: after 200
requests of 512 rows at concurrency 32, one-row requests took 2.3-3.3 s each for more than five
minutes (4 ms before). No setting bounds that wait below ``max_latency_ms``, and a
``max_latency_ms`` low enough to matter cancels large requests outright (503, no Retry-After).

This batcher never waits for company: when the model is free it takes what is queued (at most
``max_batch_rows`` rows, whole requests) and runs it; requests that arrive meanwhile form the next
batch. The queue is bounded in rows: a request that does not fit is refused at once with the time
the queue needs to drain (the service answers 503 with ``Retry-After``), so a burst leaves no
backlog behind it. A request that waited longer than ``max_wait_ms`` is refused the same way
instead of being computed for a client that has likely given up. Pure asyncio and numpy.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Retry-After is whole seconds: at least one, and never so far that a client gives up for good.
MIN_RETRY_AFTER_S, MAX_RETRY_AFTER_S = 1, 60


class Overloaded(Exception):
    """The queue cannot take this request now; ``retry_after_s`` is when it likely can."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class BatchStats:
    """What this worker's batcher has done since it started (served in ``/metadata``)."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest_batch_rows: int = 0
    refused_queue_full: int = 0
    refused_waited_too_long: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Job:
    rows: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued: float


class MicroBatcher:
    """Runs ``infer`` (rows → one output row per input row) on merged requests, one batch at a time.

    ``merge=False`` runs every request alone (adaptive batching off) with the same queue bound.
    ``infer`` runs on the event loop: this model's forward pass is shorter than a thread hop.
    """

    def __init__(
        self,
        infer: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch_rows: int,
        max_queue_rows: int,
        max_wait_ms: int,
        merge: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("max_batch_rows", max_batch_rows),
            ("max_queue_rows", max_queue_rows),
            ("max_wait_ms", max_wait_ms),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self._infer = infer
        self.max_batch_rows = max_batch_rows
        self.max_queue_rows = max_queue_rows
        self.max_wait_s = max_wait_ms / 1000
        self.merge = merge
        self._clock = clock
        self._queue: deque[_Job] = deque()
        self._queued_rows = 0
        self._worker: asyncio.Task[None] | None = None
        self._row_seconds = 0.0  # moving average of the forward pass's cost per row
        self.stats = BatchStats()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def retry_after_s(self) -> int:
        """Whole seconds the queue needs to drain at the recent cost per row (1 to 60)."""
        drain = self._queued_rows * self._row_seconds
        return max(MIN_RETRY_AFTER_S, min(MAX_RETRY_AFTER_S, math.ceil(drain)))

    def full(self) -> int | None:
        """``Retry-After`` seconds when the queue is full, so the edge can refuse before parsing."""
        return self.retry_after_s() if self._queued_rows >= self.max_queue_rows else None

    def describe(self) -> dict[str, Any]:
        return {
            "merge": self.merge,
            "max_batch_rows": self.max_batch_rows,
            "max_queue_rows": self.max_queue_rows,
            "max_wait_ms": round(self.max_wait_s * 1000),
            "queued_rows": self._queued_rows,
            **self.stats.as_dict(),
        }

    async def predict(self, rows: np.ndarray) -> np.ndarray:
        """``infer(rows)``, computed with whatever else is queued; raises ``Overloaded``."""
        size = len(rows)
        # A request larger than the whole bound is still taken when the queue is empty.
        if self._queued_rows and self._queued_rows + size > self.max_queue_rows:
            self.stats.refused_queue_full += 1
            raise Overloaded(
                f"overloaded: {self._queued_rows} rows are waiting for the model and {size} more "
                f"would pass the limit of {self.max_queue_rows}",
                self.retry_after_s(),
            )
        loop = asyncio.get_running_loop()
        job = _Job(rows, loop.create_future(), self._clock())
        self._queue.append(job)
        self._queued_rows += size
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run())
        return await job.future

    async def _run(self) -> None:
        while self._queue:
            # One turn of the loop lets requests that are already runnable join this batch.
            await asyncio.sleep(0)
            batch = self._take()
            if batch:
                self._compute(batch)

    def _take(self) -> list[_Job]:
        now = self._clock()
        batch: list[_Job] = []
        rows = 0
        while self._queue:
            job = self._queue[0]
            size = len(job.rows)
            if batch and (not self.merge or rows + size > self.max_batch_rows):
                break
            self._queue.popleft()
            self._queued_rows -= size
            if job.future.done():  # its request was cancelled (timeout, disconnect)
                continue
            waited = now - job.enqueued
            if waited > self.max_wait_s:
                self.stats.refused_waited_too_long += 1
                job.future.set_exception(
                    Overloaded(
                        f"overloaded: the request waited {waited * 1000:.0f} ms for the model, "
                        f"over the limit of {self.max_wait_s * 1000:.0f} ms",
                        self.retry_after_s(),
                    )
                )
                continue
            batch.append(job)
            rows += size
        return batch

    def _compute(self, batch: list[_Job]) -> None:
        import numpy as np

        started = time.perf_counter()
        try:
            merged = batch[0].rows if len(batch) == 1 else np.concatenate([j.rows for j in batch])
            output = self._infer(merged)
            if len(output) != len(merged):
                raise RuntimeError(f"the model answered {len(output)} rows for {len(merged)}")
        except Exception as error:  # every request of the batch gets the model's error
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        per_row = (time.perf_counter() - started) / len(merged)
        self._row_seconds = (
            per_row if not self.stats.batches else 0.8 * self._row_seconds + 0.2 * per_row
        )
        offset = 0
        for job in batch:
            size = len(job.rows)
            if not job.future.done():
                job.future.set_result(output[offset : offset + size])
            offset += size
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.rows += len(merged)
        self.stats.largest_batch_rows = max(self.stats.largest_batch_rows, len(merged))
