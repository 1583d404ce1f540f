"""Inference off the event loop: a waiting line, a dispatcher that micro-batches, and worker threads.

Requests put a `Job` (its model's transcriber, its audio and options) in the line and await its
future. One dispatcher task waits for a free worker, takes the first job in line, then every
waiting job that can share its inference call (same model, same decoding options, no longer
than one segment); the others keep their places, first in line for the next free worker. So a
batch only ever holds one model's requests, under load it grows by itself, and when idle a job
waits at most `batch_wait_s` for company. Each batch runs in a thread of a pool of `workers`
threads (torch releases the GIL), shared by every model the service runs. How many requests may
be in here at once is bounded before they arrive (see server/guard.py), so the line needs no
bound of its own.

A request's input may only ever fail that request: when a batch's inference call raises,
its jobs are run again one at a time, and only a job that fails alone gets the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
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
    transcriber: Transcriber  # the model asked for
    wave: np.ndarray  # (N,) float32 at the transcriber's sample rate
    opts: DecodeOptions
    timestamps: bool
    attention: bool
    future: asyncio.Future = field(repr=False)

    @property
    def key(self) -> tuple:
        """Jobs with equal keys can be decoded in one call (transcribers compare by identity)."""
        return (self.transcriber, self.opts, self.timestamps, self.attention)

    @property
    def batchable(self) -> bool:
        """Audio longer than one segment is decoded on its own, not to hold short requests back."""
        return len(self.wave) <= self.transcriber.max_piece_seconds * self.transcriber.sample_rate


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
        self._waiting: deque[Job] = deque()  # in order of arrival
        self._arrived = asyncio.Event()  # set when a job joins the line
        self._executor: Optional[ThreadPoolExecutor] = None
        self._dispatcher: Optional[asyncio.Task] = None
        self._running: set[asyncio.Task] = set()

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._waiting)

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="asr-inference")
        self._dispatcher = asyncio.create_task(self._dispatch())

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, *self._running, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def transcribe(
        self, transcriber: Transcriber, wave: np.ndarray, opts: DecodeOptions, timestamps: bool,
        attention: bool = False,
    ) -> Transcription:
        """`wave` transcribed by `transcriber`, in a batch of its own model's requests."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(Job(transcriber, wave, opts, timestamps, attention, future))
        self._arrived.set()
        return await future

    async def _dispatch(self) -> None:
        free_workers = asyncio.Semaphore(self.workers)
        while True:
            await free_workers.acquire()
            batch = await self._gather(await self._next())
            task = asyncio.create_task(self._execute(batch, free_workers))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _next(self) -> Job:
        """The first job in line whose client is still waiting for it."""
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            job = self._waiting.popleft()
            if not job.future.cancelled():  # else the client went away while it waited
                return job

    async def _gather(self, first: Job) -> list[Job]:
        """`first` and the waiting jobs that can share its call; waits once for company if no one
        else is in line (a job of another kind in line would be held up by the wait)."""
        batch = [first]
        if not first.batchable:
            return batch
        self._take_companions(batch)
        if len(batch) < self.max_batch_size and not self._waiting and self.batch_wait_s > 0:
            await asyncio.sleep(self.batch_wait_s)
            self._take_companions(batch)
        return batch

    def _take_companions(self, batch: list[Job]) -> None:
        """Move the jobs in line that can join `batch` into it, up to `max_batch_size`; drop those
        whose client went away; the rest keep their order."""
        staying: deque[Job] = deque()
        for job in self._waiting:
            if job.future.cancelled():
                continue
            if len(batch) < self.max_batch_size and job.key == batch[0].key and job.batchable:
                batch.append(job)
            else:
                staying.append(job)
        self._waiting = staying

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
            return first.transcriber.transcribe_batch(
                [job.wave for job in batch], first.opts, timestamps=first.timestamps, attention=first.attention
            )
        except Exception as exc:
            if len(batch) == 1:
                seconds = len(first.wave) / first.transcriber.sample_rate
                log.exception("inference failed on one request (%.2f s of audio)", seconds)
                return [exc]
            log.warning("inference failed on a batch of %d (%r); running its requests one at a time", len(batch), exc)
        return [self._run([job])[0] for job in batch]
