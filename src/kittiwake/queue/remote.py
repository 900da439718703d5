"""Delivering one message to one destination domain over SMTP: routing by MX, then the dialogue.

Theory of operation: RFC 5321 §5.1 routing: the domain's MX records in preference order (equal preferences
shuffled), or the domain itself when it has none; a null MX (RFC 7505) refuses mail outright. Each host's
addresses (IPv6 and IPv4) are tried in turn until one answers with a 2xx greeting; a host that cannot be reached
or refuses the session passes the turn to the next. Once a transaction ran, its replies decide: 2xx delivered,
4xx try later, 5xx failed. The dialogue is the sans-I/O client core driven here: EHLO, STARTTLS whenever
offered (opportunistic, as on the public Internet; verified when the message carries REQUIRETLS, RFC 8689, or
when a smarthost is used), PIPELINING, SIZE, SMTPUTF8 and BDAT when offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kittiwake.mailauth.mtasts import PolicyFetcher, StsPolicyCache, filter_mx, mx_mismatches
from kittiwake.proto.smtp.client import Capabilities, Greeting, ReplyReceived, SmtpClientConnection
from kittiwake.proto.smtp.errors import ProtocolError
from kittiwake.proto.smtp.replies import Reply
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The result for one recipient: `code` is the SMTP reply code (or a synthetic one), `text` the reply."""

    code: int
    text: str
    remote_mta: str | None = None

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """One message for some recipients of one domain."""

    sender: str
    recipients: tuple[str, ...]
    message: bytes
    smtputf8: bool = False
    eightbit: bool = False
    requiretls: bool = False
    dsn_params: dict[str, tuple[str, ...]] | None = None  # recipient -> RCPT parameters (NOTIFY, ORCPT)
    envelope_params: tuple[str, ...] = ()  # MAIL parameters to pass on (RET, ENVID)


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    hosts: tuple[str, ...]  # in the order to try
    port: int
    implicit_tls: bool = False
    verify_tls: bool = False
    require_tls: bool = False
    username: str = ""
    password: str = ""
    ca_file: str | None = None  # trust this CA instead of the system's when verifying
    sts_enforced: bool = (
        False  # an MTA-STS policy in enforce mode: no TLS means try the next host, then defer
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """RFC 5321 §4.5.3.2 minimums, in seconds."""

    connect: float = 30
    greeting: float = 300
    command: float = 300
    data_start: float = 120
    data_end: float = 600


class TryNextHost(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.text)
        self.outcome = outcome


def _fail_all(recipients: Sequence[str], outcome: Outcome) -> dict[str, Outcome]:
    return dict.fromkeys(recipients, outcome)


async def find_route(domain: str, resolver: Resolver, port: int) -> Route | Outcome:
    """The hosts to try for `domain`, or an Outcome when routing itself decided (NXDOMAIN, null MX, DNS down)."""
    try:
        records = await resolver.mx(domain)
    except NoSuchDomain:
        return Outcome(code=550, text=f"5.1.2 Domain {domain} does not exist")
    except DnsError as error:
        return Outcome(code=451, text=f"4.4.3 DNS lookup failed: {error}")
    if any(host in ("", ".") for _, host in records):
        # RFC 7505 §3: a null MX means the domain accepts no mail.
        return Outcome(code=556, text=f"5.1.10 Domain {domain} accepts no mail (null MX)")
    if not records:
        return Route(hosts=(domain,), port=port)  # RFC 5321 §5.1: the domain itself is the implicit MX
    by_preference: dict[int, list[str]] = {}
    for preference, host in records:
        by_preference.setdefault(preference, []).append(host)
    ordered: list[str] = []
    for preference in sorted(by_preference):
        hosts = by_preference[preference]
        random.shuffle(hosts)  # RFC 5321 §5.1: spread load among equal preferences
        ordered.extend(hosts)
    return Route(hosts=tuple(ordered), port=port)


async def apply_mta_sts(
    route: Route, domain: str, resolver: Resolver, cache: StsPolicyCache, fetcher: PolicyFetcher, now: float
) -> Route | Outcome:
    """RFC 8461 §5: keep only the MX hosts the domain's policy names, and require verified TLS to them."""
    policy = await cache.get_policy(domain, resolver, fetcher, now)
    if policy is None:
        return route
    selection = filter_mx(policy, route.hosts)
    mismatched = mx_mismatches(policy, route.hosts)
    if mismatched and policy.mode == "testing":
        log.warning("MTA-STS testing policy of %s does not list MX %s", domain, ", ".join(mismatched))
    if not selection.allowed:
        return Outcome(code=451, text=f"4.7.5 No MX host of {domain} matches its MTA-STS policy")
    return replace(
        route,
        hosts=selection.allowed,
        verify_tls=route.verify_tls or selection.verify_tls,
        sts_enforced=selection.verify_tls,
    )


async def host_addresses(host: str, resolver: Resolver) -> list[str]:
    addresses: list[str] = []
    for lookup in (resolver.aaaa, resolver.a):
        with contextlib.suppress(DnsError, NoSuchDomain):
            addresses += await lookup(host)
    return addresses


async def deliver(
    outbound: Outbound,
    route: Route,
    resolver: Resolver,
    *,
    helo_name: str,
    timeouts: Timeouts,
    literal_addresses: bool = False,
) -> dict[str, Outcome]:
    """Try the route's hosts in turn; returns an outcome for every recipient."""
    last = Outcome(code=451, text="4.4.1 No answer from any mail server")
    for host in route.hosts:
        addresses = [host] if literal_addresses else await host_addresses(host, resolver)
        if not addresses:
            last = Outcome(code=451, text=f"4.4.4 No address for {host}", remote_mta=host)
            continue
        for address in addresses:
            try:
                return await _attempt(outbound, route, host, address, helo_name=helo_name, timeouts=timeouts)
            except TryNextHost as next_host:
                last = next_host.outcome
                log.info("host=%s address=%s passed over: %s", host, address, last.text)
    return _fail_all(outbound.recipients, last)


async def _attempt(
    outbound: Outbound, route: Route, host: str, address: str, *, helo_name: str, timeouts: Timeouts
) -> dict[str, Outcome]:
    context = _tls_context(route.verify_tls or route.require_tls or outbound.requiretls, route.ca_file)
    try:
        async with asyncio.timeout(timeouts.connect):
            reader, writer = await asyncio.open_connection(
                address, route.port, ssl=context if route.implicit_tls else None,
                server_hostname=host if route.implicit_tls else None,
            )  # fmt: skip
    except (OSError, TimeoutError, ssl.SSLError) as error:
        raise TryNextHost(
            Outcome(code=451, text=f"4.4.1 Connection to {host} failed: {error}", remote_mta=host)
        ) from None
    driver = _Driver(reader, writer, host)
    try:
        return await _dialogue(driver, outbound, route, host, context, helo_name=helo_name, timeouts=timeouts)
    except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError, ConnectionError) as error:
        raise TryNextHost(
            Outcome(code=451, text=f"4.4.2 Lost connection to {host}: {error}", remote_mta=host)
        ) from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)


@functools.lru_cache(maxsize=16)
def _tls_context(verify: bool, ca_file: str | None = None) -> ssl.SSLContext:
    """Made once per kind: loading the system's trusted certificates costs milliseconds."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        # Opportunistic TLS (RFC 3207 §4.1, RFC 7435): encrypt, but an unverifiable certificate is still
        # better than plaintext, which is what refusing it would lead to.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Driver:
    """Feeds the client core and waits for the replies it expects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.conn = SmtpClientConnection()
        self.reader = reader
        self.writer = writer
        self.host = host
        self._pending: list[Greeting | ReplyReceived] = []

    async def next(self, limit: float) -> Greeting | ReplyReceived:
        async with asyncio.timeout(limit):
            while not self._pending:
                output = self.conn.data_to_send()
                if output:
                    self.writer.write(output)
                    await self.writer.drain()
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("connection closed by the server")
                self.conn.receive_data(data)
                self._pending.extend(self.conn.events())
        return self._pending.pop(0)

    async def reply(self, limit: float) -> Reply:
        return (await self.next(limit)).reply

    async def flush(self) -> None:
        output = self.conn.data_to_send()
        if output:
            self.writer.write(output)
            await self.writer.drain()


def _outcome(reply: Reply, host: str) -> Outcome:
    enhanced = f"{reply.enhanced} " if reply.enhanced else ""
    return Outcome(code=reply.code, text=f"{reply.code} {enhanced}{' '.join(reply.lines)}", remote_mta=host)


async def _dialogue(
    driver: _Driver,
    outbound: Outbound,
    route: Route,
    host: str,
    context: ssl.SSLContext,
    *,
    helo_name: str,
    timeouts: Timeouts,
) -> dict[str, Outcome]:
    conn = driver.conn
    greeting = await driver.reply(timeouts.greeting)
    if greeting.code != 220:
        raise TryNextHost(_outcome(greeting, host))  # RFC 5321 §3.1: 554 greeting, try elsewhere
    await _hello(driver, helo_name, timeouts)
    caps = conn.capabilities
    tls = route.implicit_tls
    if not tls and caps is not None and caps.starttls:
        conn.starttls()
        reply = await driver.reply(timeouts.command)
        if reply.code == 220:
            await driver.writer.start_tls(context, server_hostname=host)
            conn.start_tls_done()
            tls = True
            await _hello(driver, helo_name, timeouts)
            caps = conn.capabilities
    if route.sts_enforced and not tls:
        # RFC 8461 §5.1: under an enforced policy a host without TLS is skipped; mail is deferred, not bounced.
        raise TryNextHost(
            Outcome(code=451, text=f"4.7.10 {host} offers no STARTTLS (MTA-STS)", remote_mta=host)
        )
    refusal = _refusal(outbound, route, caps, tls, host)
    if refusal is not None:
        return _fail_all(outbound.recipients, refusal)
    if route.username:
        conn.auth_plain(route.username, route.password)
        reply = await driver.reply(timeouts.command)
        if reply.code != 235:
            outcome = _outcome(reply, host)
            code = outcome.code if outcome.code >= 500 else 451
            return _fail_all(outbound.recipients, Outcome(code=code, text=outcome.text, remote_mta=host))
    return await _transaction(driver, outbound, host, timeouts)


async def _hello(driver: _Driver, helo_name: str, timeouts: Timeouts) -> None:
    driver.conn.ehlo(helo_name)
    reply = await driver.reply(timeouts.command)
    if reply.code != 250:
        driver.conn.helo(helo_name)  # RFC 5321 §4.1.4: fall back to HELO for an old server
        reply = await driver.reply(timeouts.command)
        if reply.code != 250:
            raise TryNextHost(_outcome(reply, driver.host))


def _refusal(
    outbound: Outbound, route: Route, caps: Capabilities | None, tls: bool, host: str
) -> Outcome | None:
    if (outbound.requiretls or route.require_tls) and not tls:
        return Outcome(
            code=550, text="5.7.10 REQUIRETLS: the receiving server offers no TLS", remote_mta=host
        )
    if outbound.requiretls and not (caps and caps.requiretls):
        return Outcome(
            code=550, text="5.7.10 REQUIRETLS not supported by the receiving server", remote_mta=host
        )
    if outbound.smtputf8 and not (caps and caps.smtputf8):
        # RFC 6531 §3.4: a message that needs SMTPUTF8 cannot go to a server without it.
        return Outcome(code=553, text="5.6.7 The receiving server does not support SMTPUTF8", remote_mta=host)
    if caps and caps.size and len(outbound.message) > caps.size:
        return Outcome(code=552, text=f"5.3.4 Message larger than {host} accepts", remote_mta=host)
    return None


async def _transaction(
    driver: _Driver, outbound: Outbound, host: str, timeouts: Timeouts
) -> dict[str, Outcome]:
    conn = driver.conn
    caps = conn.capabilities
    params = [f"SIZE={len(outbound.message)}"] if caps and caps.size is not None else []
    if outbound.eightbit and caps and caps.eightbitmime:
        params.append("BODY=8BITMIME")
    if outbound.smtputf8:
        params.append("SMTPUTF8")
    if outbound.requiretls:
        params.append("REQUIRETLS")
    if caps and caps.dsn:
        params += list(outbound.envelope_params)
    conn.mail(outbound.sender, params)
    for recipient in outbound.recipients:
        extra = (outbound.dsn_params or {}).get(recipient, ()) if caps and caps.dsn else ()
        conn.rcpt(recipient, extra)
    mail_reply = await driver.reply(timeouts.command)
    rcpt_replies = [await driver.reply(timeouts.command) for _ in outbound.recipients]
    if mail_reply.code != 250:
        return _fail_all(outbound.recipients, _outcome(mail_reply, host))
    outcomes = {r: _outcome(reply, host) for r, reply in zip(outbound.recipients, rcpt_replies, strict=True)}
    accepted = [r for r in outbound.recipients if outcomes[r].delivered]
    if not accepted:
        conn.quit()
        await driver.flush()
        return outcomes
    final = await _send_body(driver, outbound, timeouts)
    for recipient in accepted:
        outcomes[recipient] = _outcome(final, host)
    conn.quit()
    await driver.flush()
    return outcomes


async def _send_body(driver: _Driver, outbound: Outbound, timeouts: Timeouts) -> Reply:
    conn = driver.conn
    caps = conn.capabilities
    if caps is not None and caps.chunking:
        conn.bdat(outbound.message, last=True)  # RFC 3030: no dot-stuffing, no scan for bare line ends
        return await driver.reply(timeouts.data_end)
    conn.data()
    reply = await driver.reply(timeouts.data_start)
    if reply.code != 354:
        return reply
    conn.send_message(outbound.message)
    return await driver.reply(timeouts.data_end)
