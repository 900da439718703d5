"""Listening sockets: one asyncio server per configured address, with connection limits."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kittiwake.config import parse_host_port

log = logging.getLogger(__name__)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(slots=True)
class ConnectionLimits:
    """Counts open connections per service; `admit` says whether one more from `ip` may be served."""

    total: int
    per_ip: int
    open_total: int = 0
    open_by_ip: Counter[str] = field(default_factory=Counter)

    def admit(self, ip: str) -> bool:
        return self.open_total < self.total and self.open_by_ip[ip] < self.per_ip

    def opened(self, ip: str) -> None:
        self.open_total += 1
        self.open_by_ip[ip] += 1

    def closed(self, ip: str) -> None:
        self.open_total -= 1
        self.open_by_ip[ip] -= 1
        if self.open_by_ip[ip] <= 0:
            del self.open_by_ip[ip]


async def start_listener(name: str, address: str, handler: Handler) -> asyncio.Server:
    host, port = parse_host_port(address)
    server = await asyncio.start_server(handler, host or None, port, reuse_address=True, limit=1 << 16)
    bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
    log.info("listening service=%s address=%s", name, bound)
    return server
