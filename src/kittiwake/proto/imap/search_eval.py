"""Evaluating a SEARCH key tree against one message (RFC 9051 §6.4.4, RFC 7162 §3.1.5, RFC 5182).

The server compiles the tree once per command with `compile_search`, resolving sequence sets and saved
results against the mailbox, then calls the matcher on each message through the `MessageView` protocol.
`needs` tells it which data the tree reads, so it loads bodies only when a BODY or TEXT key is present.

Rules that need a decision:
- Strings match as case-insensitive substrings, compared after Unicode case folding.
- FROM, TO, CC and BCC (and HEADER on any address field) match "the contents of the header field"
  (RFC 9051 §6.4.4) in two spellings: the field with its encoded words decoded, comments included, and
  the address list written out as `Name <local@domain>` (the view's `addresses`), as Dovecot matches it.
  Either one containing the string is a match.
- BEFORE/ON/SINCE compare the date of the internal date "disregarding time and timezone" (RFC 9051
  §6.4.4): the calendar date in the zone the internal date was recorded in, which is the date that FETCH
  INTERNALDATE shows, unless the context names another zone.
- SENTBEFORE/SENTON/SENTSINCE compare the date of the Date: field in that field's own zone; a message
  without a readable Date: field matches none of them.
- \\Recent is one of the view's flags when the message is recent in the session (RFC 3501 §2.3.2); an
  IMAP4rev2 session has none (RFC 9051 removed it), so there RECENT and NEW match nothing and OLD everything.
- MODSEQ with an entry name compares the message's mod-sequence: it is at least that of any one flag.
- `$` (RFC 5182) is the saved result as a set of UIDs, for sequence-number and UID keys alike; with no
  saved result it is the empty set.
"""

from __future__ import annotations

import datetime
import enum
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from kittiwake.mail.dates import parse_date
from kittiwake.proto.imap.search_keys import (
    AllKey,
    AndKey,
    BodyKey,
    DateField,
    DateKey,
    DateRelation,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    NotKey,
    OrKey,
    SearchKey,
    SequenceKey,
    SizeKey,
    TextKey,
)
from kittiwake.proto.imap.sequence_set import STAR, SequenceSet

__all__ = [
    "ADDRESS_FIELDS",
    "MessageView",
    "SearchContext",
    "SearchNeed",
    "compile_search",
    "matches",
    "matching",
    "needs",
    "sent_date_from_header",
]


class MessageView(Protocol):
    """What the evaluator reads from one message; load only what `needs()` asks for."""

    @property
    def sequence_number(self) -> int: ...
    @property
    def uid(self) -> int: ...
    @property
    def flags(self) -> Collection[str]: ...  # system flags ("\\Seen") and keywords
    @property
    def internal_date(self) -> datetime.datetime: ...  # aware
    @property
    def size(self) -> int: ...
    @property
    def modseq(self) -> int: ...
    def header(self, name: str) -> list[str]: ...  # decoded values of every field called `name`
    def addresses(self, name: str) -> list[str]: ...  # address fields called `name`, written out
    def sent_date(self) -> datetime.date | None: ...  # see `sent_date_from_header`
    def headers_text(self) -> str: ...
    def body_text(self) -> str: ...


class SearchNeed(enum.Flag):
    """The data a key tree reads."""

    NONE = 0
    FLAGS = enum.auto()
    RECORD = enum.auto()  # UID, size, internal date, mod-sequence
    HEADERS = enum.auto()  # header fields and the header text
    BODY = enum.auto()  # the body text


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchContext:
    """The mailbox facts the keys are resolved against.

    `max_sequence` is the number of messages and `max_uid` the highest UID (what "*" stands for);
    `saved_uids` the RFC 5182 saved result that `$` names; `internal_date_zone`, when set, the zone in
    which internal dates are read for BEFORE/ON/SINCE.
    """

    max_sequence: int
    max_uid: int
    saved_uids: frozenset[int] | None = None
    internal_date_zone: datetime.tzinfo | None = None


Matcher = Callable[[MessageView], bool]

# RFC 5322 §3.6.2, §3.6.3 and §3.6.6: the fields whose value is an address list.
ADDRESS_FIELDS = frozenset(
    {
        *("FROM", "SENDER", "REPLY-TO", "TO", "CC", "BCC"),
        *("RESENT-FROM", "RESENT-SENDER", "RESENT-TO", "RESENT-CC", "RESENT-BCC"),
    }
)


def sent_date_from_header(value: str | None) -> datetime.date | None:
    """The date of a Date: field value in the field's own zone (RFC 9051 §6.4.4 SENT* keys)."""
    if value is None:
        return None
    moment = parse_date(value)
    return moment.date() if moment is not None else None


def needs(key: SearchKey) -> SearchNeed:
    """What data evaluating `key` reads."""
    if isinstance(key, AndKey):
        need = SearchNeed.NONE
        for item in key.keys:
            need |= needs(item)
        return need
    if isinstance(key, OrKey):
        return needs(key.left) | needs(key.right)
    if isinstance(key, NotKey):
        return needs(key.key)
    if isinstance(key, FlagKey):
        return SearchNeed.FLAGS
    if isinstance(key, HeaderKey):
        return SearchNeed.HEADERS
    if isinstance(key, BodyKey):
        return SearchNeed.BODY
    if isinstance(key, TextKey):
        return SearchNeed.HEADERS | SearchNeed.BODY
    if isinstance(key, DateKey):
        return SearchNeed.RECORD if key.field is DateField.INTERNAL else SearchNeed.HEADERS
    if isinstance(key, SizeKey | ModSeqKey):
        return SearchNeed.RECORD
    if isinstance(key, SequenceKey):
        # A message's sequence number is its position; a UID or a saved result needs the record.
        return SearchNeed.RECORD if key.uid or key.sequence_set.saved else SearchNeed.NONE
    return SearchNeed.NONE


def matches(key: SearchKey, message: MessageView, context: SearchContext) -> bool:
    """Whether one message matches `key`; compile once with `compile_search` when searching many."""
    return compile_search(key, context)(message)


def compile_search(key: SearchKey, context: SearchContext) -> Matcher:
    """A function telling whether a message matches `key`, with sets and values prepared once."""
    compiled = _compile(key, context)

    def matcher(message: MessageView) -> bool:
        return compiled(_Folded(message))

    return matcher


class _Folded:
    """A message view that case-folds its texts once, however many keys read them."""

    __slots__ = ("_body", "_flags", "_headers", "view")

    def __init__(self, view: MessageView) -> None:
        self.view = view
        self._flags: frozenset[str] | None = None
        self._headers: str | None = None
        self._body: str | None = None

    def flags(self) -> frozenset[str]:
        if self._flags is None:
            self._flags = frozenset(flag.casefold() for flag in self.view.flags)
        return self._flags

    def headers_text(self) -> str:
        if self._headers is None:
            self._headers = self.view.headers_text().casefold()
        return self._headers

    def body_text(self) -> str:
        if self._body is None:
            self._body = self.view.body_text().casefold()
        return self._body


_Compiled = Callable[[_Folded], bool]


def _compile(key: SearchKey, context: SearchContext) -> _Compiled:
    if isinstance(key, AndKey):
        parts = [_compile(item, context) for item in key.keys]
        return lambda m: all(part(m) for part in parts)
    if isinstance(key, OrKey):
        left, right = _compile(key.left, context), _compile(key.right, context)
        return lambda m: left(m) or right(m)
    if isinstance(key, NotKey):
        inner = _compile(key.key, context)
        return lambda m: not inner(m)
    if isinstance(key, AllKey):
        return lambda m: True
    if isinstance(key, FlagKey):
        return _compile_flag(key)
    if isinstance(key, HeaderKey | BodyKey | TextKey):
        return _compile_text(key)
    if isinstance(key, DateKey):
        return _compile_date(key, context)
    if isinstance(key, SizeKey):
        # RFC 9051 §6.4.4: LARGER and SMALLER are strict comparisons with RFC822.SIZE.
        size = key.size
        if key.larger:
            return lambda m: m.view.size > size
        return lambda m: m.view.size < size
    if isinstance(key, ModSeqKey):
        # RFC 7162 §3.1.5: messages whose mod-sequence is greater than or equal to the value.
        modseq = key.modseq
        return lambda m: m.view.modseq >= modseq
    return _compile_sequence(key, context)


def _compile_flag(key: FlagKey) -> _Compiled:
    # Flags and keywords are compared ignoring case, as IMAP atoms are.
    flag, present = key.flag.casefold(), key.present
    return lambda m: (flag in m.flags()) == present


def _compile_text(key: HeaderKey | BodyKey | TextKey) -> _Compiled:
    needle = key.value.casefold()
    if isinstance(key, BodyKey):
        return lambda m: needle in m.body_text()
    if isinstance(key, TextKey):
        return lambda m: needle in m.headers_text() or needle in m.body_text()
    name = key.field
    # RFC 9051 §6.4.4: HEADER with an empty string matches every message that has the field.
    if name.upper() not in ADDRESS_FIELDS:
        return lambda m: any(needle in value.casefold() for value in m.view.header(name))
    return lambda m: (
        any(needle in value.casefold() for value in m.view.header(name))
        or any(needle in value.casefold() for value in m.view.addresses(name))
    )


def _compile_date(key: DateKey, context: SearchContext) -> _Compiled:
    wanted = key.date
    compare: Callable[[datetime.date], bool]
    if key.relation is DateRelation.BEFORE:
        compare = wanted.__gt__
    elif key.relation is DateRelation.ON:
        compare = wanted.__eq__
    else:
        compare = wanted.__le__  # SINCE: on or after the date
    if key.field is DateField.SENT:
        return lambda m: (sent := m.view.sent_date()) is not None and compare(sent)
    zone = context.internal_date_zone
    if zone is None:
        return lambda m: compare(m.view.internal_date.date())
    return lambda m: compare(m.view.internal_date.astimezone(zone).date())


def _compile_sequence(key: SequenceKey, context: SearchContext) -> _Compiled:
    if key.sequence_set.saved:
        saved = context.saved_uids or frozenset()
        return lambda m: m.view.uid in saved
    largest = context.max_uid if key.uid else context.max_sequence
    lows, highs = _merged_bounds(key.sequence_set, largest)
    if key.uid:
        return lambda m: _within(lows, highs, m.view.uid)
    return lambda m: _within(lows, highs, m.view.sequence_number)


def _merged_bounds(sequence_set: SequenceSet, largest: int) -> tuple[list[int], list[int]]:
    """Ordered disjoint (low, high) ranges as two lists, "*" read as `largest`."""
    # RFC 9051 §6.4.9: "*" is the largest number in use, and n:* covers it even when n is above it.
    pairs = sorted(
        (min(low, high), max(low, high))
        for low, high in (
            (largest if first == STAR else first, largest if last == STAR else last)
            for first, last in sequence_set.ranges
        )
    )
    lows: list[int] = []
    highs: list[int] = []
    for low, high in pairs:
        if highs and low <= highs[-1] + 1:
            highs[-1] = max(highs[-1], high)
        else:
            lows.append(low)
            highs.append(high)
    return lows, highs


def _within(lows: list[int], highs: list[int], number: int) -> bool:
    index = bisect_right(lows, number) - 1
    return index >= 0 and number <= highs[index] and number > 0


def matching(messages: Iterable[MessageView], key: SearchKey, context: SearchContext) -> list[MessageView]:
    """The messages that match `key`, in the order given."""
    matcher = compile_search(key, context)
    return [message for message in messages if matcher(message)]
