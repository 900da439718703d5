"""The queue worker: takes due entries, delivers them, records each recipient's fate, tells the sender.

Theory of operation: every pass loads the entries with a recipient whose next attempt is due. Before an
attempt the next attempt time is written, so a crash during the attempt means a retry later, never a message
forgotten. Recipients are grouped by domain and each group goes out over one connection, with a global and a
per-destination limit on concurrent connections. Each recipient's result is stored as soon as its attempt
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
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from kittiwake.config import Config
from kittiwake.mailauth.mtasts import HttpsPolicyFetcher, PolicyFetcher, StsPolicyCache
from kittiwake.queue import bounces, schedule
from kittiwake.queue.remote import Outbound, Outcome, Route, Timeouts, apply_mta_sts, deliver, find_route
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
Signer = Callable[[bytes, str], Awaitable[bytes]]  # (message, sender) -> message with DKIM-Signature


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
        self._all = asyncio.Semaphore(config.queue.max_connections)
        self._per_domain: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(config.queue.max_per_destination)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; wakes for new mail (`wakeup`) or every few seconds for due retries."""
        while not stop.is_set():
            self.wakeup.clear()  # before the pass: mail queued during it wakes the next one at once
            try:
                await self.process_due()
            except Exception:
                log.exception("queue pass failed")
            waiter = asyncio.ensure_future(self.wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    @property
    def busy(self) -> bool:
        """True while an attempt is under way."""
        return bool(self._in_progress)

    async def process_due(self) -> int:
        """One pass over everything due now; returns how many entries were attempted."""
        entries = await self.store.load_queue(due_before=int(self.clock()), limit=500)
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
        message = await self._message(entry)
        results = await asyncio.gather(
            *(
                self._deliver_group(_Attempt(entry=entry, domain=d, recipients=tuple(rs)), message)
                for d, rs in groups.items()
            )
        )
        outcomes: dict[str, Outcome] = {}
        for result in results:
            outcomes.update(result)
        await self._finish(entry, outcomes, now)

    async def _message(self, entry: QueueEntry) -> bytes:
        params = json.loads(entry.params)
        data = await self.store.read_blob(entry.blob_id, int(params.get("body_offset", 0)), entry.size)
        if self.signer is not None:
            data = await self.signer(data, entry.sender)
        return data

    async def _deliver_group(self, attempt: _Attempt, message: bytes) -> dict[str, Outcome]:
        entry = attempt.entry
        params = json.loads(entry.params)
        route = await self._route(attempt.domain)
        addresses = tuple(r.address for r in attempt.recipients)
        if isinstance(route, Outcome):
            return dict.fromkeys(addresses, route)
        outbound = Outbound(
            sender=entry.sender,
            recipients=addresses,
            message=message,
            smtputf8=bool(params.get("smtputf8")),
            eightbit=params.get("body") in ("8BITMIME", "BINARYMIME") or not message.isascii(),
            requiretls=bool(params.get("requiretls")),
            dsn_params={r.address: _rcpt_params(r.params) for r in attempt.recipients},
            envelope_params=_mail_dsn_params(params),
        )
        async with self._all, self._per_domain[attempt.domain]:
            return await deliver(
                outbound,
                route,
                self.resolver,
                helo_name=self.config.server.hostname,
                timeouts=self.timeouts,
                literal_addresses=bool(self.config.smarthost.host)
                and route.hosts == (self.config.smarthost.host,),
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
                "attempt queue_id=%s rcpt=<%s> mx=%s result=%s reply=%r next=%s",
                entry.id, address, outcome.remote_mta or "-", status, outcome.text,
                datetime.fromtimestamp(next_attempt, UTC).isoformat() if status == "deferred" else "-",
            )  # fmt: skip
        # The sender is told before the outcome is recorded (which may drop the message): after a crash in
        # between, a notice may go twice, but never not at all.
        await self._notify(entry, outcomes, states, delayed, now)
        await self.store.record_queue_outcomes(entry.id, records)

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
        original = await self.store.read_blob(entry.blob_id, int(params.get("body_offset", 0)), entry.size)
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
