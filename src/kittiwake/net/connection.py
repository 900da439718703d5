"""Per-connection identity: an id carried in a contextvar into every log record of that connection."""

from __future__ import annotations

import contextvars
import itertools
import logging
import ssl
from dataclasses import dataclass

connection_id: contextvars.ContextVar[str] = contextvars.ContextVar("connection_id", default="-")
_counter = itertools.count(1)


def next_connection_id(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


class ConnectionIdFilter(logging.Filter):
    """Adds `conn` to every record so the log format can show which connection it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = connection_id.get()
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsInfo:
    version: str
    cipher: str


def tls_info(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> TlsInfo | None:
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    return TlsInfo(version=ssl_object.version() or "TLS", cipher=cipher[0] if cipher else "unknown")


def peer_ip(peername: object) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return "unknown"
