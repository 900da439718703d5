"""DKIM signing of outgoing mail from our domains, with the keys `kittiwake init` and `domain add` made."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kittiwake.config import Config
from kittiwake.delivery.router import Router
from kittiwake.mail.address import parse_address_list
from kittiwake.mail.headers import first_field, parse_header_fields
from kittiwake.mailauth.arc import ArcSealError, seal_message
from kittiwake.mailauth.dkim import DkimSigningError, sign_message

log = logging.getLogger(__name__)


class DkimSigner:
    """Signs with d= the From: domain when it is ours (so DMARC aligns, RFC 7489 §3.1), else the sender's."""

    def __init__(self, config: Config, router: Router) -> None:
        self._key_dir = config.path(config.dkim.key_dir)
        self._hostname = config.server.hostname
        self._selector = config.dkim.selector
        self._router = router
        self._keys: dict[str, bytes] = {}

    def _key(self, domain: str) -> bytes | None:
        """The domain's key; a missing one is looked for again next time (`domain add` makes it while we run)."""
        key = self._keys.get(domain)
        if key is None:
            path: Path = self._key_dir / f"{domain}.{self._selector}.key"
            if not path.exists():
                return None
            key = self._keys[domain] = path.read_bytes()
        return key

    async def sign(self, message: bytes, sender: str) -> bytes:
        domain = await self._signing_domain(message, sender)
        key = self._key(domain) if domain else None
        if domain is None or key is None:
            return message
        try:
            header: bytes = await asyncio.to_thread(
                sign_message, message, domain=domain, selector=self._selector, private_key_pem=key
            )
        except DkimSigningError as error:
            # A message that cannot be signed (no From field, say) still goes out, unsigned: signing is an
            # assurance for the receiver, not a condition of delivery.
            log.warning("not DKIM-signing a message from <%s>: %s", sender, error)
            return message
        return header + message

    async def _signing_domain(self, message: bytes, sender: str) -> str | None:
        end = message.find(b"\r\n\r\n")
        fields = parse_header_fields(message[: end + 2 if end >= 0 else len(message)])
        value = first_field(fields, "from")
        candidates = []
        if value:
            candidates += [a.host.lower() for a in parse_address_list(value) if a.host]
        candidates.append(sender.rpartition("@")[2].lower())
        for domain in candidates:
            if domain and await self._router.is_local_domain(domain):
                return domain
        return None

    async def seal(self, message: bytes, auth_results: bytes, domain: str) -> bytes:
        """ARC fields (RFC 8617 §5.1) for mail we forward to another domain, signed for `domain`, so the
        next hop can still trust our verdicts after the forwarding broke SPF. b"" when it cannot be done."""
        key = self._key(domain)
        if key is None or not auth_results:
            return b""
        try:
            return await asyncio.to_thread(
                seal_message, message, domain=domain, selector=self._selector, private_key_pem=key,
                authserv_id=self._hostname, auth_results_header=auth_results,
            )  # fmt: skip
        except ArcSealError as error:
            log.warning("not ARC-sealing a message forwarded for %s: %s", domain, error)
            return b""
