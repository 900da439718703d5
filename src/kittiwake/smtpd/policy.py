"""Recipient and sender policy: who may send what to whom, per listener kind. No I/O beyond the store."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kittiwake.delivery.router import Route, Router, Verdict, split_address, strip_tag
from kittiwake.proto.smtp.replies import Reply
from kittiwake.store.interface import Store
from kittiwake.store.models import Account


class ListenerKind(enum.Enum):
    MX = "smtp"  # port 25: mail for our domains from anyone; no AUTH
    SUBMISSION = "submission"  # port 587: STARTTLS, then AUTH, then anything
    SUBMISSIONS = "submissions"  # port 465: implicit TLS (RFC 8314), AUTH


RELAY_DENIED_554 = Reply(code=554, enhanced="5.7.1", text="Relay access denied")
UNKNOWN_USER_550 = Reply(code=550, enhanced="5.1.1", text="No such user here")
SENDER_NOT_OWNED_553 = Reply(
    code=553, enhanced="5.7.1", text="Sender address not owned by the authenticated user"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientDecision:
    reply: Reply | None  # None: accepted
    route: Route | None  # None with reply None: relay to a remote domain


class Policy:
    def __init__(self, store: Store, router: Router) -> None:
        self._store = store
        self._router = router

    async def decide_recipient(self, address: str, *, authenticated: bool) -> RecipientDecision:
        """RFC 5321 §3.6 and §7.1: deliver to our domains; relay elsewhere only for authenticated users.

        The percent hack (user%host@us) and bang paths (host!user@us) get no special meaning: such a local part
        is looked up as it is and is unknown, so nothing is ever relayed by address tricks.
        """
        route = await self._router.resolve(address)
        if route.verdict is Verdict.LOCAL:
            return RecipientDecision(reply=None, route=route)
        if route.verdict is Verdict.UNKNOWN_USER:
            return RecipientDecision(reply=UNKNOWN_USER_550, route=None)
        if authenticated:
            return RecipientDecision(reply=None, route=None)
        return RecipientDecision(reply=RELAY_DENIED_554, route=None)

    async def sender_allowed(self, sender: str, account: Account) -> bool:
        """An authenticated user sends as their own address, a +tag of it, or an alias that reaches them."""
        if sender == "":
            return True  # RFC 3798 and RFC 3461 notifications use the null sender
        local, domain = split_address(sender)
        for candidate in dict.fromkeys((f"{local}@{domain}", f"{strip_tag(local)}@{domain}")):
            if candidate == account.address:
                return True
            alias = await self._store.get_alias(candidate)
            if alias is not None:
                route = await self._router.resolve(candidate)
                if any(a.id == account.id for a in route.accounts):
                    return True
        return False
