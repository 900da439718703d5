"""The queue worker: takes due entries, delivers them, records each recipient's fate, tells the sender.

Theory of operation: every pass loads the entries with a recipient whose next attempt is due. Before an
attempt the next attempt time is written, so a crash during the attempt means a retry later, never a message
forgotten. Recipients are grouped by domain and each group goes out in one transaction, within a global and a
per-destination limit on connections (`connections.ConnectionPool`, which also keeps a finished session open
briefly for the next message to the same place). The message is signed (DKIM) and scanned once, at its first
attempt, and the result kept for the later ones; the bytes themselves are streamed from the store in chunks
at each attempt, never held whole. Each recipient's result is stored as soon as its attempt
ends; 2xx is final, 5xx (or NXDOMAIN, null MX, the queue lifetime passing) fails it, anything else defers it
with a growing interval. Failures, delays past `delay_warning` and requested successes produce one delivery
status notification per message and kind (RFC 3464), never to the null sender. Local senders get theirs through
`LocalDelivery` (queue never imports delivery); remote senders through the queue itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from kittiwake.config import Config
from kittiwake.mailauth.mtasts import HttpsPolicyFetcher, PolicyFetcher, StsPolicyCache
from kittiwake.proto.smtp.client import DotStuffer, has_dot_line
from kittiwake.proto.smtp.data import has_bare_line_ending
from kittiwake.proto.smtp.errors import ProtocolError
from kittiwake.queue import bounces, schedule
from kittiwake.queue.connections import ConnectionPool
from kittiwake.queue.remote import Route, apply_dane, apply_mta_sts, deliver, find_route, session_key
from kittiwake.queue.session import MessageSource, Outbound, Outcome, Timeouts
from kittiwake.resolver import Resolver
from kittiwake.store.interface import QueueEntry, QueueRecipientState, RecipientOutcome, Store

log = logging.getLogger(__name__)


class LocalDelivery(Protocol):
    """Hands a notification to `recipient`: into a local mailbox, or into the queue for a remote one."""

    async def __call__(self, recipient: str, message: bytes) -> None: ...


Kind = Literal["failure", "delay", "success"]
_ACTIONS: dict[Kind, Literal["failed", "delayed", "delivered"]] = {
    "failure": "failed",
    "delay": "delayed",
    "success": "delivered",
}
# (message, sender) -> the message with header fields (DKIM-Signature) put in front, and otherwise unchanged.
Signer = Callable[[bytes, str], Awaitable[bytes]]
# The stored message is read and sent in pieces of this size, so a large one is never in memory whole.
CHUNK = 128 * 1024
# Signing needs the whole message at once: only this many are held for it at a time.
SIGNING_AT_ONCE = 4
# What signing and scanning found out about a message, kept for its later attempts.
PREPARED_ENTRIES = 10_000
# Entries one pass takes on; when a pass is full, the next one starts at once rather than after a pause.
PASS_SIZE = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class _Prepared:
    """A queued message made ready to send: the same for every attempt, so worked out once."""

    head: bytes  # header fields to send in front of the stored message (DKIM-Signature); b"" for none
    eightbit: bool  # some octet is not ASCII: MAIL gets BODY=8BITMIME where the server offers it
    line_endings_checked: bool  # known free of bare CR and LF: sending need not look again
    dot_free: bool  # no line begins with a period: sending need not dot-stuff


@dataclass(frozen=True, slots=True, kw_only=True)
class _Attempt:
    entry: QueueEntry
    domain: str
    recipients: tuple[QueueRecipientState, ...]


class QueueWorker:
    def __init__(
        self,
        store: Store,
        resolver: Resolver,
        config: Config,
        notify: LocalDelivery,
        *,
        clock: Callable[[], float] = time.time,
        signer: Signer | None = None,
        timeouts: Timeouts | None = None,
        sts_fetcher: PolicyFetcher | None = None,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.config = config
        self.notify = notify
        self.clock = clock
        self.signer = signer
        self.timeouts = timeouts or Timeouts(connect=config.queue.connect_timeout)
        self.sts_cache = StsPolicyCache()
        self.sts_fetcher: PolicyFetcher = sts_fetcher or HttpsPolicyFetcher()
        self.wakeup = asyncio.Event()
        self._in_progress: set[str] = set()  # entries being attempted now: a second pass leaves them alone
        self._more_due = False  # the last pass was full: more may be due now
        self.connections = ConnectionPool(
            max_total=config.queue.max_connections,
            max_per_destination=config.queue.max_per_destination,
            idle_time=config.queue.connection_cache_time,
            reuse_limit=config.queue.connection_reuse_limit,
        )
        self._signing = asyncio.Semaphore(SIGNING_AT_ONCE)
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()  # queue id -> its message, made ready

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; wakes for new mail (`wakeup`) or every few seconds for due retries."""
        try:
            while not stop.is_set():
                self.wakeup.clear()  # before the pass: mail queued during it wakes the next one at once
                try:
                    await self.process_due()
                except Exception:
                    log.exception("queue pass failed")
                    self._more_due = False
                if self._more_due:
                    continue
                waiter = asyncio.ensure_future(self.wakeup.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            await self.connections.close()

    @property
    def busy(self) -> bool:
        """True while an attempt is under way."""
        return bool(self._in_progress)

    async def process_due(self) -> int:
        """One pass over everything due now; returns how many entries were attempted."""
        entries = await self.store.load_queue(due_before=int(self.clock()), limit=PASS_SIZE)
        self._more_due = len(entries) >= PASS_SIZE  # a queue flush after an outage: more wait their turn
        entries = [entry for entry in entries if entry.id not in self._in_progress]
        results = await asyncio.gather(
            *(self.process_entry(entry) for entry in entries), return_exceptions=True
        )
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, Exception):
                # Its next attempt was recorded before trying, so it is retried later, not in a loop.
                log.error("queue_id=%s attempt failed", entry.id, exc_info=result)
        return len(entries)

    async def process_entry(self, entry: QueueEntry) -> None:
        if entry.id in self._in_progress:
            return
        self._in_progress.add(entry.id)
        try:
            fresh = await self.store.get_queue_entry(entry.id)  # another pass may have finished it meanwhile
            if fresh is not None:
                await self._process(fresh)
        finally:
            self._in_progress.discard(entry.id)

    async def _process(self, entry: QueueEntry) -> None:
        now = self.clock()
        due = tuple(
            r for r in entry.recipients if r.status in ("pending", "deferred") and r.next_attempt <= now
        )
        if not due:
            return
        if schedule.expired(entry.created, now, self.config.queue.lifetime):
            days = self.config.queue.lifetime // 86400
            expired = Outcome(code=554, text=f"4.4.7 Message expired: undeliverable for {days} days")
            await self._finish(entry, {r.address: expired for r in due}, now)
            return
        retry_at = int(now) + schedule.retry_delay(
            max(r.attempts for r in due) + 1, self.config.queue.retry_intervals
        )
        await self.store.schedule_queue_attempt(entry.id, [r.address for r in due], retry_at)
        groups: dict[str, list[QueueRecipientState]] = defaultdict(list)
        for recipient in due:
            groups[self._destination(recipient.address.rpartition("@")[2].lower())].append(recipient)
        prepared = await self._prepare(entry)
        results = await asyncio.gather(
            *(
                self._deliver_group(_Attempt(entry=entry, domain=d, recipients=tuple(rs)), prepared)
                for d, rs in groups.items()
            )
        )
        outcomes: dict[str, Outcome] = {}
        for result in results:
            outcomes.update(result)
        await self._finish(entry, outcomes, now)

    async def _prepare(self, entry: QueueEntry) -> _Prepared:
        """Sign and scan the message once; later attempts reuse the result."""
        prepared = self._prepared.get(entry.id)
        if prepared is not None:
            self._prepared.move_to_end(entry.id)
            return prepared
        params = json.loads(entry.params)
        declared = params.get("body") in ("8BITMIME", "BINARYMIME")
        # What the server learnt as the message arrived (see delivery.inbound); absent for bounces.
        content = params.get("content") or {}
        if self.signer is not None:
            async with self._signing:
                data = await self.store.read_blob(entry.blob_id, _body_offset(params), entry.size)
                signed = await self.signer(data, entry.sender)
                if len(signed) < len(data) or not signed.endswith(data):
                    raise RuntimeError("the DKIM signer changed the message instead of adding fields")
                head = signed[: len(signed) - len(data)]
                ascii_only = content["ascii"] if "ascii" in content else data.isascii()
                prepared = _Prepared(
                    head=head,
                    eightbit=declared or not ascii_only,
                    line_endings_checked=not has_bare_line_ending(
                        head if content.get("crlf_only") else signed
                    ),
                    dot_free=bool(content.get("dot_free")) and not has_dot_line(head),
                )
        elif content:
            prepared = _Prepared(
                head=b"",
                eightbit=declared or not content.get("ascii"),
                line_endings_checked=bool(content.get("crlf_only")),
                dot_free=bool(content.get("dot_free")),
            )
        elif declared:
            # Checked as it is sent.
            prepared = _Prepared(head=b"", eightbit=True, line_endings_checked=False, dot_free=False)
        else:
            prepared = await self._scan(entry)
        self._prepared[entry.id] = prepared
        if len(self._prepared) > PREPARED_ENTRIES:
            self._prepared.popitem(last=False)
        return prepared

    async def _scan(self, entry: QueueEntry) -> _Prepared:
        """One pass over the stored message for what MAIL must declare and what sending need not check."""
        eightbit = False
        stuffer = DotStuffer()  # finds bare CR and LF, and line starts, across chunk borders
        clean = dot_free = True
        async for chunk in self._stored_chunks(entry, _body_offset(json.loads(entry.params))):
            eightbit = eightbit or not chunk.isascii()
            if clean:
                try:
                    dot_free = dot_free and len(stuffer.feed(chunk)) == len(chunk)  # nothing was stuffed
                except ProtocolError:
                    clean = False
        return _Prepared(head=b"", eightbit=eightbit, line_endings_checked=clean, dot_free=clean and dot_free)

    async def _stored_chunks(self, entry: QueueEntry, start: int) -> AsyncIterator[bytes]:
        """The message as the queue keeps it (from `start`, see QueueRequest), CHUNK bytes at a time."""
        position = start
        while position < entry.size:
            chunk = await self.store.read_blob(entry.blob_id, position, min(entry.size, position + CHUNK))
            if not chunk:
                raise RuntimeError(f"queue entry {entry.id}: the stored message ends early")
            position += len(chunk)
            yield chunk

    def _message_source(self, entry: QueueEntry, head: bytes, start: int) -> MessageSource:
        """What goes on the wire: our header fields, then the stored message, read afresh for each try."""

        async def chunks() -> AsyncIterator[bytes]:
            pending = head  # sent with the first chunk: one BDAT (or one write) fewer
            async for chunk in self._stored_chunks(entry, start):
                yield pending + chunk if pending else chunk
                pending = b""
            if pending:
                yield pending

        return MessageSource(size=len(head) + entry.size - start, chunks=chunks)

    async def _deliver_group(self, attempt: _Attempt, prepared: _Prepared) -> dict[str, Outcome]:
        entry = attempt.entry
        params = json.loads(entry.params)
        route = await self._route(attempt.domain)
        addresses = tuple(r.address for r in attempt.recipients)
        if isinstance(route, Outcome):
            return dict.fromkeys(addresses, route)
        outbound = Outbound(
            sender=entry.sender,
            recipients=addresses,
            message=self._message_source(entry, prepared.head, _body_offset(params)),
            smtputf8=bool(params.get("smtputf8")),
            eightbit=prepared.eightbit,
            line_endings_checked=prepared.line_endings_checked,
            dot_free=prepared.dot_free,
            requiretls=bool(params.get("requiretls")),
            dsn_params={r.address: _rcpt_params(r.params) for r in attempt.recipients},
            envelope_params=_mail_dsn_params(params),
        )
        async with self.connections.lease(
            attempt.domain, session_key(attempt.domain, route, outbound)
        ) as lease:
            return await deliver(
                outbound,
                route,
                self.resolver,
                helo_name=self.config.server.hostname,
                timeouts=self.timeouts,
                literal_addresses=bool(self.config.smarthost.host)
                and route.hosts == (self.config.smarthost.host,),
                lease=lease,
            )

    def _uses_smarthost(self, domain: str) -> bool:
        smarthost = self.config.smarthost
        return bool(smarthost.host) and (not smarthost.domains or domain in smarthost.domains)

    def _destination(self, domain: str) -> str:
        """Recipients with one destination share a transaction: a domain, or the smarthost for all it takes."""
        return f"[{self.config.smarthost.host}]" if self._uses_smarthost(domain) else domain

    async def _route(self, destination: str) -> Route | Outcome:
        smarthost = self.config.smarthost
        if destination == f"[{smarthost.host}]":
            return Route(
                hosts=(smarthost.host,),
                port=smarthost.port,
                implicit_tls=smarthost.tls == "implicit",
                verify_tls=True,
                require_tls=True,  # credentials never go out in plaintext
                username=smarthost.username,
                password=smarthost.password,
                ca_file=str(self.config.path(smarthost.ca_file)) if smarthost.ca_file else None,
            )
        route = await find_route(destination, self.resolver, self.config.queue.remote_port)
        if isinstance(route, Outcome):
            return route
        if self.config.queue.dane:
            route = await apply_dane(route, self.resolver)
            if route.uses_dane:
                return route  # RFC 8461 §2: DANE takes precedence over the domain's MTA-STS policy
        return await apply_mta_sts(
            route, destination, self.resolver, self.sts_cache, self.sts_fetcher, self.clock()
        )

    async def _finish(self, entry: QueueEntry, outcomes: dict[str, Outcome], now: float) -> None:
        states = {r.address: r for r in entry.recipients}
        records: list[RecipientOutcome] = []
        delayed: list[tuple[QueueRecipientState, Outcome]] = []
        intervals = self.config.queue.retry_intervals
        for address, outcome in outcomes.items():
            state = states[address]
            status = "delivered" if outcome.delivered else "failed" if outcome.permanent else "deferred"
            warn = status == "deferred" and schedule.warn_due(
                entry.created, now, self.config.queue.delay_warning, state.warned
            )
            if warn:
                delayed.append((state, outcome))
            next_attempt = int(now) + schedule.retry_delay(state.attempts + 1, intervals)
            records.append(
                RecipientOutcome(address=address, status=status, reply=outcome.text, remote_mta=outcome.remote_mta,
                                 next_attempt=next_attempt, warned=warn)
            )  # fmt: skip
            log.info(
                "attempt queue_id=%s rcpt=<%s> mx=%s tls=%s result=%s reply=%r next=%s",
                entry.id, address, outcome.remote_mta or "-", outcome.tls or "-", status, outcome.text,
                datetime.fromtimestamp(next_attempt, UTC).isoformat() if status == "deferred" else "-",
            )  # fmt: skip
        # The sender is told before the outcome is recorded (which may drop the message): after a crash in
        # between, a notice may go twice, but never not at all.
        await self._notify(entry, outcomes, states, delayed, now)
        if await self.store.record_queue_outcomes(entry.id, records):
            self._prepared.pop(entry.id, None)  # the entry is gone: no attempt will want it again

    async def _notify(
        self,
        entry: QueueEntry,
        outcomes: dict[str, Outcome],
        states: dict[str, QueueRecipientState],
        delayed: Sequence[tuple[QueueRecipientState, Outcome]],
        now: float,
    ) -> None:
        if bounces.is_null_sender(entry.sender):
            return  # RFC 5321 §4.5.5: never a notification about a notification
        failed = [(states[a], o) for a, o in outcomes.items() if o.permanent]
        succeeded = [(states[a], o) for a, o in outcomes.items() if o.delivered]
        kinds: tuple[tuple[Kind, Sequence[tuple[QueueRecipientState, Outcome]]], ...] = (
            ("failure", failed),
            ("delay", delayed),
            ("success", succeeded),
        )
        for kind, group in kinds:
            wanted = [(s, o) for s, o in group if bounces.should_notify(_notify_list(s.params), kind)]
            if wanted:
                await self._send_dsn(entry, kind, wanted, now)

    async def _send_dsn(
        self, entry: QueueEntry, kind: Kind, group: Sequence[tuple[QueueRecipientState, Outcome]], now: float
    ) -> None:
        params = json.loads(entry.params)
        original = await self.store.read_blob(entry.blob_id, _body_offset(params), entry.size)
        action = _ACTIONS[kind]
        statuses = [
            bounces.RecipientStatus(
                address=state.address,
                original_recipient=json.loads(state.params).get("orcpt"),
                action=action,
                status=_status_code(outcome),
                remote_mta=outcome.remote_mta,
                diagnostic=outcome.text,
                last_attempt=datetime.fromtimestamp(now, UTC),
            )
            for state, outcome in group
        ]
        hostname = self.config.server.hostname
        dsn = bounces.compose_dsn(
            reporting_mta=hostname,
            original_sender=entry.sender,
            recipients=statuses,
            original_message=original,
            ret=params.get("ret"),
            envid=params.get("envid"),
            arrival=datetime.fromtimestamp(entry.created, UTC),
            now=datetime.fromtimestamp(now, UTC),
            kind=kind,
            message_id_domain=hostname,
        )
        log.info("notify queue_id=%s kind=%s to=<%s> rcpt=%d", entry.id, kind, entry.sender, len(statuses))
        await self.notify(entry.sender, dsn)


def _body_offset(params: dict[str, object]) -> int:
    """Where the relayed message starts in the stored one (after our Return-Path line, see QueueRequest)."""
    offset = params.get("body_offset", 0)
    return offset if isinstance(offset, int) else 0


def _status_code(outcome: Outcome) -> str:
    first = outcome.text.split(" ", 2)
    for word in first[:2]:
        if word.count(".") == 2 and word[0] in "245":
            return word
    return "5.0.0" if outcome.permanent else "4.0.0" if not outcome.delivered else "2.0.0"


def _notify_list(params: str) -> tuple[str, ...] | None:
    notify = json.loads(params).get("notify")
    return None if notify is None else tuple(notify)


def _rcpt_params(params: str) -> tuple[str, ...]:
    """RFC 3461 §4: pass NOTIFY and ORCPT on to a server that offers DSN."""
    values = json.loads(params)
    out = []
    if values.get("notify") is not None:
        out.append("NOTIFY=" + (",".join(values["notify"]) or "NEVER"))
    if values.get("orcpt"):
        out.append("ORCPT=" + _xtext(values["orcpt"]))
    return tuple(out)


def _mail_dsn_params(params: dict[str, object]) -> tuple[str, ...]:
    out = []
    if params.get("ret"):
        out.append(f"RET={params['ret']}")
    if params.get("envid"):
        out.append(f"ENVID={_xtext(str(params['envid']))}")
    return tuple(out)


def _xtext(value: str) -> str:
    """RFC 3461 §4: xtext encodes '+', '=' and characters outside 33..126 as +XX."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in value)
