"""Outbound connections: the global and per-destination limits, and a cache of idle sessions to reuse.

Theory of operation: every delivery takes a slot from the pool before it connects: one of `max_total` in all
and one of `max_per_destination` for its destination (a recipient domain, or the smarthost). When its
transaction ended cleanly, the session goes back to the pool still holding its slot, as in Postfix's
connection cache: the next delivery to the same destination with the same needs (port, TLS, credentials:
the `key`) takes it over and sends RSET (RFC 5321 §4.1.1.5) instead of a new TCP and TLS handshake, EHLO and
AUTH. A kept session is closed after `idle_time` seconds unused, once it carried `reuse_limit` transactions,
or at once when a delivery elsewhere waits for the slot it holds: an idle connection never keeps another
destination's mail waiting. Waiters are served in order of arrival, each destination's in turn; a freed slot
or a kept session goes to the oldest waiter that can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass

from kittiwake.queue.session import Session

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class Lease:
    """A slot for one delivery. `session` is a kept session to reuse, or None: the delivery connects itself.
    Before the lease ends the delivery sets `session` to the session it leaves open for others, or None."""

    destination: str
    key: Hashable
    session: Session | None = None


class _Busy:
    """Nothing free for this delivery yet: it waits."""


BUSY = _Busy()


@dataclass(slots=True, kw_only=True)
class _Waiter:
    order: int
    destination: str
    key: Hashable
    future: asyncio.Future[Session | None]


@dataclass(slots=True, kw_only=True)
class _Idle:
    session: Session
    destination: str
    key: Hashable
    timer: asyncio.TimerHandle | None = None


class ConnectionPool:
    def __init__(
        self, *, max_total: int, max_per_destination: int, idle_time: float, reuse_limit: int
    ) -> None:
        self.max_total = max(1, max_total)
        self.max_per_destination = max(1, max_per_destination)
        self.idle_time = idle_time
        self.reuse_limit = reuse_limit
        self._open = 0  # slots taken: by deliveries and by idle sessions
        self._per_destination: Counter[str] = Counter()
        self._idle: OrderedDict[int, _Idle] = OrderedDict()  # oldest first; keyed by id(session)
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._order = itertools.count()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        """Slots taken, idle sessions included."""
        return self._open

    @property
    def idle_sessions(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        """Deliveries waiting for a slot."""
        return sum(len(queue) for queue in self._waiting.values())

    @contextlib.asynccontextmanager
    async def lease(self, destination: str, key: Hashable) -> AsyncIterator[Lease]:
        """Wait for a slot; on exit the slot is given back, and the session left in `lease.session` kept."""
        lease = Lease(destination=destination, key=key, session=await self._acquire(destination, key))
        try:
            yield lease
        finally:
            self._release(lease)

    async def close(self) -> None:
        """Close every idle session and wait for all closing to end; for shutdown."""
        for idle in list(self._idle.values()):
            self._evict(idle)
        if self._closing:
            await asyncio.wait(set(self._closing))

    async def _acquire(self, destination: str, key: Hashable) -> Session | None:
        if not self._waiting.get(destination):  # no overtaking of earlier deliveries to the same place
            taken = self._try_take(destination, key)
            if not isinstance(taken, _Busy):
                return taken
        future: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(order=next(self._order), destination=destination, key=key, future=future)
        self._waiting.setdefault(destination, deque()).append(waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                # Served and cancelled at once: the slot (and session) it was given go back.
                self._release(Lease(destination=destination, key=key, session=waiter.future.result()))
            else:
                self._forget(waiter)
            raise

    def _try_take(self, destination: str, key: Hashable) -> Session | _Busy | None:
        """A kept session for `key`, or None for a free slot (taken now), or BUSY: nothing yet."""
        for number, idle in self._idle.items():
            if idle.destination == destination and idle.key == key:
                del self._idle[number]
                if idle.timer is not None:
                    idle.timer.cancel()
                return idle.session
        if self._per_destination[destination] >= self.max_per_destination:
            victim = next((i for i in self._idle.values() if i.destination == destination), None)
            if victim is None:
                return BUSY
            self._evict(victim, serve=False)
        if self._open >= self.max_total:
            victim = next(iter(self._idle.values()), None)
            if victim is None:
                return BUSY
            self._evict(victim, serve=False)
        self._open += 1
        self._per_destination[destination] += 1
        return None

    def _release(self, lease: Lease) -> None:
        session = lease.session
        if (
            session is not None
            and session.usable
            and session.transactions < self.reuse_limit
            and self.idle_time > 0
        ):
            waiter = self._waiter_for(lease.destination, lease.key)
            if waiter is not None:
                waiter.future.set_result(session)  # straight on to the next message, the slot with it
                return
            idle = _Idle(session=session, destination=lease.destination, key=lease.key)
            idle.timer = asyncio.get_running_loop().call_later(self.idle_time, self._evict, idle)
            self._idle[id(session)] = idle
        else:
            if session is not None:
                self._close_later(session)
            self._free(lease.destination)
        self._serve()

    def _waiter_for(self, destination: str, key: Hashable) -> _Waiter | None:
        queue = self._waiting.get(destination)
        if not queue:
            return None
        for waiter in queue:
            if waiter.key == key and not waiter.future.done():
                queue.remove(waiter)
                if not queue:
                    del self._waiting[destination]
                return waiter
        return None

    def _serve(self) -> None:
        """Give what is free now to the oldest waiters that can use it."""
        while self._waiting:
            heads = [queue[0] for queue in self._waiting.values()]
            served = False
            for waiter in sorted(heads, key=lambda w: w.order):
                if waiter.future.done():  # cancelled while waiting; its task forgets it when it resumes
                    self._forget(waiter)
                    served = True
                    break
                taken = self._try_take(waiter.destination, waiter.key)
                if isinstance(taken, _Busy):
                    continue
                self._forget(waiter)
                waiter.future.set_result(taken)
                served = True
                break
            if not served:
                return

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._waiting.get(waiter.destination)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[waiter.destination]

    def _evict(self, idle: _Idle, *, serve: bool = True) -> None:
        """Close an idle session and free its slot (idle time over, or the slot is wanted elsewhere)."""
        if self._idle.pop(id(idle.session), None) is None:
            return
        if idle.timer is not None:
            idle.timer.cancel()
        self._close_later(idle.session)
        self._free(idle.destination)
        if serve:
            self._serve()

    def _free(self, destination: str) -> None:
        self._open -= 1
        self._per_destination[destination] -= 1
        if self._per_destination[destination] <= 0:
            del self._per_destination[destination]

    def _close_later(self, session: Session) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
