"""Delivering one message to one destination domain over SMTP: routing by MX, then the dialogue.

Theory of operation: RFC 5321 §5.1 routing: the domain's MX records in preference order (equal preferences
shuffled), or the domain itself when it has none; a null MX (RFC 7505) refuses mail outright. Each host's
addresses (IPv6 and IPv4) are tried in turn until one answers with a 2xx greeting; a host that cannot be reached
or refuses the session passes the turn to the next. Once a transaction ran, its replies decide: 2xx delivered,
4xx try later, 5xx failed. The dialogue (queue.session) uses STARTTLS whenever offered: opportunistic, as on
the public Internet, unless something asks for more. DANE (RFC 7672) does, per MX host, when the domain's MX
RRset and the host's TLSA records are DNSSEC-validated: TLS becomes mandatory and the server's certificate
must match the records, else the host is passed over as if unreachable (so the message is deferred, not
bounced, when no host passes). A domain with DANE is not held to its MTA-STS policy as well (RFC 8461 §2);
for others an enforced MTA-STS policy, the message's REQUIRETLS (RFC 8689) or a smarthost ask for a
certificate verified against the system's CAs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kittiwake.mailauth.dane import (
    DaneRequirement,
    Tlsa,
    TlsaLookup,
    presented_chain,
    tlsa_for,
    verify_certificate_chain,
)
from kittiwake.mailauth.mtasts import PolicyFetcher, StsPolicyCache, filter_mx, mx_mismatches
from kittiwake.proto.smtp.client import Capabilities
from kittiwake.queue.connections import Lease
from kittiwake.queue.session import (
    Outbound,
    Outcome,
    Session,
    StaleSession,
    Timeouts,
    TryNextHost,
    fail_all,
    reply_outcome,
)
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

log = logging.getLogger(__name__)


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
    dnssec: bool = False  # the MX RRset was DNSSEC-validated: DANE may apply (RFC 7672 §2.2.1)
    # MX host -> its TLSA records, looked up when DANE applies; None where that lookup failed.
    dane: Mapping[str, TlsaLookup | None] = field(default_factory=dict)

    @property
    def uses_dane(self) -> bool:
        """Some host has DNSSEC-validated TLSA records. A failed lookup does not count: it cannot turn off
        the domain's MTA-STS policy for the other hosts (the host itself is passed over either way)."""
        return any(lookup is not None and lookup.secure and lookup.records for lookup in self.dane.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class _HostTls:
    """How the connection to one host must be secured."""

    dane: DaneRequirement  # what the host's secure TLSA records ask (RFC 7672 §2.2)
    tlsa: tuple[Tlsa, ...]  # the records to verify the certificate with, for "authenticate"
    verify: bool  # the certificate must pass PKIX verification (MTA-STS, REQUIRETLS, a smarthost)


async def find_route(domain: str, resolver: Resolver, port: int) -> Route | Outcome:
    """The hosts to try for `domain`, or an Outcome when routing itself decided (NXDOMAIN, null MX, DNS down)."""
    try:
        answer = await resolver.mx_answer(domain)
    except NoSuchDomain:
        return Outcome(code=550, text=f"5.1.2 Domain {domain} does not exist")
    except DnsError as error:
        return Outcome(code=451, text=f"4.4.3 DNS lookup failed: {error}")
    records = answer.records
    if any(host in ("", ".") for _, host in records):
        # RFC 7505 §3: a null MX means the domain accepts no mail.
        return Outcome(code=556, text=f"5.1.10 Domain {domain} accepts no mail (null MX)")
    if not records:
        # RFC 5321 §5.1: the domain itself is the implicit MX. A validated denial of MX records stands in
        # for RFC 7672 §2.2.2's secure address records: both come from the domain's own (signed) zone.
        return Route(hosts=(domain,), port=port, dnssec=answer.secure)
    by_preference: dict[int, list[str]] = {}
    for preference, host in records:
        by_preference.setdefault(preference, []).append(host)
    ordered: list[str] = []
    for preference in sorted(by_preference):
        hosts = by_preference[preference]
        random.shuffle(hosts)  # RFC 5321 §5.1: spread load among equal preferences
        ordered.extend(hosts)
    return Route(hosts=tuple(ordered), port=port, dnssec=answer.secure)


async def apply_dane(route: Route, resolver: Resolver) -> Route:
    """RFC 7672 §2.2: with a DNSSEC-validated MX RRset, look up each host's TLSA records."""
    if not route.dnssec:
        return route
    lookups = await asyncio.gather(*(tlsa_for(host, route.port, resolver) for host in route.hosts))
    return replace(route, dane=dict(zip(route.hosts, lookups, strict=True)))


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


def session_key(destination: str, route: Route, outbound: Outbound) -> Hashable:
    """What a kept session must share with a delivery to carry it: destination, port and TLS needs, login."""
    return (
        destination,
        route.port,
        route.implicit_tls,
        _verifies(route, outbound),
        route.ca_file,
        route.sts_enforced,
        route.username,
        route.password,
    )


async def deliver(
    outbound: Outbound,
    route: Route,
    resolver: Resolver,
    *,
    helo_name: str,
    timeouts: Timeouts,
    literal_addresses: bool = False,
    lease: Lease | None = None,
) -> dict[str, Outcome]:
    """Try the route's hosts in turn; returns an outcome for every recipient.

    A session the `lease` holds (kept from an earlier delivery) is tried first; a dead one is replaced
    by a fresh connection without counting as a failure. The session this delivery ends with is left in
    the lease when another transaction may follow on it, and closed otherwise."""
    if lease is not None and lease.session is not None:
        kept, lease.session = lease.session, None
        outcomes = await _on_kept_session(kept, outbound, route, timeouts, lease)
        if outcomes is not None:
            return outcomes
    last = Outcome(code=451, text="4.4.1 No answer from any mail server")
    for host in route.hosts:
        policy = _host_tls(route, outbound, host)
        if isinstance(policy, Outcome):
            last = policy
            log.info("host=%s passed over: %s", host, last.text)
            continue
        addresses = [host] if literal_addresses else await host_addresses(host, resolver)
        if not addresses:
            last = Outcome(code=451, text=f"4.4.4 No address for {host}", remote_mta=host)
            continue
        for address in addresses:
            try:
                return await _attempt(
                    outbound,
                    route,
                    policy,
                    host,
                    address,
                    helo_name=helo_name,
                    timeouts=timeouts,
                    lease=lease,
                )
            except TryNextHost as next_host:
                last = next_host.outcome
                log.info("host=%s address=%s passed over: %s", host, address, last.text)
    return fail_all(outbound.recipients, last)


async def _on_kept_session(
    session: Session, outbound: Outbound, route: Route, timeouts: Timeouts, lease: Lease
) -> dict[str, Outcome] | None:
    """The transaction over a kept session; None when the session turned out unusable."""
    if session.host not in route.hosts or not session.usable or not _still_secure(session, route, outbound):
        await session.close()
        return None
    try:
        outcomes = await _transaction(session, outbound, route, timeouts)
    except (StaleSession, TryNextHost) as error:
        log.info("host=%s kept connection failed (%s); connecting afresh", session.host, error)
        await session.close()
        return None
    except BaseException:
        await session.close()
        raise
    await _keep_or_close(session, lease)
    return outcomes


async def _attempt(
    outbound: Outbound,
    route: Route,
    policy: _HostTls,
    host: str,
    address: str,
    *,
    helo_name: str,
    timeouts: Timeouts,
    lease: Lease | None,
) -> dict[str, Outcome]:
    # RFC 7672 §3.1: under DANE the TLSA records, not the CAs, judge the certificate; SNI still names the host.
    context = _dane_context() if policy.dane == "authenticate" else _tls_context(policy.verify, route.ca_file)
    session = await Session.open(
        host, address, route.port, context=context, implicit_tls=route.implicit_tls,
        helo_name=helo_name, timeouts=timeouts,
    )  # fmt: skip
    outcomes: dict[str, Outcome] | None = None
    try:
        _check_security(session, route, policy)
        outcomes = await _transaction(session, outbound, route, timeouts)
        return outcomes
    finally:
        if outcomes is not None and lease is not None:
            await _keep_or_close(session, lease)
        else:
            await session.close()


def _host_tls(route: Route, outbound: Outbound, host: str) -> _HostTls | Outcome:
    """What the connection to `host` needs, or why no connection to it may be made at all."""
    if host not in route.dane:
        return _HostTls(dane="none", tlsa=(), verify=_verifies(route, outbound))
    lookup = route.dane[host]
    if lookup is None:
        # RFC 7672 §2.2: the host's zone is signed, so a failed TLSA lookup may hide a requirement.
        return Outcome(
            code=451, text=f"4.7.5 TLSA lookup for {host} failed (DANE)", remote_mta=host, tls="dane"
        )
    requirement = lookup.requirement
    usable = tuple(record for record in lookup.records if record.usable)
    # RFC 7672 §2.2: secure TLSA records that are all unusable still make TLS mandatory, unauthenticated.
    return _HostTls(
        dane=requirement, tlsa=usable, verify=requirement != "authenticate" and _verifies(route, outbound)
    )


def _check_security(session: Session, route: Route, policy: _HostTls) -> None:
    """Whether the session is secured as the host's policy asks; raises TryNextHost when it is not."""
    host = session.host
    if policy.dane != "none" and not session.tls:
        # RFC 7672 §2.2: no STARTTLS is treated as an unreachable host: the next one, else defer.
        text = f"4.7.5 {host} offers no STARTTLS, which its TLSA records require (DANE)"
        raise TryNextHost(Outcome(code=451, text=text, remote_mta=host, tls="dane"))
    if policy.dane == "authenticate":
        ssl_object = session.ssl_object
        chain = presented_chain(ssl_object) if ssl_object is not None else []
        if not verify_certificate_chain(chain, policy.tlsa, host, now=datetime.now(UTC)):
            # RFC 7672 §2.2: a failed authentication too; the certificate is never accepted instead.
            text = f"4.7.5 Certificate of {host} does not match its TLSA records (DANE)"
            raise TryNextHost(Outcome(code=451, text=text, remote_mta=host, tls="dane-failed"))
        session.security = "dane"
        return
    if route.sts_enforced and not session.tls:
        # RFC 8461 §5.1: under an enforced policy a host without TLS is skipped; mail is deferred, not bounced.
        raise TryNextHost(
            Outcome(code=451, text=f"4.7.10 {host} offers no STARTTLS (MTA-STS)", remote_mta=host)
        )
    session.security = ("pkix" if policy.verify else "tls") if session.tls else "plaintext"


def _still_secure(session: Session, route: Route, outbound: Outbound) -> bool:
    """Whether a kept session meets what its host's policy asks now (its TLSA records may have come since)."""
    policy = _host_tls(route, outbound, session.host)
    if isinstance(policy, Outcome):
        return False
    if policy.dane == "authenticate":
        return session.security == "dane"
    return session.tls or policy.dane == "none"


async def _keep_or_close(session: Session, lease: Lease) -> None:
    if session.usable:
        lease.session = session
    else:
        await session.close()


@functools.cache
def _dane_context() -> ssl.SSLContext:
    """TLS without PKIX checks: `verify_certificate_chain` judges the certificate by the TLSA records."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _verifies(route: Route, outbound: Outbound) -> bool:
    """Whether the server's certificate must pass PKIX verification (RFC 8689 REQUIRETLS, MTA-STS, smarthost)."""
    return route.verify_tls or route.require_tls or outbound.requiretls


async def _transaction(
    session: Session, outbound: Outbound, route: Route, timeouts: Timeouts
) -> dict[str, Outcome]:
    """The checks that depend on the message, AUTH once per session, then the transaction itself."""
    refusal = _refusal(outbound, route, session.capabilities, session.tls, session.host)
    if refusal is not None:
        return fail_all(outbound.recipients, replace(refusal, tls=session.security))
    if route.username and not session.authenticated:
        reply = await session.authenticate(route.username, route.password, timeouts)
        if reply.code != 235:
            outcome = reply_outcome(reply, session.host)
            code = outcome.code if outcome.code >= 500 else 451
            failed = Outcome(code=code, text=outcome.text, remote_mta=session.host, tls=session.security)
            return fail_all(outbound.recipients, failed)
    outcomes = await session.send(outbound, timeouts)
    return {recipient: replace(outcome, tls=session.security) for recipient, outcome in outcomes.items()}


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
    if caps and caps.size and outbound.message.size > caps.size:
        return Outcome(code=552, text=f"5.3.4 Message larger than {host} accepts", remote_mta=host)
    return None
