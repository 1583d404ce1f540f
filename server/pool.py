"""Inference off the event loop: a queue, a dispatcher that micro-batches, and worker threads.

Requests put a `Job` on the queue and await its future. One dispatcher task takes a job,
waits for a free worker, then adds every queued job that can share the same inference
call (same decoding options, no longer than one segment), so under load the batch grows by itself and
when idle a job waits at most `batch_wait_s`. Each batch runs in a thread of a pool of
`workers` threads (torch releases the GIL). How many requests may be in here at once is
bounded before they arrive (see server/guard.py), so the queue needs no bound of its own.

A request's input may only ever fail that request: when a batch's inference call raises,
its jobs are run again one at a time, and only a job that fails alone gets the error.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from asr.decoding import DecodeOptions
from asr.transcribe import Transcriber, Transcription
from server.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    wave: np.ndarray  # (N,) float32 at the transcriber's sample rate
    opts: DecodeOptions
    timestamps: bool
    attention: bool
    future: asyncio.Future = field(repr=False)

    @property
    def key(self) -> tuple:
        """Jobs with equal keys can be decoded in one call."""
        return (self.opts, self.timestamps, self.attention)


class InferencePool:
    def __init__(
        self,
        workers: int,
        max_batch_size: int,
        batch_wait_s: float,
        metrics: Metrics,
    ):
        self.workers = workers
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.metrics = metrics
        self.transcriber: Optional[Transcriber] = None
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._carry: Optional[Job] = None  # taken from the queue, did not fit the last batch
        self._executor: Optional[ThreadPoolExecutor] = None
        self._dispatcher: Optional[asyncio.Task] = None
        self._running: set[asyncio.Task] = set()

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return self._queue.qsize() + (self._carry is not None)

    def start(self, transcriber: Transcriber) -> None:
        self.transcriber = transcriber
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="asr-inference")
        self._dispatcher = asyncio.create_task(self._dispatch())

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, *self._running, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def transcribe(
        self, wave: np.ndarray, opts: DecodeOptions, timestamps: bool, attention: bool = False
    ) -> Transcription:
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Job(wave, opts, timestamps, attention, future))
        return await future

    async def _dispatch(self) -> None:
        free_workers = asyncio.Semaphore(self.workers)
        while True:
            job = self._carry or await self._queue.get()
            self._carry = None
            if job.future.cancelled():  # the client went away while it waited
                continue
            await free_workers.acquire()
            batch = [job]
            self._carry = await self._gather(batch)
            task = asyncio.create_task(self._execute(batch, free_workers))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _gather(self, batch: list[Job]) -> Optional[Job]:
        """Add queued jobs that can share `batch[0]`'s call; return the first one that cannot."""
        first = batch[0]
        if not self._batchable(first):
            return None
        waited = False
        while len(batch) < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                if waited or self.batch_wait_s <= 0:
                    return None
                await asyncio.sleep(self.batch_wait_s)
                waited = True
                continue
            if job.future.cancelled():
                continue
            if job.key != first.key or not self._batchable(job):
                return job
            batch.append(job)
        return None

    def _batchable(self, job: Job) -> bool:
        """Audio longer than one segment is decoded on its own, not to hold short requests back."""
        max_seconds = self.transcriber.max_piece_seconds
        return len(job.wave) <= max_seconds * self.transcriber.sample_rate

    async def _execute(self, batch: list[Job], free_workers: asyncio.Semaphore) -> None:
        self.metrics.batch_size.observe(len(batch))
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(self._executor, self._run, batch)
        except Exception as exc:  # the executor itself failed (shut down): nothing was decoded
            outcomes = [exc] * len(batch)
        finally:
            free_workers.release()
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future.done():  # cancelled: the client went away
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _run(self, batch: list[Job]) -> list[Union[Transcription, Exception]]:
        """In a worker thread: one inference call for the whole batch -> each job's transcription
        or exception. If the call raises, each job is run alone, so that one job's bad input
        fails that job only."""
        first = batch[0]
        try:
            return self.transcriber.transcribe_batch(
                [job.wave for job in batch], first.opts, timestamps=first.timestamps, attention=first.attention
            )
        except Exception as exc:
            if len(batch) == 1:
                seconds = len(first.wave) / self.transcriber.sample_rate
                log.exception("inference failed on one request (%.2f s of audio)", seconds)
                return [exc]
            log.warning("inference failed on a batch of %d (%r); running its requests one at a time", len(batch), exc)
        return [self._run([job])[0] for job in batch]
