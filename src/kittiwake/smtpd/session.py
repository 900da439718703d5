"""SmtpSession: the asyncio side of one SMTP connection, answering the events of the sans-I/O core.

Theory of operation: the loop reads what the peer sent, feeds the core, answers every event the core emits
(the core processes no further pipelined command until the current one is answered), then writes what the
core queued. Message bytes go straight into a spool as they arrive; the 250 after the message is sent only
once the store has committed it. Peer errors are answered by the core; anything unexpected here is logged
with its traceback and answered 451 (during a message) or 421 (otherwise), never shown to the peer.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

from kittiwake.auth.authenticator import Authenticator, TooManyFailures
from kittiwake.delivery.inbound import ClientInfo, Recipient, Transaction, new_queue_id, receive_message
from kittiwake.delivery.spool import Spool
from kittiwake.delivery.verification import Disposition, Verdicts
from kittiwake.net.connection import tls_info
from kittiwake.net.tls import share_read_buffer
from kittiwake.proto import sasl
from kittiwake.proto.smtp import events as ev
from kittiwake.proto.smtp.replies import (
    AUTH_FAILED_535,
    AUTH_SUCCEEDED_235,
    CANNOT_VRFY_252,
    LOCAL_ERROR_451,
    RECIPIENT_OK_250,
    SENDER_OK_250,
    UNKNOWN_MECHANISM_504,
    Reply,
)
from kittiwake.proto.smtp.server import SmtpServerConnection
from kittiwake.smtpd.checks import DMARC_REJECT_550, InboundChecks
from kittiwake.smtpd.policy import SENDER_NOT_OWNED_553, ListenerKind, Policy
from kittiwake.store.interface import Store
from kittiwake.store.models import Account

log = logging.getLogger(__name__)

TIMEOUT_421 = Reply(code=421, enhanced="4.4.2", text="Timeout, closing connection")
TOO_MANY_LOGINS_421 = Reply(code=421, enhanced="4.7.0", text="Too many failed logins, try again later")
TLS_FAILED_421 = Reply(code=421, enhanced="4.7.0", text="TLS failed")
INTERNAL_ERROR_421 = Reply(code=421, enhanced="4.3.0", text="Internal error, closing connection")
BAD_SASL_501 = Reply(code=501, enhanced="5.5.2", text="Malformed authentication data")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSettings:
    hostname: str
    kind: ListenerKind
    inline_max: int
    command_timeout: float
    data_timeout: float


class SmtpSession:
    def __init__(
        self,
        conn: SmtpServerConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        settings: SessionSettings,
        store: Store,
        policy: Policy,
        authenticator: Authenticator,
        tls_context: ssl.SSLContext | None,
        client: ClientInfo,
        checks: InboundChecks | None = None,
        iprev: str | None = None,
    ) -> None:
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.store = store
        self.policy = policy
        self.authenticator = authenticator
        self.tls_context = tls_context
        self.client = client
        self.account: Account | None = None
        self.transaction = Transaction()
        self.spool: Spool | None = None
        self.mechanism: sasl.Mechanism | None = None
        self.checks = checks
        self.iprev = iprev
        self.verdicts = Verdicts(iprev=iprev)

    async def run(self) -> None:
        """Serve the connection until QUIT, a close by either side, or a timeout."""
        conn = self.conn
        conn.greet()
        try:
            await self._flush()
            while not conn.closed:
                timeout = self.settings.data_timeout if self.spool else self.settings.command_timeout
                try:
                    async with asyncio.timeout(timeout):
                        data = await self.reader.read(65536)
                except TimeoutError:
                    await self._say(TIMEOUT_421)  # RFC 5321 §4.5.3.2
                    break
                conn.receive_data(data)
                await self._answer_events()
                await self._flush()
        finally:
            self._discard_spool()

    async def _say(self, reply: Reply) -> None:
        """Send a reply outside any pending command (timeouts, shutdown)."""
        self.writer.write(reply.serialize())
        await self._flush()

    async def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    async def _answer_events(self) -> None:
        while events := self.conn.events():
            for event in events:
                await self._answer(event)

    async def _answer(self, event: ev.Event) -> None:
        conn = self.conn
        match event:
            case ev.MessageChunk(data=data):
                if self.spool is not None:
                    self.spool.write(data)
            case ev.Hello(domain=domain, verb=verb):
                self.client = replace(self.client, helo=domain, esmtp=verb == "EHLO")
                self._reset()
                conn.accept_hello()
            case ev.StartTls():
                await self._start_tls()
            case ev.AuthStart(mechanism=name, initial_response=initial):
                self.mechanism = sasl.create_mechanism(name)
                if self.mechanism is None:
                    conn.send_reply(UNKNOWN_MECHANISM_504)
                else:
                    await self._auth_step(lambda m: m.start(initial))
            case ev.AuthResponse(data=data):
                await self._auth_step(lambda m: m.step(data))
            case ev.MailFrom():
                await self._mail_from(event)
            case ev.RcptTo():
                await self._rcpt_to(event)
            case ev.Vrfy():
                conn.send_reply(CANNOT_VRFY_252)  # RFC 5321 §3.5.3: never reveal who has an account
            case ev.DataStart():
                self.spool = Spool(self.store, inline_max=self.settings.inline_max)
                conn.accept_data()
            case ev.MessageEnd(dot_free=dot_free):
                await self._message_end(dot_free)
            case ev.MessageAborted() | ev.Reset():
                self._reset()

    async def _start_tls(self) -> None:
        if self.tls_context is None:
            self.conn.send_reply(Reply(code=454, enhanced="4.7.0", text="TLS not available"))
            return
        self.conn.accept_starttls()
        await self._flush()
        try:
            async with asyncio.timeout(self.settings.command_timeout):
                await self.writer.start_tls(self.tls_context)
            share_read_buffer(self.writer.transport)
        except (ssl.SSLError, OSError, TimeoutError) as error:
            log.warning("STARTTLS handshake failed: %s", error)
            self.writer.close()
            self.conn.receive_data(b"")
            return
        info = tls_info(self.writer.get_extra_info("ssl_object"))
        self.client = replace(
            self.client, tls_version=info.version if info else None, tls_cipher=info.cipher if info else None
        )
        self.account = None
        self._reset()
        self.conn.start_tls_done()

    async def _auth_step(self, step: Callable[[sasl.Mechanism], sasl.Outcome]) -> None:
        assert self.mechanism is not None
        try:
            outcome = step(self.mechanism)
        except sasl.SaslError:
            self.mechanism = None
            self.conn.send_reply(BAD_SASL_501)
            return
        if isinstance(outcome, sasl.Challenge):
            self.conn.send_auth_challenge(outcome.data)
            return
        self.mechanism = None
        try:
            result = await self.authenticator.verify(
                outcome.username, outcome.password, client_ip=self.client.ip
            )
        except TooManyFailures:
            log.warning("AUTH refused: too many failures ip=%s", self.client.ip)
            self.conn.send_reply(TOO_MANY_LOGINS_421)
            return
        if result.account is None:
            await asyncio.sleep(result.delay)
            self.conn.send_reply(AUTH_FAILED_535)
            return
        self.account = result.account
        self.client = replace(self.client, authenticated_as=result.account.address)
        log.info("login user=%s ip=%s service=smtp", result.account.address, self.client.ip)
        self.conn.send_reply(AUTH_SUCCEEDED_235)

    async def _mail_from(self, event: ev.MailFrom) -> None:
        if self.account is not None and not await self.policy.sender_allowed(
            event.reverse_path, self.account
        ):
            log.info("rejected sender=<%s> user=%s: not theirs", event.reverse_path, self.account.address)
            self.conn.send_reply(SENDER_NOT_OWNED_553)
            return
        if self.checks is not None:
            refusal = self.checks.message_rate(self.client.ip)
            if refusal is not None:
                log.info("rejected sender=<%s> ip=%s: message rate", event.reverse_path, self.client.ip)
                self.conn.send_reply(refusal)
                return
            self.verdicts = Verdicts(iprev=self.iprev)
            self.checks.sender(self.verdicts, self.client.ip, event.reverse_path, self.client.helo or "")
        self.transaction = Transaction(
            queue_id=new_queue_id(), sender=event.reverse_path, mail_params=_mail_params(event.params)
        )
        self.conn.send_reply(SENDER_OK_250)

    async def _rcpt_to(self, event: ev.RcptTo) -> None:
        decision = await self.policy.decide_recipient(
            event.forward_path, authenticated=self.account is not None
        )
        refusal = decision.reply
        if refusal is None and self.checks is not None:
            refusal = self.checks.greylist(self.client.ip, self.transaction.sender, event.forward_path)
        if refusal is not None:
            log.info(
                "rejected rcpt=<%s> from=<%s> ip=%s: %s",
                event.forward_path, self.transaction.sender, self.client.ip, refusal.text,
            )  # fmt: skip
            self.conn.send_reply(refusal)
            return
        params = event.params
        self.transaction.recipients.append(
            Recipient(
                address=event.forward_path,
                route=decision.route,
                notify=tuple(sorted(params.notify)) if params.notify is not None else None,
                orcpt=f"{params.orcpt.address_type};{params.orcpt.address}" if params.orcpt else None,
            )
        )
        self.conn.send_reply(RECIPIENT_OK_250)

    async def _message_end(self, dot_free: bool) -> None:
        spool, self.spool = self.spool, None
        if spool is None:
            self.conn.send_reply(LOCAL_ERROR_451)
            return
        try:
            verdict, auth_results, author_domain = Disposition.INBOX, b"", ""
            if self.checks is not None:
                judgement = await self.checks.judge(self.verdicts, spool)
                verdict, auth_results = judgement.disposition, judgement.auth_results
                author_domain = judgement.author_domain
            if verdict is Disposition.REJECT:
                spool.discard()
                log.info(
                    "rejected queue_id=%s from=<%s> ip=%s: DMARC policy of %s",
                    self.transaction.queue_id, self.transaction.sender, self.client.ip,
                    author_domain or "-",
                )  # fmt: skip
                self.conn.send_reply(DMARC_REJECT_550)
                self.transaction = Transaction()
                return
            await receive_message(
                self.store, self.transaction, spool, self.client, self.settings.hostname,
                auth_results=auth_results, junk=verdict is Disposition.JUNK,
                sealer=self.checks.sealer if self.checks is not None else None, dot_free=dot_free,
            )  # fmt: skip
        except Exception:
            # Not a peer error: a store or disk failure. The sender keeps the message and retries.
            log.exception("delivery failed queue_id=%s", self.transaction.queue_id)
            spool.discard()
            self.conn.send_reply(LOCAL_ERROR_451)
            return
        self.conn.send_reply(
            Reply(code=250, enhanced="2.0.0", text=f"Ok: queued as {self.transaction.queue_id}")
        )
        self.transaction = Transaction()

    def _reset(self) -> None:
        self._discard_spool()
        self.transaction = Transaction()

    def _discard_spool(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None


def _mail_params(params: ev.MailParams) -> dict[str, object]:
    """What the queue must keep of MAIL FROM's parameters (RFC 3461, RFC 6531, RFC 8689)."""
    kept: dict[str, object] = {}
    if params.smtputf8:
        kept["smtputf8"] = True
    if params.body:
        kept["body"] = params.body
    if params.requiretls:
        kept["requiretls"] = True
    if params.ret:
        kept["ret"] = params.ret
    if params.envid:
        kept["envid"] = params.envid
    return kept
