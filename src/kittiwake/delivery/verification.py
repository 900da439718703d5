"""Verifying mail from other servers once the message has ended: SPF, DKIM, ARC, then DMARC over them.

The verdicts become one Authentication-Results field (RFC 8601) with our host name as authserv-id, and a
disposition: deliver to the INBOX, deliver to Junk (DMARC quarantine, RFC 7489 §6.3), or refuse (DMARC
reject, when configured). Existing Authentication-Results fields that claim our authserv-id were not written
by us (RFC 8601 §5): they are renamed in place, to a field name of the same length, so no offset moves.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from kittiwake.config import InboundSettings
from kittiwake.mailauth import results as ar
from kittiwake.mailauth.arc import ArcResult, verify_arc
from kittiwake.mailauth.dkim import DkimResult, verify_message
from kittiwake.mailauth.dmarc import DmarcVerdict, evaluate_message
from kittiwake.mailauth.spf import SpfResult, check_mail_from
from kittiwake.resolver import Resolver

log = logging.getLogger(__name__)
FORGED_NAME = b"X-Spoofed-Auth-Results"  # as long as "Authentication-Results", so offsets stay put
assert len(FORGED_NAME) == len(b"Authentication-Results")


class Disposition(enum.Enum):
    INBOX = "inbox"
    JUNK = "junk"
    REJECT = "reject"


@dataclass(slots=True, kw_only=True)
class Verdicts:
    spf: SpfResult | None = None  # None until checked, when the message has ended
    ip: str = ""  # the client's address, which SPF authorises or not
    mail_from: str = ""
    helo: str = ""
    dkim: list[DkimResult] = field(default_factory=list)
    arc: ArcResult | None = None
    dmarc: DmarcVerdict | None = None
    iprev: str | None = None  # RFC 8601 §3: pass / fail / temperror for the client's reverse DNS


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the content checks decided: where the message goes and the field to add."""

    disposition: Disposition
    auth_results: bytes  # the Authentication-Results field
    author_domain: str  # the From domain DMARC looked at ("" without one), for the log


async def judge_content(
    verdicts: Verdicts,
    message: bytes | None,
    header_block: bytes,
    resolver: Resolver,
    hostname: str,
    settings: InboundSettings,
) -> Judgement:
    """SPF (RFC 7208 §2.4 allows checking MAIL FROM after the message: its result only feeds DMARC and
    the Authentication-Results field here), then the content checks, then what to do with the message."""
    if verdicts.spf is None:
        verdicts.spf = await check_sender(verdicts.ip, verdicts.mail_from, verdicts.helo, resolver, hostname)
    await verify_content(verdicts, message, header_block, resolver)
    return Judgement(
        disposition=disposition(verdicts, settings),
        auth_results=authentication_results(hostname, verdicts),
        author_domain=verdicts.dmarc.domain if verdicts.dmarc else "",
    )


async def check_sender(ip: str, mail_from: str, helo: str, resolver: Resolver, hostname: str) -> SpfResult:
    """RFC 7208 §2.4: SPF for the MAIL FROM identity (postmaster@HELO for the null sender)."""
    return await check_mail_from(ip, mail_from, helo, resolver, receiver=hostname)


async def verify_content(
    verdicts: Verdicts, message: bytes | None, header_block: bytes, resolver: Resolver
) -> None:
    """DKIM (every signature), ARC, then DMARC over the From domain. `message` None: too big to check."""
    if message is not None:
        verdicts.dkim = await verify_message(message, resolver)
        verdicts.arc = await verify_arc(message, resolver)
    spf = verdicts.spf
    dkim_pairs = [(d.domain, d.result) for d in verdicts.dkim if not d.partial_body]
    verdicts.dmarc = await evaluate_message(
        header_block,
        spf.result if spf else "none",
        spf.domain if spf else "",
        dkim_pairs,
        resolver,
    )


def disposition(verdicts: Verdicts, settings: InboundSettings) -> Disposition:
    dmarc = verdicts.dmarc
    if dmarc is None or dmarc.result == "pass" or dmarc.disposition == "none":
        return Disposition.INBOX
    arc = verdicts.arc
    if arc is not None and arc.result == "pass" and set(arc.sealers) & set(settings.trusted_arc_sealers):
        # RFC 8617 §7.2: a trusted forwarder vouches for how the message looked before it changed it.
        return Disposition.INBOX
    if not dmarc.domain:
        # No usable From field (RFC 7489 §6.6.1): no domain asked for a rejection, so it is filed as junk.
        return Disposition.JUNK
    if dmarc.disposition == "reject" and settings.dmarc_reject:
        return Disposition.REJECT
    return Disposition.JUNK


def authentication_results(hostname: str, verdicts: Verdicts) -> bytes:
    methods: list[ar.MethodResult] = []
    if verdicts.iprev is not None:
        methods.append(ar.MethodResult(method="iprev", result=verdicts.iprev))
    if verdicts.spf is not None:
        identity = verdicts.mail_from or f"postmaster@{verdicts.helo}"
        methods.append(ar.spf_result(verdicts.spf.result, identity, helo=not verdicts.mail_from))
    if not verdicts.dkim:
        methods.append(ar.MethodResult(method="dkim", result="none"))
    for result in verdicts.dkim:
        methods.append(
            ar.dkim_result(
                result.result,
                domain=result.domain,
                selector=result.selector,
                signature_prefix=result.signature_prefix,
            )
        )
    if verdicts.arc is not None:
        methods.append(ar.arc_result(verdicts.arc.result, oldest_pass=verdicts.arc.oldest_pass))
    dmarc = verdicts.dmarc
    if dmarc is not None:
        methods.append(
            ar.dmarc_result(
                dmarc.result,
                header_from=dmarc.domain or "",
                policy=dmarc.policy,
                disposition=dmarc.disposition,
            )
        )
    return ar.build_authentication_results(hostname, methods)


def forged_result_ranges(header_block: bytes, hostname: str) -> list[tuple[int, int]]:
    """Where Authentication-Results fields claiming to be ours sit in the header block."""
    return ar.find_forged_results(header_block, hostname)
