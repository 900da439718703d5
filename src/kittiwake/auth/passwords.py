"""Password hashing with argon2id (RFC 9106), and the check that old hashes need renewing."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True, kw_only=True)
class HashParameters:
    """RFC 9106 §4's second recommended option (64 MiB, 3 passes) with 1 lane: one login, one core."""

    time_cost: int = 3
    memory_cost: int = 65536  # KiB
    parallelism: int = 1


class Passwords:
    def __init__(self, parameters: HashParameters | None = None) -> None:
        p = parameters or HashParameters()
        self._hasher = PasswordHasher(
            time_cost=p.time_cost, memory_cost=p.memory_cost, parallelism=p.parallelism, type=Type.ID
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; a malformed stored hash never matches."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's, so a login should renew it."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
