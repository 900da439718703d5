"""The IMAP listeners: accept a connection, apply limits and implicit TLS, serve it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from kittiwake.auth.authenticator import Authenticator
from kittiwake.config import Config
from kittiwake.imapd import handlers as _handlers  # registers every command handler
from kittiwake.imapd.connection import ImapConnection
from kittiwake.imapd.session import ImapSession, ImapSettings
from kittiwake.net.connection import connection_id, next_connection_id, peer_ip
from kittiwake.net.listeners import ConnectionLimits, Handler
from kittiwake.net.tls import TlsContextHolder, share_read_buffer
from kittiwake.proto.imap import responses as r
from kittiwake.store.interface import Store

log = logging.getLogger(__name__)
_ = _handlers


def make_handler(
    config: Config, store: Store, authenticator: Authenticator, tls: TlsContextHolder, name: str
) -> Handler:
    """The connection handler of one IMAP listener (name: imap or imaps)."""
    implicit_tls = name == "imaps"
    limits = ConnectionLimits(total=config.imap.max_connections, per_ip=config.imap.max_connections_per_ip)
    settings = ImapSettings(
        hostname=config.server.hostname,
        append_limit=config.imap.append_limit,
        idle_timeout=config.imap.idle_timeout,
        login_timeout=config.imap.login_timeout,
        inline_max=config.storage.inline_max,
        starttls_available=not implicit_tls,
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = peer_ip(writer.get_extra_info("peername"))
        connection_id.set(next_connection_id("i"))
        if not limits.admit(ip):
            log.warning("refused ip=%s service=%s: too many connections", ip, name)
            writer.write(r.UntaggedStatus(status=r.Status.BYE, text="Too many connections").serialize())
            await _close(writer)
            return
        limits.opened(ip)
        try:
            if implicit_tls and not await _handshake(writer, tls.current):
                return
            connection = ImapConnection(
                reader,
                writer,
                tls_context=None if implicit_tls else tls.current,
                append_limit=settings.append_limit,
            )
            session = ImapSession(
                settings=settings, store=store, authenticator=authenticator, io=connection,
                client_ip=ip, tls_active=implicit_tls,
            )  # fmt: skip
            await connection.serve(session)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("IMAP connection failed ip=%s", ip)
            with contextlib.suppress(Exception):
                writer.write(r.UntaggedStatus(status=r.Status.BYE, text="Internal server error").serialize())
        finally:
            limits.closed(ip)
            await _close(writer)

    return handle


async def _handshake(writer: asyncio.StreamWriter, context: ssl.SSLContext) -> bool:
    try:
        async with asyncio.timeout(60):
            await writer.start_tls(context)
        share_read_buffer(writer.transport)
    except (ssl.SSLError, OSError, TimeoutError) as error:
        log.info("TLS handshake failed: %s", error)
        return False
    return True


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 5)
