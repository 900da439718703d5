"""SEARCH keys (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 5182 `$`) and their parser.

SORT/THREAD criteria (RFC 5256): `SortKey` and `SortCriterion` live in `sort_keys`, next to the ordering
itself, and are re-exported here.

Keys that the RFCs define as shorthands are expressed with the general forms: `SEEN` is
`FlagKey(flag="\\Seen")`, `UNSEEN` the same with `present=False`, `NEW` is `\\Recent` and not `\\Seen`,
`FROM x` is `HeaderKey(field="FROM", value="x")`, a parenthesised list is an `AndKey`.
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass

from kittiwake.proto.imap.command_reader import MAX_NUMBER64, CommandReader
from kittiwake.proto.imap.errors import BadCharset
from kittiwake.proto.imap.sequence_set import SequenceSet
from kittiwake.proto.imap.sort_keys import SortCriterion, SortKey

__all__ = [
    "AllKey", "AndKey", "BodyKey", "DateField", "DateKey", "DateRelation", "FlagKey", "HeaderKey", "ModSeqKey",
    "NotKey", "OrKey", "SearchKey", "SearchReturn", "SequenceKey", "SizeKey", "SortCriterion", "SortKey",
    "TextKey", "ThreadAlgorithm", "parse_charset", "parse_search_keys",
]  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AllKey:
    """ALL."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagKey:
    """A system flag or keyword set (`present`) or not set on the message."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderKey:
    """The header field contains `value` (case-insensitive substring, RFC 9051 §6.4.4)."""

    field: str  # upper-cased
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyKey:
    """BODY: the body (after the header) contains `value`."""

    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextKey:
    """TEXT: the header or body contains `value`."""

    value: str


class DateField(enum.Enum):
    INTERNAL = "INTERNAL"  # BEFORE ON SINCE: the internal date
    SENT = "SENT"  # SENTBEFORE SENTON SENTSINCE: the Date: header


class DateRelation(enum.Enum):
    BEFORE = "BEFORE"
    ON = "ON"
    SINCE = "SINCE"


@dataclass(frozen=True, slots=True, kw_only=True)
class DateKey:
    """Date comparisons, disregarding time and timezone (RFC 9051 §6.4.4)."""

    field: DateField
    relation: DateRelation
    date: datetime.date


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeKey:
    """LARGER n (`larger`) or SMALLER n, on RFC822.SIZE."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceKey:
    """A sequence set of message numbers, or of UIDs with `uid` (`UID 1:5`); `$` is a saved result."""

    sequence_set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ModSeqKey:
    """MODSEQ [entry-name entry-type] n (RFC 7162 §3.1.5): messages with mod-sequence >= n."""

    modseq: int
    entry_name: str | None = None  # e.g. "/flags/\\draft"
    entry_type: str | None = None  # "priv", "shared" or "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class NotKey:
    key: SearchKey


@dataclass(frozen=True, slots=True, kw_only=True)
class OrKey:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True, kw_only=True)
class AndKey:
    """All keys match; a SEARCH command's top-level list of keys is one of these."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    AllKey
    | FlagKey
    | HeaderKey
    | BodyKey
    | TextKey
    | DateKey
    | SizeKey
    | SequenceKey
    | ModSeqKey
    | NotKey
    | OrKey
    | AndKey
)


class SearchReturn(enum.Enum):
    """ESEARCH result options, RFC 4731 `RETURN (...)`; SAVE from RFC 5182."""

    MIN = "MIN"
    MAX = "MAX"
    ALL = "ALL"
    COUNT = "COUNT"
    SAVE = "SAVE"


class ThreadAlgorithm(enum.Enum):
    """RFC 5256 §4."""

    ORDEREDSUBJECT = "ORDEREDSUBJECT"
    REFERENCES = "REFERENCES"


# Parsing (RFC 9051 §6.4.4 search-key, RFC 5256 search-criteria).

_CHARSETS = {"UTF-8": "utf-8", "US-ASCII": "ascii"}
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")


def parse_charset(r: CommandReader) -> str:
    """The CHARSET argument, upper-cased; RFC 9051 §6.4.4: others than UTF-8/US-ASCII are NO [BADCHARSET]."""
    raw = r.string() if r.peek() == b'"' else r.atom()
    name = raw.decode("ascii", "replace").upper()
    if name not in _CHARSETS:
        raise BadCharset(r.tag, f"unsupported charset {name}")
    return name


def parse_search_keys(r: CommandReader, charset: str | None) -> SearchKey:
    """search-key *(SP search-key): a list of more than one key is their conjunction.

    Strings are decoded with `charset` (UTF-8 when None: IMAP4rev2 and RFC 6855 clients send UTF-8).
    """
    keys = [_parse_search_key(r, charset)]
    while r.accept(b" "):
        keys.append(_parse_search_key(r, charset))
    return keys[0] if len(keys) == 1 else AndKey(keys=tuple(keys))


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "OLD": ("\\Recent", False),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = frozenset({"BCC", "CC", "FROM", "SUBJECT", "TO"})
_DATE_KEYS = {
    "BEFORE": (DateField.INTERNAL, DateRelation.BEFORE),
    "ON": (DateField.INTERNAL, DateRelation.ON),
    "SINCE": (DateField.INTERNAL, DateRelation.SINCE),
    "SENTBEFORE": (DateField.SENT, DateRelation.BEFORE),
    "SENTON": (DateField.SENT, DateRelation.ON),
    "SENTSINCE": (DateField.SENT, DateRelation.SINCE),
}


def _parse_search_key(r: CommandReader, charset: str | None) -> SearchKey:
    r.enter()
    try:
        if r.accept(b"("):
            key = parse_search_keys(r, charset)
            r.expect(b")")
            return key if isinstance(key, AndKey) else AndKey(keys=(key,))
        if r.peek() and r.peek() in b"0123456789*$":
            return SequenceKey(sequence_set=r.sequence_set())
        return _parse_named_search_key(r, r.keyword(), charset)
    finally:
        r.depth -= 1


def _parse_named_search_key(r: CommandReader, name: str, charset: str | None) -> SearchKey:
    if name in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[name]
        return FlagKey(flag=flag, present=present)
    if name == "ALL":
        return AllKey()
    if name == "NEW":
        return AndKey(keys=(FlagKey(flag="\\Recent"), FlagKey(flag="\\Seen", present=False)))
    r.sp()
    if name in ("KEYWORD", "UNKEYWORD"):
        return FlagKey(flag=r.atom().decode("ascii"), present=name == "KEYWORD")
    if name in _HEADER_KEYS:
        return HeaderKey(field=name, value=_search_string(r, charset))
    if name == "HEADER":
        field = r.header_field_name()
        r.sp()
        return HeaderKey(field=field, value=_search_string(r, charset))
    if name == "BODY":
        return BodyKey(value=_search_string(r, charset))
    if name == "TEXT":
        return TextKey(value=_search_string(r, charset))
    if name in _DATE_KEYS:
        date_field, relation = _DATE_KEYS[name]
        return DateKey(field=date_field, relation=relation, date=_parse_search_date(r))
    if name in ("LARGER", "SMALLER"):
        return SizeKey(larger=name == "LARGER", size=r.number(limit=MAX_NUMBER64))
    if name == "NOT":
        return NotKey(key=_parse_search_key(r, charset))
    if name == "OR":
        left = _parse_search_key(r, charset)
        r.sp()
        return OrKey(left=left, right=_parse_search_key(r, charset))
    if name == "UID":
        return SequenceKey(sequence_set=r.sequence_set(), uid=True)
    if name == "MODSEQ":
        return _parse_modseq_key(r)
    raise r.fail(f"unknown search key {name}")


def _search_string(r: CommandReader, charset: str | None) -> str:
    raw = r.astring()
    try:
        return raw.decode(_CHARSETS.get(charset or "UTF-8", "utf-8"))
    except UnicodeDecodeError:
        raise r.fail("search string does not match the charset") from None


def _parse_search_date(r: CommandReader) -> datetime.date:
    """RFC 9051 §9 date: date-text or DQUOTE date-text DQUOTE."""
    quoted = r.accept(b'"')
    day, month, year = r.match(_DATE, "date").groups()
    if quoted:
        r.expect(b'"')
    try:
        return datetime.date(int(year), r.month(month), int(day))
    except ValueError:
        raise r.fail("invalid date") from None


def _parse_modseq_key(r: CommandReader) -> SearchKey:
    """RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer."""
    entry_name = entry_type = None
    if r.peek() == b'"':
        entry_name = r.text(r.string())
        r.sp()
        entry_type = r.keyword().lower()
        if entry_type not in ("priv", "shared", "all"):
            raise r.fail("bad MODSEQ entry type")
        r.sp()
    return ModSeqKey(modseq=r.number(limit=MAX_NUMBER64), entry_name=entry_name, entry_type=entry_type)
