"""Connection-level commands: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE, ENABLE, ID, COMPRESS."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator

from kittiwake import __version__
from kittiwake.auth.authenticator import TooManyFailures
from kittiwake.imapd.dispatch import handles
from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.session import ImapSession
from kittiwake.proto import sasl
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.states import ConnectionState

log = logging.getLogger(__name__)
ENABLEABLE = ("IMAP4REV2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT")


def ok(command: c.Command, text: str, code: r.ResponseCode | None = None) -> r.Tagged:
    return r.Tagged(tag=command.tag, status=r.Status.OK, text=text, code=code)


@handles(c.Capability)
async def capability(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    yield r.CapabilityResponse(capabilities=tuple(session.capabilities()))
    yield ok(command, "CAPABILITY completed")


@handles(c.Noop, c.Check)
async def noop(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    # RFC 9051 §6.1.2: NOOP is the polling point; dispatch flushes pending changes before the tagged OK.
    yield ok(command, f"{type(command).__name__.upper()} completed")


@handles(c.Logout)
async def logout(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    yield r.UntaggedStatus(status=r.Status.BYE, text="Logging out")
    yield ok(command, "LOGOUT completed")


@handles(c.StartTls)
async def starttls(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    if session.tls_active or not session.settings.starttls_available:
        raise CommandFailed("TLS is not available here", bad=True)
    await session.io.send(ok(command, "Begin TLS negotiation now"))
    await session.io.start_tls()
    session.tls_active = True
    # The tagged OK was sent before the handshake; this marker tells dispatch there is nothing more to send.
    yield r.Tagged(tag="", status=r.Status.OK, text="")


@handles(c.Login)
async def login(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Login)
    if not session.tls_active:
        # RFC 9051 §6.2.3: LOGINDISABLED is advertised; refuse without looking at the password.
        raise CommandFailed("Log in over TLS (STARTTLS or port 993)", r.PRIVACYREQUIRED)
    username = command.username.decode("utf-8", "replace")
    password = command.password.decode("utf-8", "replace")
    yield await _verify(session, command, username, password)


@handles(c.Authenticate)
async def authenticate(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Authenticate)
    if not session.tls_active:
        raise CommandFailed("Authenticate over TLS (STARTTLS or port 993)", r.PRIVACYREQUIRED)
    mechanism = sasl.create_mechanism(command.mechanism)
    if mechanism is None or command.mechanism != "PLAIN":
        raise CommandFailed("Unsupported authentication mechanism", r.CANNOT)
    try:
        initial = command.initial_response  # RFC 4959: base64 on the wire, "=" already made empty
        outcome = mechanism.start(None if initial is None else base64.b64decode(initial, validate=True))
        while isinstance(outcome, sasl.Challenge):
            await session.io.send(r.Continuation(challenge=outcome.data))
            await session.io.flush()
            line = await session.io.read_line()
            if line == b"*":
                raise CommandFailed("Authentication cancelled", bad=True)  # RFC 9051 §6.2.2
            outcome = mechanism.step(base64.b64decode(line, validate=True))
    except (sasl.SaslError, binascii.Error):
        raise CommandFailed("Malformed authentication data", bad=True) from None
    yield await _verify(session, command, outcome.username, outcome.password)


async def _verify(session: ImapSession, command: c.Command, username: str, password: str) -> r.Tagged:
    try:
        result = await session.authenticator.verify(username, password, client_ip=session.client_ip)
    except TooManyFailures:
        raise CommandFailed("Too many failed logins; try again later", r.UNAVAILABLE) from None
    if result.account is None:
        await asyncio.sleep(result.delay)
        return r.Tagged(
            tag=command.tag, status=r.Status.NO, text="Invalid credentials", code=r.AUTHENTICATIONFAILED
        )
    session.account = result.account
    log.info("login user=%s ip=%s service=imap", result.account.address, session.client_ip)
    # RFC 9051 §6.2.3: the OK may carry the capabilities of the authenticated state.
    session.state = ConnectionState.AUTHENTICATED
    caps = r.ResponseCode.capability(session.capabilities())
    return ok(command, "Logged in", caps)


@handles(c.Enable)
async def enable(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Enable)
    newly = [cap for cap in command.capabilities if cap in ENABLEABLE and cap not in session.enabled]
    session.enabled.update(newly)
    if "QRESYNC" in newly:
        session.enabled.add("CONDSTORE")  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
    yield r.EnabledResponse(capabilities=tuple(newly))
    yield ok(command, "ENABLE completed")


@handles(c.Id)
async def id_(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    yield r.IdResponse(fields=(("name", "kittiwake"), ("version", __version__)))
    yield ok(command, "ID completed")


@handles(c.Compress)
async def compress(session: ImapSession, command: c.Command) -> AsyncIterator[r.Response]:
    assert isinstance(command, c.Compress)
    if session.compressed:
        raise CommandFailed("Compression is already active", r.ResponseCode(atom="COMPRESSIONACTIVE"))
    if command.mechanism != "DEFLATE":
        raise CommandFailed("Unknown compression mechanism", bad=True)
    await session.io.send(ok(command, "DEFLATE active"))
    await session.io.start_compression()
    session.compressed = True
    yield r.Tagged(tag="", status=r.Status.OK, text="")
