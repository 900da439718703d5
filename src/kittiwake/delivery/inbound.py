"""What happens when a message has been received: trace headers, then local delivery and relay, durably.

The caller (the SMTP session) has already routed each recipient at RCPT time; here the accepted message is
stored for every local recipient and queued for every remote one, in one transaction, before the 250.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kittiwake.delivery.router import Route
from kittiwake.delivery.spool import Spool
from kittiwake.mail.headers import build_received, build_return_path, received_protocol
from kittiwake.proto.smtp.client import has_dot_line
from kittiwake.proto.smtp.data import has_bare_line_ending
from kittiwake.store.interface import QueuedRecipient, QueueRequest, Store
from kittiwake.store.models import IncomingMessage

log = logging.getLogger(__name__)


def new_queue_id() -> str:
    """A short unique id for logs and Received headers (60 random bits, base32-like)."""
    return secrets.token_hex(8).upper()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientInfo:
    ip: str
    helo: str | None
    reverse_dns: str | None = None
    esmtp: bool = True
    tls_version: str | None = None
    tls_cipher: str | None = None
    authenticated_as: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    address: str
    route: Route | None  # None: relay to a remote domain (authenticated submission only)
    notify: tuple[str, ...] | None = None  # RFC 3461 NOTIFY, kept for the queue
    orcpt: str | None = None


@dataclass(slots=True, kw_only=True)
class Transaction:
    """One SMTP mail transaction as the session builds it."""

    queue_id: str = ""  # drawn at MAIL FROM, not for the empty transaction between messages
    sender: str = ""
    mail_params: dict[str, object] = field(default_factory=dict)
    recipients: list[Recipient] = field(default_factory=list)


def trace_headers(
    transaction: Transaction, client: ClientInfo, hostname: str, now: datetime
) -> tuple[bytes, bytes]:
    """(Return-Path line, Received field) to put in front of the message (RFC 5321 §4.4)."""
    single = transaction.recipients[0].address if len(transaction.recipients) == 1 else None
    received = build_received(
        helo=client.helo,
        reverse_dns=client.reverse_dns,
        ip=client.ip,
        by_host=hostname,
        protocol=received_protocol(
            extended=client.esmtp,
            tls=client.tls_version is not None,
            authenticated=client.authenticated_as is not None,
            smtputf8=bool(transaction.mail_params.get("smtputf8")),
        ),
        now=now,
        queue_id=transaction.queue_id,
        recipient=single,
        tls_version=client.tls_version,
        tls_cipher=client.tls_cipher,
    )
    return build_return_path(transaction.sender), received


async def receive_message(
    store: Store,
    transaction: Transaction,
    spool: Spool,
    client: ClientInfo,
    hostname: str,
    *,
    auth_results: bytes = b"",
    junk: bool = False,
    sealer: Sealer | None = None,
    dot_free: bool = False,
) -> None:
    """Store and queue the message; returns only once that is durable. Raises on failure (then answer 451).

    Our header fields go in front of what the client sent: Return-Path and Received (RFC 5321 §4.4) and,
    for mail from other servers, Authentication-Results (RFC 8601). `junk` files it in the Junk mailbox.
    `dot_free`: no line the client sent begins with a period (see MessageEnd).
    """
    return_path, received = trace_headers(transaction, client, hostname, datetime.now(UTC))
    seal = await _arc_seal(transaction, spool, auth_results, received, sealer)
    relayed_prefix = seal + auth_results + received  # what the relayed copy has in front of the message
    spooled = await spool.finish(return_path + relayed_prefix)
    mailbox_ids: list[int] = []
    seen_accounts: set[int] = set()
    remote: list[Recipient] = []
    for recipient in transaction.recipients:
        route = recipient.route
        if route is None:
            remote.append(recipient)
            continue
        remote += [Recipient(address=a, route=None, notify=recipient.notify) for a in route.remote]
        for account in route.accounts:
            if account.id not in seen_accounts:
                seen_accounts.add(account.id)
                mailbox_ids.append(await _target_mailbox(store, account.id, junk))
    relay = None
    if remote:
        relay = _queue_request(transaction, remote, _content(transaction, relayed_prefix, spool, dot_free))
    message = IncomingMessage(
        blob=spooled.blob, size=spooled.size, internal_date=int(time.time()), structure=spooled.structure
    )
    await store.deliver(message, mailbox_ids, relay=relay)
    log.info(
        "accepted queue_id=%s from=<%s> rcpt=%d local=%d relay=%d size=%d tls=%s auth=%s junk=%s",
        transaction.queue_id,
        transaction.sender,
        len(transaction.recipients),
        len(mailbox_ids),
        len(remote),
        spooled.size,
        client.tls_version or "no",
        client.authenticated_as or "-",
        "yes" if junk else "no",
    )


_inbox_ids: weakref.WeakKeyDictionary[Store, dict[int, int]] = weakref.WeakKeyDictionary()


Sealer = Callable[
    [bytes, bytes, str], Awaitable[bytes]
]  # (message, Authentication-Results, domain) -> ARC fields
SEAL_LIMIT = 10 * 1024 * 1024


async def _arc_seal(
    transaction: Transaction, spool: Spool, auth_results: bytes, received: bytes, sealer: Sealer | None
) -> bytes:
    """RFC 8617 §5.1: mail we received with verdicts and forward to another domain (an alias pointing
    outside) is ARC-sealed for the forwarding domain."""
    forwarding = next((r for r in transaction.recipients if r.route is not None and r.route.remote), None)
    if sealer is None or forwarding is None or not auth_results:
        return b""
    body = spool.read_all(SEAL_LIMIT)
    if body is None:
        return b""
    return await sealer(received + body, auth_results, forwarding.address.rpartition("@")[2].lower())


async def _target_mailbox(store: Store, account_id: int, junk: bool) -> int:
    if junk:
        for mailbox in await store.list_mailboxes(account_id):
            if mailbox.special_use == "\\Junk":
                return mailbox.id
    # An account's INBOX keeps its id for life (it cannot be deleted, and renaming it moves the messages
    # out, not the mailbox), so it is looked up once. Delivery to a removed account fails in the store.
    known = _inbox_ids.setdefault(store, {})
    inbox = known.get(account_id)
    if inbox is None:
        inbox = known[account_id] = (await store.get_mailbox(account_id, "INBOX")).id
    return inbox


def _content(
    transaction: Transaction, relayed_prefix: bytes, spool: Spool, dot_free: bool
) -> dict[str, bool]:
    """What sending the relayed copy needs to know of its octets and lines, learnt as it arrived, so the
    queue need not read it through before sending: whether it is 7-bit (RFC 6152), whether CR and LF come
    only as CRLF (DATA and BDAT refuse anything else but BINARYMIME, RFC 3030 §3), and whether no line
    begins with a period (RFC 5321 §4.5.2)."""
    binary = transaction.mail_params.get("body") == "BINARYMIME"
    return {
        "ascii": spool.ascii and relayed_prefix.isascii(),
        "crlf_only": not binary and not has_bare_line_ending(relayed_prefix),
        "dot_free": dot_free and not has_dot_line(relayed_prefix),
    }


def _queue_request(
    transaction: Transaction, remote: list[Recipient], content: dict[str, bool]
) -> QueueRequest:
    # The relayed copy starts after our Return-Path line: that header belongs to final delivery only
    # (RFC 5321 §4.4).
    offset = len(build_return_path(transaction.sender))
    params = dict(transaction.mail_params, body_offset=offset, content=content)
    recipients = tuple(
        QueuedRecipient(
            address=r.address,
            params=json.dumps({"notify": list(r.notify) if r.notify else None, "orcpt": r.orcpt}),
        )
        for r in dict((r.address, r) for r in remote).values()
    )
    return QueueRequest(
        queue_id=transaction.queue_id,
        sender=transaction.sender,
        recipients=recipients,
        params=json.dumps(params),
    )
