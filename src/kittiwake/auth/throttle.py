"""Failure throttling for logins: a growing delay per client address and per account, then a lock-out.

A pure ledger: callers pass the time, so tests run the clock forward instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last: float = 0.0


@dataclass(slots=True)
class FailureLedger:
    """Counts recent failures per key ("ip:1.2.3.4", "account:a@b"); forgets them after `window` seconds."""

    window: float = 900.0
    lock_after: int = 10  # failures within the window before the key is refused outright
    base_delay: float = 0.5
    max_delay: float = 8.0
    _records: dict[str, _Record] = field(default_factory=dict)

    def _current(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last > self.window:
            del self._records[key]
            return None
        return record

    def delay(self, keys: list[str], now: float) -> float:
        """Seconds to wait before answering a failed attempt: doubles with each recent failure."""
        failures = max((r.failures for k in keys if (r := self._current(k, now))), default=0)
        if failures == 0:
            return 0.0
        return float(min(self.max_delay, self.base_delay * 2 ** (failures - 1)))

    def locked(self, keys: list[str], now: float) -> bool:
        return any((r := self._current(k, now)) is not None and r.failures >= self.lock_after for k in keys)

    def fail(self, keys: list[str], now: float) -> None:
        for key in keys:
            record = self._current(key, now) or self._records.setdefault(key, _Record())
            record.failures += 1
            record.last = now
        if len(self._records) > 100_000:  # bound memory under a distributed guessing attack
            self._forget_old(now)

    def succeed(self, keys: list[str]) -> None:
        for key in keys:
            self._records.pop(key, None)

    def _forget_old(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if now - r.last > self.window]:
            del self._records[key]
