"""Sequence sets (RFC 9051 §9 `sequence-set`): parse, resolve against a mailbox, render compactly.

Resolution never walks a range number by number: ranges are merged first, then each one becomes a bisect
pair and a list slice (UIDs) or a `range` (message sequence numbers), so `1:*` over 100,000 messages costs
two bisections.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_NUMBER = 0xFFFFFFFF  # RFC 9051 §9: nz-number is a non-zero 32-bit unsigned integer

_NUMBER = rb"(?:[1-9][0-9]{0,9}|\*)"
_RANGE = _NUMBER + rb"(?::" + _NUMBER + rb")?"
_SEQUENCE_SET = re.compile(_RANGE + rb"(?:," + _RANGE + rb")*\Z")

STAR = 0  # stands for "*" inside a range; 0 is never a valid nz-number


class InvalidSequenceSet(ValueError):
    """Bad sequence-set syntax, or message numbers beyond the end of the mailbox."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceSet:
    """A parsed sequence set; `ranges` hold (first, last) as sent, with `STAR` (0) for "*".

    `saved` is True for "$" (RFC 5182 SEARCHRES): the server substitutes the saved search result.
    """

    ranges: tuple[tuple[int, int], ...] = ()
    saved: bool = False

    @classmethod
    def parse(cls, text: bytes) -> SequenceSet:
        """Parse `1:5,7,9:*` or `$`; raise `InvalidSequenceSet`."""
        if text == b"$":
            return cls(saved=True)
        if not _SEQUENCE_SET.match(text):
            raise InvalidSequenceSet("bad sequence set")
        ranges: list[tuple[int, int]] = []
        for item in text.split(b","):
            first, _, last = item.partition(b":")
            low = _parse_number(first)
            ranges.append((low, _parse_number(last) if last else low))
        return cls(ranges=tuple(ranges))

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """Build a set from explicit numbers (for example a saved SEARCH result)."""
        return cls(ranges=tuple((low, high) for low, high in _runs(sorted(set(numbers)))))

    def _bounds(self, largest: int) -> list[tuple[int, int]]:
        """Merged, ordered (low, high) pairs with "*" replaced by `largest`."""
        if self.saved:
            raise InvalidSequenceSet("'$' must be replaced by the saved search result first")
        pairs = sorted(
            (min(a, b), max(a, b))
            for a, b in ((largest if x == STAR else x, largest if y == STAR else y) for x, y in self.ranges)
        )
        merged: list[tuple[int, int]] = []
        for low, high in pairs:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def resolve_uids(self, uids: Sequence[int]) -> list[int]:
        """The UIDs of `uids` (ascending, unique) that the set names, ascending.

        RFC 9051 §6.4.9: "*" is the highest UID in the mailbox, and `n:*` always includes it even when n is
        above it; UIDs that do not exist are ignored, so an empty result is not an error.
        """
        if not uids:
            return []
        result: list[int] = []
        for low, high in self._bounds(uids[-1]):
            result.extend(uids[bisect_left(uids, low) : bisect_right(uids, high)])
        return result

    def resolve_message_numbers(self, count: int) -> list[range]:
        """Message sequence numbers named by the set, as ascending disjoint ranges.

        RFC 9051 §9: "*" is the number of messages; a number above `count` (or any number in an empty
        mailbox) is an invalid message sequence number and raises `InvalidSequenceSet`.
        """
        bounds = self._bounds(count)
        if bounds and (count == 0 or bounds[-1][1] > count):
            raise InvalidSequenceSet("message sequence number out of range")
        return [range(low, high + 1) for low, high in bounds]

    def __str__(self) -> str:
        if self.saved:
            return "$"
        return ",".join(_render_range(low, high) for low, high in self.ranges)


def _parse_number(text: bytes) -> int:
    if text == b"*":
        return STAR
    value = int(text)
    if value > MAX_NUMBER:
        raise InvalidSequenceSet("number out of range")
    return value


def _render_range(low: int, high: int) -> str:
    first = "*" if low == STAR else str(low)
    if low == high:
        return first
    return f"{first}:{'*' if high == STAR else high}"


def _runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def format_uid_set(uids: Iterable[int]) -> str:
    """Render UIDs compactly in the order given, e.g. `1:5,7` (RFC 4315 COPYUID keeps source order)."""
    runs: list[tuple[int, int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], uid)
        else:
            runs.append((uid, uid))
    return ",".join(_render_range(low, high) for low, high in runs)
