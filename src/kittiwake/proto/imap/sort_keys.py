"""SORT ordering (RFC 5256 §3, RFC 5957): comparison keys per criterion and the sort itself.

Theory of operation: the SORT handler builds one `SortRecord` per searched message with the values already
decoded (RFC 2047 display names, base subject, sent date). `sort_messages` orders the records by the criteria
with the i;ascii-casemap comparator for strings; messages that compare equal on every criterion keep
ascending sequence-number order (RFC 5256 §3: "the messages are sorted by sequence number").
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

# RFC 4790 §9.2: i;ascii-casemap maps a-z to A-Z and compares the resulting octets.
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def ascii_casemap(text: str) -> bytes:
    """The i;ascii-casemap collation key of `text`: ASCII letters upper-cased, then the UTF-8 octets."""
    return text.translate(_ASCII_UPPER).encode("utf-8", "surrogateescape")


class SortKey(enum.Enum):
    """A SORT criterion (RFC 5256 §3, RFC 5957 §3)."""

    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"
    DISPLAYTO = "DISPLAYTO"


@dataclass(frozen=True, slots=True, kw_only=True)
class SortCriterion:
    """One criterion with its REVERSE modifier."""

    key: SortKey
    reverse: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SortAddress:
    """The first address of From, To or Cc as SORT sees it; None fields were absent."""

    display_name: str | None  # RFC 2047-decoded display name
    mailbox: str | None  # IMAP addr-mailbox (local part)
    host: str | None  # IMAP addr-host


@dataclass(frozen=True, slots=True, kw_only=True)
class SortRecord:
    """What SORT needs of one message.

    `sent_date` is the Date header in any offset; RFC 5256 §2.2 says to use the internal date when Date is
    missing or unparsable, which the caller does. Both datetimes must be timezone-aware.
    """

    number: int  # the sequence number, or the UID for UID SORT; also the final tie-break
    internal_date: datetime
    sent_date: datetime
    size: int
    base_subject: str
    from_: SortAddress | None
    to: SortAddress | None
    cc: SortAddress | None


SortValue = datetime | int | bytes


def _mailbox_key(address: SortAddress | None) -> bytes:
    # RFC 5256 §3: FROM, TO and CC sort on the addr-mailbox of the first address; absent sorts as "".
    if address is None or address.mailbox is None:
        return b""
    return ascii_casemap(address.mailbox)


def _display_key(address: SortAddress | None) -> bytes:
    # RFC 5957 §3: the display name, or the address itself when there is none.
    if address is None:
        return b""
    if address.display_name:
        return ascii_casemap(address.display_name)
    if address.mailbox is None:
        return b""
    if address.host is None:
        return ascii_casemap(address.mailbox)
    return ascii_casemap(f"{address.mailbox}@{address.host}")


_KEY_FUNCTIONS: dict[SortKey, Callable[[SortRecord], SortValue]] = {
    SortKey.ARRIVAL: lambda record: record.internal_date,
    SortKey.CC: lambda record: _mailbox_key(record.cc),
    SortKey.DATE: lambda record: record.sent_date,
    SortKey.FROM: lambda record: _mailbox_key(record.from_),
    SortKey.SIZE: lambda record: record.size,
    SortKey.SUBJECT: lambda record: ascii_casemap(record.base_subject),
    SortKey.TO: lambda record: _mailbox_key(record.to),
    SortKey.DISPLAYFROM: lambda record: _display_key(record.from_),
    SortKey.DISPLAYTO: lambda record: _display_key(record.to),
}


def sort_key(record: SortRecord, key: SortKey) -> SortValue:
    """The comparison value of `record` for one criterion (datetimes, ints or casemapped bytes)."""
    return _KEY_FUNCTIONS[key](record)


def sort_messages(records: Iterable[SortRecord], criteria: Sequence[SortCriterion]) -> list[int]:
    """The record numbers in SORT order; raises ValueError when `criteria` is empty (RFC 5256 §3: 1*)."""
    if not criteria:
        raise ValueError("SORT needs at least one criterion")
    ordered = sorted(records, key=lambda record: record.number)
    # Stable sorts from the least to the most significant criterion; reverse=True keeps equal records in
    # ascending order, so sequence order stays the final tie-break even under REVERSE.
    for criterion in reversed(criteria):
        function = _KEY_FUNCTIONS[criterion.key]
        ordered.sort(key=function, reverse=criterion.reverse)
    return [record.number for record in ordered]
