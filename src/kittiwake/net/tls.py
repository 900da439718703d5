"""TLS server contexts built from the configured certificate, reloadable without dropping sessions."""

from __future__ import annotations

import ssl

from kittiwake.config import Config


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
        self._config = config
        self.current = build_server_context(config)

    def reload(self) -> None:
        """Load the certificate files again; on failure the old context stays and the error is raised."""
        self.current = build_server_context(self._config)
