"""Follow a Ray Job's logs until it ends, as `ray job logs -f` does, with limits on every wait.

Ray streams a job's log over a websocket (`tail_job_logs`, an async generator from the start of the log); it runs
here in a daemon thread feeding a queue, so the caller's thread can check the job's status between chunks, enforce
the pending and follow limits and stop on Ctrl-C. If the stream breaks, the rest is read by polling
`get_job_logs` from the number of characters already written, so no line is printed twice or lost.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

from cos_ray.cluster.errors import WaitTimeout
from cos_ray.jobs.client import JobTimeouts, bounded, check_hint
from cos_ray.jobs.ids import TERMINAL


class _Tail:
    """`client.tail_job_logs(id)` consumed on a daemon thread: chunks go to `chunks`, then None (end) or an error."""

    def __init__(self, client, submission_id: str):
        self.chunks: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.ended = False
        self._loop = asyncio.new_event_loop()
        self._task = None
        self._thread = threading.Thread(target=self._run, args=(client, submission_id), daemon=True,
                                        name=f"cos-ray-tail: {submission_id}")
        self._thread.start()

    def _run(self, client, submission_id):
        async def consume():
            async for chunk in client.tail_job_logs(submission_id):
                self.chunks.put(chunk)

        try:
            self._task = self._loop.create_task(consume())
            self._loop.run_until_complete(self._task)
        except BaseException as err:  # a broken stream: the caller falls back to polling
            self.error = err
        finally:
            self.ended = True
            self.chunks.put(None)
            self._loop.close()

    def cancel(self) -> None:
        """Stop streaming (the thread ends on its own: it is a daemon either way)."""
        task, loop = self._task, self._loop
        if task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile
                pass


def follow(client, submission_id: str, write, timeouts: JobTimeouts = JobTimeouts(), poll: float = 1.0,
           address: str | None = None, stop=None) -> str:
    """Write the job's log through `write(text)` until it ends; return its final status (SUCCEEDED, FAILED, STOPPED).

    `stop()` returning True ends the wait early (returning the status at that moment). Raises WaitTimeout if the job
    stays PENDING longer than `timeouts.pending`, or is still running after `timeouts.follow` seconds.
    """
    start = time.monotonic()
    written = 0
    checked = float("-inf")
    tail = _Tail(client, submission_id)
    polling = False
    try:
        while True:
            if not polling:
                chunk = _next_chunk(tail, poll)
                if chunk:
                    write(chunk)
                    written += len(chunk)
                    if time.monotonic() - checked < poll:  # a chatty job: check its status once per `poll`
                        continue
                polling = tail.ended  # the stream ended (job over) or broke: read the rest by polling
            checked = time.monotonic()
            status = _status(client, submission_id, timeouts, address)
            if polling or status in TERMINAL:
                written += _write_rest(client, submission_id, written, write, timeouts, address)
            if status in TERMINAL:
                return status
            if stop is not None and stop():
                return status
            _check_limits(status, start, timeouts, submission_id, address)
            if polling:
                time.sleep(poll)
    finally:
        tail.cancel()


def wait(client, submission_id: str, timeouts: JobTimeouts = JobTimeouts(), poll: float = 1.0,
         address: str | None = None, until=TERMINAL) -> str:
    """Wait, printing nothing, until the job's status is in `until`; return it."""
    start = time.monotonic()
    while True:
        status = _status(client, submission_id, timeouts, address)
        if status in until:
            return status
        _check_limits(status, start, timeouts, submission_id, address)
        time.sleep(poll)


def _next_chunk(tail: _Tail, poll: float) -> str | None:
    try:
        return tail.chunks.get(timeout=poll)
    except queue.Empty:
        return None


def _status(client, submission_id, timeouts, address) -> str:
    status = bounded(client.get_job_status, submission_id, timeout=timeouts.request,
                     what=f"status of job {submission_id}", address=address)
    return str(getattr(status, "value", status))


def _write_rest(client, submission_id, written, write, timeouts, address) -> int:
    logs = bounded(client.get_job_logs, submission_id, timeout=timeouts.request,
                   what=f"logs of job {submission_id}", address=address) or ""
    rest = logs[written:]
    if rest:
        write(rest)
    return len(rest)


def _check_limits(status, start, timeouts, submission_id, address) -> None:
    elapsed = time.monotonic() - start
    if status == "PENDING" and elapsed > timeouts.pending:
        raise WaitTimeout(
            f"job {submission_id} is still PENDING after {timeouts.pending:g} s (setting up its runtime environment "
            f"or waiting for resources for its driver); check `ray status` for free resources and the job's logs "
            f"(`cos-ray logs`); {check_hint(address)}"
        )
    if timeouts.follow is not None and elapsed > timeouts.follow:
        raise WaitTimeout(f"job {submission_id} is still {status} after {timeouts.follow:g} s; it keeps running")
