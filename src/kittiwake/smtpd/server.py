"""The SMTP listeners: accept a connection, apply connection limits and implicit TLS, run a session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from kittiwake.auth.authenticator import Authenticator
from kittiwake.config import Config
from kittiwake.delivery.inbound import ClientInfo
from kittiwake.net.connection import connection_id, next_connection_id, peer_ip, tls_info
from kittiwake.net.listeners import ConnectionLimits, Handler
from kittiwake.net.tls import TlsContextHolder, share_read_buffer
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits
from kittiwake.proto.smtp.replies import Reply
from kittiwake.proto.smtp.server import SmtpServerConnection
from kittiwake.smtpd.checks import EARLY_TALKER_554, InboundChecks
from kittiwake.smtpd.policy import ListenerKind, Policy
from kittiwake.smtpd.session import INTERNAL_ERROR_421, SessionSettings, SmtpSession
from kittiwake.store.interface import Store

log = logging.getLogger(__name__)
TOO_MANY_CONNECTIONS_421 = Reply(code=421, enhanced="4.7.0", text="Too many connections, try again later")


def extensions_for(kind: ListenerKind) -> ServerExtensions:
    if kind is ListenerKind.MX:
        return ServerExtensions(starttls=True)  # no AUTH on port 25
    return ServerExtensions(
        starttls=kind is ListenerKind.SUBMISSION,
        auth_mechanisms=("PLAIN", "LOGIN"),
        auth_requires_tls=True,  # RFC 8314 §3: credentials only over TLS
        auth_required=True,  # RFC 6409 §4.3: submission requires authentication
    )


def limits_for(config: Config) -> ServerLimits:
    smtp = config.smtp
    return ServerLimits(
        max_message_size=smtp.max_message_size,
        max_recipients=smtp.max_recipients,
        max_bad_commands=smtp.max_bad_commands,
        max_parameter_line_length=max(smtp.max_line_length, 512),
    )


def make_handler(
    config: Config,
    store: Store,
    policy: Policy,
    authenticator: Authenticator,
    tls: TlsContextHolder,
    name: str,
    checks: InboundChecks | None = None,
) -> Handler:
    """The connection handler of one SMTP listener (name: smtp, submission or submissions)."""
    kind = ListenerKind(name)
    extensions = extensions_for(kind)
    limits = limits_for(config)
    connections = ConnectionLimits(
        total=config.smtp.max_connections, per_ip=config.smtp.max_connections_per_ip
    )
    settings = SessionSettings(
        hostname=config.server.hostname,
        kind=kind,
        inline_max=config.storage.inline_max,
        command_timeout=config.smtp.command_timeout,
        data_timeout=config.smtp.data_timeout,
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = peer_ip(writer.get_extra_info("peername"))
        connection_id.set(next_connection_id("s"))
        if not connections.admit(ip):
            log.warning("refused ip=%s service=%s: too many connections", ip, name)
            writer.write(TOO_MANY_CONNECTIONS_421.serialize())
            await _close(writer)
            return
        connections.opened(ip)
        log.debug("connect ip=%s service=%s", ip, name)
        session: SmtpSession | None = None
        try:
            reverse_dns, iprev = None, None
            if checks is not None:
                refusal = await checks.refuse_connection(ip)
                if refusal is None and await checks.early_talker(reader):
                    log.info("refused ip=%s: talked before the greeting", ip)
                    refusal = EARLY_TALKER_554
                if refusal is not None:
                    writer.write(refusal.serialize())
                    return
                reverse_dns, iprev = await checks.reverse_dns(ip)
            if kind is ListenerKind.SUBMISSIONS and not await _implicit_tls(writer, tls.current, settings):
                return
            info = tls_info(writer.get_extra_info("ssl_object"))
            client = ClientInfo(
                ip=ip,
                helo=None,
                reverse_dns=reverse_dns,
                tls_version=info.version if info else None,
                tls_cipher=info.cipher if info else None,
            )
            conn = SmtpServerConnection(
                config.server.hostname, extensions=extensions, limits=limits, tls_active=info is not None
            )
            session = SmtpSession(
                conn, reader, writer, settings=settings, store=store, policy=policy,
                authenticator=authenticator, tls_context=tls.current if extensions.starttls else None, client=client,
                checks=checks, iprev=iprev,
            )  # fmt: skip
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the peer went away; nothing was acknowledged that is not stored
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("SMTP session failed ip=%s", ip)
            with contextlib.suppress(Exception):
                writer.write(INTERNAL_ERROR_421.serialize())
        finally:
            connections.closed(ip)
            await _close(writer)

    return handle


async def _implicit_tls(
    writer: asyncio.StreamWriter, context: ssl.SSLContext, settings: SessionSettings
) -> bool:
    try:
        async with asyncio.timeout(settings.command_timeout):
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
