"""What port 25 checks about its clients and their mail: abuse defences and message authentication.

One `InboundChecks` per MX listener. Connection-time checks (rate, DNS block lists, reverse DNS) run before
the banner; greylisting at RCPT; SPF, DKIM, ARC and DMARC once the message has ended.
Greylisting and rate counters live in memory: a restart forgets them, which costs a sender at most one
retry. Submission listeners get none of this: their users have authenticated.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.config import InboundSettings
from kittiwake.delivery.inbound import Sealer
from kittiwake.delivery.spool import Spool
from kittiwake.delivery.verification import (
    FORGED_NAME,
    Disposition,
    Judgement,
    Verdicts,
    forged_result_ranges,
    judge_content,
)
from kittiwake.delivery.verify_process import VerifyProcesses
from kittiwake.proto.smtp.replies import Reply
from kittiwake.resolver import DnsError, NoSuchDomain, Resolver

log = logging.getLogger(__name__)
HEADER_LIMIT = 262144

DNSBL_554 = Reply(code=554, enhanced="5.7.1", text="Client address is listed in a DNS block list")
RATE_421 = Reply(code=421, enhanced="4.7.0", text="Too many connections from your address, slow down")
MESSAGE_RATE_451 = Reply(code=451, enhanced="4.7.0", text="Too many messages from your address, slow down")
EARLY_TALKER_554 = Reply(code=554, enhanced="5.5.1", text="Talking before the greeting is not allowed")
GREYLISTED_451 = Reply(code=451, enhanced="4.7.1", text="Greylisted, please try again later")
DMARC_REJECT_550 = Reply(code=550, enhanced="5.7.1", text="Rejected by the sender domain's DMARC policy")


class SlidingCounter:
    """Events per key in the last `window` seconds."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def add(self, key: str) -> int:
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] > self._window:
            events.popleft()
        events.append(now)
        if len(self._events) > 100_000:
            self._events = {k: v for k, v in self._events.items() if v and now - v[-1] <= self._window}
        return len(events)


@dataclass(slots=True)
class _Grey:
    first: float
    passed: bool = False


class InboundChecks:
    def __init__(
        self,
        settings: InboundSettings,
        resolver: Resolver,
        hostname: str,
        *,
        clock: Callable[[], float] = time.time,
        sealer: Sealer | None = None,
        verifier: VerifyProcesses | None = None,
    ) -> None:
        self.settings = settings
        self.verifier = verifier  # helper processes for the content checks; None: checked here
        self.sealer = sealer  # ARC-seals what we forward to other domains
        self.resolver = resolver
        self.hostname = hostname
        self.clock = clock
        self._connections = SlidingCounter(60, clock)
        self._messages = SlidingCounter(60, clock)
        self._grey: dict[tuple[str, str, str], _Grey] = {}

    # -- at connection time -------------------------------------------------------------------------------

    async def refuse_connection(self, ip: str) -> Reply | None:
        limit = self.settings.max_connections_per_minute
        if limit and self._connections.add(ip) > limit:
            return RATE_421
        if await self._listed(ip):
            return DNSBL_554
        return None

    async def _listed(self, ip: str) -> bool:
        """RFC 5782 §2.1: a listed address has an A record under the reversed address in the zone."""
        if not self.settings.dnsbl_zones:
            return False
        name = _reversed(ip)
        for zone in self.settings.dnsbl_zones:
            with contextlib.suppress(DnsError, NoSuchDomain):
                answers = await self.resolver.a(f"{name}.{zone}")
                if any(a.startswith("127.") for a in answers):
                    log.info("refused ip=%s: listed in %s", ip, zone)
                    return True
        return False

    async def reverse_dns(self, ip: str) -> tuple[str | None, str | None]:
        """Forward-confirmed reverse DNS (RFC 8601 §3 iprev): (the confirmed name or None, result)."""
        if not self.settings.verify:
            return None, None
        try:
            names = await self.resolver.ptr(ip)
        except NoSuchDomain:
            return None, "fail"
        except DnsError:
            return None, "temperror"
        for name in names[:10]:
            lookup = self.resolver.aaaa if ":" in ip else self.resolver.a
            with contextlib.suppress(DnsError, NoSuchDomain):
                if ip in await lookup(name):
                    return name, "pass"
        return None, "fail"

    async def early_talker(self, reader: asyncio.StreamReader) -> bool:
        """Wait `greeting_delay` before the banner; RFC 5321 §4.3.1 says the client waits for it."""
        delay = self.settings.greeting_delay
        if not delay:
            return False
        try:
            async with asyncio.timeout(delay):
                await reader.read(1)  # data (or the client hanging up) before the banner
        except TimeoutError:
            return False
        return True

    # -- during the transaction -------------------------------------------------------------------------

    def sender(self, verdicts: Verdicts, ip: str, mail_from: str, helo: str) -> None:
        """What SPF will check when the message has ended (RFC 7208 §2.4: the MAIL FROM identity)."""
        verdicts.ip = ip
        verdicts.mail_from = mail_from
        verdicts.helo = helo

    def message_rate(self, ip: str) -> Reply | None:
        limit = self.settings.max_messages_per_minute
        if limit and self._messages.add(ip) > limit:
            return MESSAGE_RATE_451
        return None

    def greylist(self, ip: str, sender: str, recipient: str) -> Reply | None:
        """Unknown (network, sender, recipient) triples wait `greylist_delay` before they are let in."""
        if not self.settings.greylisting:
            return None
        network = _network(ip)
        key = (network, sender.lower(), recipient.lower())
        now = self.clock()
        entry = self._grey.get(key)
        if entry is None:
            self._grey[key] = _Grey(first=now)
            return GREYLISTED_451
        if not entry.passed and now - entry.first < self.settings.greylist_delay:
            return GREYLISTED_451
        entry.passed = True
        return None

    # -- after the message ------------------------------------------------------------------------------

    async def judge(self, verdicts: Verdicts, spool: Spool) -> Judgement:
        """Check the message: what to do with it and the Authentication-Results field to add."""
        if not self.settings.verify:
            return Judgement(disposition=Disposition.INBOX, auth_results=b"", author_domain="")
        # One read of the message serves both the header checks and DKIM; only a message with forged
        # results (rare) is read again after they are renamed.
        message = spool.read_all(self.settings.max_verify_size)
        source = message if message is not None else spool.head(HEADER_LIMIT)
        end = source.find(b"\r\n\r\n", 0, HEADER_LIMIT)
        header_block = source[: end + 4] if end >= 0 else source[:HEADER_LIMIT]
        forged = forged_result_ranges(header_block, self.hostname)
        for start, _ in forged:
            spool.overwrite(start, FORGED_NAME)
            header_block = header_block[:start] + FORGED_NAME + header_block[start + len(FORGED_NAME) :]
        if forged and message is not None:
            message = spool.read_all(self.settings.max_verify_size)
        if self.verifier is not None:
            judgement = await self.verifier.judge(verdicts, message, header_block)
            if judgement is not None:
                return judgement
        return await judge_content(
            verdicts, message, header_block, self.resolver, self.hostname, self.settings
        )


def _reversed(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return address.reverse_pointer.rsplit(".", 2)[0]  # drop in-addr.arpa / ip6.arpa


def _network(ip: str) -> str:
    """Greylist by /24 (IPv4) or /64 (IPv6): big senders retry from another address of the same pool."""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
