"""Recent successful logins, so that a client reconnecting with the same password skips the argon2 check.

Theory of operation: mail clients open many connections (one per folder, a new one after every sleep) and
each LOGIN would otherwise cost a 64 MiB, multi-pass argon2id hash. As mox does, a success is remembered for
a while: the key is the account and its stored hash, so changing the password (a new hash) forgets it; the
value is an HMAC of the password under a key made at start and held only in memory, so the cache never
holds the password, nor a hash that would be worth attacking offline without that key. Failures are never
remembered: every wrong guess still pays the full price, and the failure throttle still applies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_TTL = 900.0  # seconds; mox clears its cache every 15 minutes
DEFAULT_SIZE = 100_000


class LoginCache:
    def __init__(
        self, clock: Callable[[], float], *, ttl: float = DEFAULT_TTL, size: int = DEFAULT_SIZE
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[int, str], tuple[bytes, float]] = OrderedDict()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def remember(self, account_id: int, password_hash: str, password: str) -> None:
        key = (account_id, password_hash)
        self._entries[key] = (self._digest(password), self._clock() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def matches(self, account_id: int, password_hash: str, password: str) -> bool:
        """True when this password logged in to this account, with this stored hash, within the TTL."""
        key = (account_id, password_hash)
        entry = self._entries.get(key)
        if entry is None:
            return False
        digest, expires = entry
        if self._clock() >= expires:
            del self._entries[key]
            return False
        return hmac.compare_digest(digest, self._digest(password))
