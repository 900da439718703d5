"""When to try again, and when to give up: pure functions of attempts and time."""

from __future__ import annotations

from collections.abc import Sequence


def retry_delay(attempts_done: int, intervals: Sequence[int]) -> int:
    """Seconds to wait after the `attempts_done`-th attempt; the last interval repeats (RFC 5321 §4.5.4.1)."""
    if not intervals:
        return 3600
    return intervals[min(max(attempts_done, 1), len(intervals)) - 1]


def expired(created: int, now: float, lifetime: int) -> bool:
    """RFC 5321 §4.5.4.1: give up after the queue lifetime (4-5 days is usual)."""
    return now - created >= lifetime


def warn_due(created: int, now: float, delay_warning: int, already_warned: bool) -> bool:
    """A delay notice goes out once, when a message has waited `delay_warning` seconds (0 turns it off)."""
    return delay_warning > 0 and not already_warned and now - created >= delay_warning
