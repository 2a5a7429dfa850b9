"""One Kafka client connection: frames in, answers out in request order.

The transport part of the door and nothing else: the socket reads straight into the codec's
``FrameBuffer`` (``asyncio.BufferedProtocol``: a large produce request lands in place and is
copied once, into its frame), which cuts the byte stream into size-prefixed frames, bounded by
``max_request_size`` (a larger or negative size closes the connection, as a Kafka broker does);
each frame goes to the broker's ``dispatch``, and the answers are written in the order the
requests came, as Kafka requires.

Requests run one after another, except that requests ``dispatch`` marks ``overlap`` (Produce)
start as soon as every earlier non-overlapping request is answered, without waiting for each
other: pipelined produces from one producer share a group commit, and their store calls are
still issued in request order. Any other request waits until every earlier one is answered,
so it sees their effects.

Slow or stuck peers: a connection with no request for ``idle_timeout`` seconds is closed, and so
is one whose started frame does not complete within ``frame_timeout`` (slow-loris). At most
``max_pending_requests`` requests are read ahead of their answers; beyond that, reading pauses,
and it also pauses while the peer does not read its answers (transport write buffer full).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ._settings import KafkaSettings
from .codec import FrameBuffer, FrameError

if TYPE_CHECKING:
    from millstream.auth import Principal, Session

    from ._sasl import SaslExchange

__all__ = ["Dispatch", "Job", "KafkaConnection"]

logger = logging.getLogger("millstream.server.kafka")


@dataclass(frozen=True, slots=True)
class Job:
    """A dispatched request: ``answer`` (a coroutine, not yet started) resolves to the response
    frame as chunks (size prefix included, for ``writelines``), or ``None`` for no response
    (acks=0). ``overlap``: it may run
    beside other overlapping requests (see the module docstring). ``close``: close the
    connection once this is answered (or skipped, when ``answer`` gives ``None``)."""

    answer: Awaitable[list[bytes | memoryview] | None]
    overlap: bool = False
    close: bool = False


#: The door's request handler: a whole request frame (header and body) in, a ``Job`` out.
Dispatch = Callable[[bytes, "KafkaConnection"], Job]


class KafkaConnection(asyncio.BufferedProtocol):
    """See the module docstring. Created by the door's server for each accepted socket."""

    def __init__(
        self,
        settings: KafkaSettings,
        dispatch: Dispatch,
        connections: set[KafkaConnection],
    ) -> None:
        self._settings = settings
        self._dispatch = dispatch
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._buffer = FrameBuffer(settings.max_request_size)
        self._discard = bytearray(4096)
        self._frames: deque[bytes] = deque()
        self._answers: deque[Job] = deque()
        self._frame_ready = asyncio.Event()
        self._answer_ready = asyncio.Event()
        self._sequential = 0  # sequential jobs not yet answered
        self._sequential_done = asyncio.Event()
        self._sequential_done.set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._transport: asyncio.Transport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reading_paused = False
        self._stopping = False  # shutdown: read no more requests, answer those read
        self._frame_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._muted = False
        self.peer: str = "?"
        self.host: str | None = None
        #: Per-connection state handlers may keep (e.g. the client id), by key.
        self.state: dict[str, Any] = {}
        #: Who the connection acts as once it has logged in over SASL, and its session
        self.principal: Principal | None = None
        self.session: Session | None = None
        self.sasl: SaslExchange | None = None
        #: The broker's handler table for this connection (``None``: not logged in)
        self.handlers: dict[type, Any] | None = None
        #: Close once the request being answered is answered (a failed SASL login)
        self.close_after_answer = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
            self.host = str(peer[0])
        self._connections.add(self)
        self._tasks = [
            self._loop.create_task(self._run_requests(), name=f"kafka-requests {self.peer}"),
            self._loop.create_task(self._write_answers(), name=f"kafka-answers {self.peer}"),
        ]
        self._arm_idle()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._stopping:
            return memoryview(self._discard)  # shutting down: what arrives is not read
        try:
            return self._buffer.buffer()
        except FrameError:
            return memoryview(self._discard)  # closing already (see buffer_updated)

    def buffer_updated(self, nbytes: int) -> None:
        if self._stopping:
            return
        try:
            frames = self._buffer.written(nbytes)
        except FrameError as exc:
            logger.info("closing %s: %s", self.peer, exc)
            self.close()
            return
        if frames:
            self._frames.extend(frames)
            self._frame_ready.set()
            self._cancel_idle()
        if self._buffer.buffered:
            if self._frame_timer is None:
                self._frame_timer = self._loop.call_later(
                    self._settings.frame_timeout, self._frame_timed_out
                )
        elif self._frame_timer is not None:
            self._frame_timer.cancel()
            self._frame_timer = None
        self._throttle()

    def eof_received(self) -> bool | None:
        self._stopping = True  # answer what was read; the peer half-closed, so nothing more
        self._frame_ready.set()
        transport = self._transport
        # Keep the half-open connection to answer, except over TLS, which cannot half-close.
        return transport is None or not transport.get_extra_info("sslcontext")

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        if self.session is not None:
            self.session.close()
        self._transport = None
        self._stopping = True
        for timer in (self._frame_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        for task in self._tasks:
            task.cancel()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- the two loops -----------------------------------------------------------------------

    async def _run_requests(self) -> None:
        """Dispatch frames in order. A sequential job's coroutine is run by the writer when
        its turn comes; an overlapping one starts now, once no sequential job is pending."""
        frames = self._frames
        try:
            while True:
                while not frames and not self._stopping:
                    self._frame_ready.clear()
                    await self._frame_ready.wait()
                # Stopping with nothing left to read: close once everything read is answered.
                job = self._dispatch(frames.popleft(), self) if frames else Job(_none(), close=True)
                if job.overlap:
                    await self._sequential_done.wait()
                    job = Job(asyncio.ensure_future(job.answer), True, job.close)
                else:
                    self._sequential += 1
                    self._sequential_done.clear()
                self._answers.append(job)
                self._answer_ready.set()
                if job.close:
                    return
                self._throttle()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("dispatching a request from %s failed", self.peer)
            self.close()

    async def _write_answers(self) -> None:
        answers = self._answers
        try:
            while True:
                while not answers:
                    self._answer_ready.clear()
                    self._arm_idle()
                    await self._answer_ready.wait()
                job = answers[0]
                try:
                    response = await job.answer
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("a request from %s failed; closing the connection", self.peer)
                    self.close()
                    return
                answers.popleft()
                if not job.overlap:
                    self._sequential -= 1
                    if not self._sequential:
                        self._sequential_done.set()
                transport = self._transport
                if transport is None or transport.is_closing():
                    return
                if response is not None:
                    transport.writelines(response)
                if job.close or self.close_after_answer:
                    self.close()
                    return
                if not self._writable.is_set():
                    await self._writable.wait()
                self._throttle()
        except asyncio.CancelledError:
            for job in answers:  # never leave a dispatched coroutine un-awaited
                answer = job.answer
                if isinstance(answer, asyncio.Future):
                    answer.cancel()
                elif asyncio.iscoroutine(answer):
                    answer.close()
            raise

    # -- flow control and timers -------------------------------------------------------------

    def _throttle(self) -> None:
        """Pause reading while too many requests wait for answers, resume below the mark."""
        transport = self._transport
        if transport is None:
            return
        backlog = len(self._frames) + len(self._answers)
        limit = self._settings.max_pending_requests
        if backlog >= limit and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif (
            backlog < limit // 2 and self._reading_paused and not self._stopping and not self._muted
        ):
            self._reading_paused = False
            transport.resume_reading()

    def mute(self, seconds: float) -> None:
        """Read nothing for ``seconds`` (a quota's throttle time, KIP-219)."""
        transport = self._transport
        if transport is None or self._muted:
            return
        self._muted = True
        if not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        self._loop.call_later(seconds, self._unmute)

    def _unmute(self) -> None:
        self._muted = False
        self._throttle()

    def _arm_idle(self) -> None:
        if self._idle_timer is None and not self._buffer.buffered and not self._frames:
            self._idle_timer = self._loop.call_later(self._settings.idle_timeout, self._idle)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle(self) -> None:
        self._idle_timer = None
        if not self._answers and not self._frames:
            logger.info("closing %s: idle for %.0f s", self.peer, self._settings.idle_timeout)
            self.close()

    def _frame_timed_out(self) -> None:
        self._frame_timer = None
        logger.info("closing %s: a request frame did not complete in time", self.peer)
        self.close()

    # -- the door's side -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection now (pending answers are dropped)."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def stop_reading(self) -> None:
        """Shutdown, step one: take no further requests; the ones read are still answered."""
        self._stopping = True
        self._frame_ready.set()
        transport = self._transport
        if transport is not None and not transport.is_closing() and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()

    async def drained(self) -> None:
        """Wait until every request read is answered (or the connection is gone)."""
        tasks = [task for task in self._tasks if not task.done()]
        if tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(tasks)


async def _none() -> None:
    return None
