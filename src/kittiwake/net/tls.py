"""TLS server contexts built from the configured certificate, reloadable without dropping sessions."""

from __future__ import annotations

import asyncio.sslproto
import ssl
import threading

from kittiwake.config import Config

# asyncio gives every TLS connection its own read buffer of SSLProtocol.max_size bytes (256 KiB), zero-filled
# when the connection starts, so all of it is resident: 2.5 GB for 10,000 idle IMAP clients. The buffer only
# carries ciphertext from recv_into() to the TLS object within one callback (SSLProtocol.get_buffer, then
# buffer_updated copies it out), so the connections of one event loop can share one. Handshakes still start
# with a buffer of their own, made smaller here: a TLS record holds at most 16 KiB (RFC 8446 §5.1), and a
# smaller buffer only means more recv calls, never a record it cannot take.
HANDSHAKE_READ_BUFFER = 32 * 1024
_shared = threading.local()


def limit_tls_read_buffer(size: int = HANDSHAKE_READ_BUFFER) -> None:
    """Make asyncio's TLS connections opened from now on start with a read buffer of `size` bytes."""
    protocol = getattr(asyncio.sslproto, "SSLProtocol", None)
    if protocol is not None and isinstance(getattr(protocol, "max_size", None), int):
        protocol.max_size = size


def share_read_buffer(transport: asyncio.BaseTransport) -> None:
    """After a handshake: let this connection read into its thread's shared buffer and free its own.

    Guarded by what asyncio's pure-Python TLS transport has; any other (uvloop's) is left as it is."""
    protocol = getattr(transport, "_ssl_protocol", None)
    own = getattr(protocol, "_ssl_buffer", None)
    if protocol is None or not isinstance(own, bytearray) or not hasattr(protocol, "_ssl_buffer_view"):
        return
    size = max(len(own), int(getattr(protocol, "max_size", 0)))
    buffer: bytearray | None = getattr(_shared, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _shared.buffer = bytearray(size)
        _shared.view = memoryview(buffer)
    protocol._ssl_buffer = buffer
    protocol._ssl_buffer_view = _shared.view


def build_server_context(config: Config) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if config.tls.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.load_cert_chain(config.path(config.tls.cert), config.path(config.tls.key))
    context.options |= ssl.OP_NO_COMPRESSION
    return context


class TlsContextHolder:
    """Sessions ask for `current` at each handshake, so a reload (SIGHUP) reaches new handshakes only."""

    def __init__(self, config: Config) -> None:
        limit_tls_read_buffer()
        self._config = config
        self.current = build_server_context(config)

    def reload(self) -> None:
        """Load the certificate files again; on failure the old context stays and the error is raised."""
        self.current = build_server_context(self._config)
