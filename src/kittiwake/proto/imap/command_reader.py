"""A cursor over a command's arguments: the RFC 9051 §9 tokens (atom, astring, string, number, flag...).

Every method consumes what it returns or raises `ParseError` with the command's tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kittiwake.proto.imap.errors import MailboxNameError, ParseError
from kittiwake.proto.imap.mailbox_names import decode_mailbox_name, normalize_inbox
from kittiwake.proto.imap.receiver import Argument, Literal, StreamedLiteral
from kittiwake.proto.imap.sequence_set import InvalidSequenceSet, SequenceSet

# RFC 9051 §9: atom-specials are ( ) { SP CTL % * DQUOTE \ ]; astrings also allow "]", list-mailbox "%*]".
_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\]\x80-\xff]+')
_ASTRING_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\x80-\xff]+')
_LIST_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f"\\\x80-\xff]+')
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
_NUMBER = re.compile(rb"[0-9]{1,20}")
_FLAG = re.compile(rb'\\?[^(){ \x00-\x1f\x7f%*"\\\]\x80-\xff]+')
_SEQUENCE = re.compile(rb"[0-9*:,$]+")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

MAX_NUMBER = 0xFFFFFFFF
MAX_NUMBER64 = 0x7FFFFFFFFFFFFFFF  # RFC 9051 §9 number64; RFC 7162 mod-sequence-value
MAX_DEPTH = 64  # nested search keys or parentheses

# RFC 9051 §2.3.2 system flags (and RFC 3501 \Recent), spelled canonically whatever case the client used.
_SYSTEM_FLAGS = {
    flag.upper(): flag for flag in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}


class CommandReader:
    """A cursor over a command's arguments: text parts with literals between them."""

    def __init__(self, tag: str, args: tuple[Argument, ...], utf8: bool) -> None:
        self.tag = tag
        self.utf8 = utf8
        self.depth = 0
        # (text, creating) of the first mailbox name that parsed but cannot be accepted; see refuse_name.
        self.refused_name: tuple[str, bool] | None = None
        self._args = args
        self._index = 0
        self._text = self._text_part(0)
        self._pos = 0

    def _text_part(self, index: int) -> bytes:
        part = self._args[index] if index < len(self._args) else None
        if not isinstance(part, bytes):
            raise self.fail("malformed command")
        return part

    def fail(self, text: str) -> ParseError:
        return ParseError(self.tag, text)

    def peek(self) -> bytes:
        return self._text[self._pos : self._pos + 1]

    def at_literal(self) -> bool:
        return self._pos == len(self._text) and self._index + 1 < len(self._args)

    def at_end(self) -> bool:
        return self._pos == len(self._text) and self._index + 1 >= len(self._args)

    def end(self) -> None:
        if not self.at_end():
            raise self.fail("unexpected extra arguments")

    def literal(self) -> Literal | StreamedLiteral:
        if not self.at_literal():
            raise self.fail("literal expected")
        value = self._args[self._index + 1]
        if isinstance(value, bytes):
            raise self.fail("malformed command")
        self._index += 2
        self._text = self._text_part(self._index)
        self._pos = 0
        return value

    def match(self, pattern: re.Pattern[bytes], what: str) -> re.Match[bytes]:
        found = pattern.match(self._text, self._pos)
        if found is None:
            raise self.fail(f"{what} expected")
        self._pos = found.end()
        return found

    def accept(self, token: bytes) -> bool:
        """Consume `token` (compared case-insensitively) if it is next."""
        end = self._pos + len(token)
        if self._text[self._pos : end].upper() == token:
            self._pos = end
            return True
        return False

    def expect(self, token: bytes) -> None:
        if not self.accept(token):
            raise self.fail(f"'{token.decode()}' expected")

    def sp(self) -> None:
        self.expect(b" ")

    def atom(self) -> bytes:
        return self.match(_ATOM, "atom").group()

    def keyword(self) -> str:
        return self.atom().upper().decode("ascii")

    def number(self, *, limit: int = MAX_NUMBER, nonzero: bool = False) -> int:
        value = int(self.match(_NUMBER, "number").group())
        if value > limit or (nonzero and value == 0):
            raise self.fail("number out of range")
        return value

    def string(self) -> bytes:
        """quoted / literal."""
        if self.peek() == b'"':
            return _QUOTED_ESCAPE.sub(rb"\1", self.match(_QUOTED, "quoted string").group(1))
        value = self.literal()
        if isinstance(value, StreamedLiteral):
            raise self.fail("message data where a string is expected")
        return value.data

    def astring(self) -> bytes:
        if self.peek() == b'"' or self.at_literal():
            return self.string()
        return self.match(_ASTRING_ATOM, "astring").group()

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def mailbox(self, *, creating: bool = False) -> str:
        return normalize_inbox(self.decode_name(self.astring(), creating=creating))

    def list_mailbox(self) -> str:
        """A LIST or LSUB pattern. One that is not valid modified UTF-7 is not refused: it is taken as it
        is written, so it matches only names spelled that way and LIST answers OK, as Dovecot does."""
        if self.peek() == b'"' or self.at_literal():
            raw = self.string()
        else:
            raw = self.match(_LIST_ATOM, "mailbox pattern").group()
        try:
            return decode_mailbox_name(raw, utf8=self.utf8)
        except MailboxNameError:
            return raw.decode("utf-8", "replace")

    def decode_name(self, raw: bytes, *, creating: bool = False) -> str:
        """Decode a mailbox name or pattern; one that does not decode is refused (see `refuse_name`)."""
        try:
            return decode_mailbox_name(raw, utf8=self.utf8)
        except MailboxNameError as exc:
            self.refuse_name(str(exc), creating=creating)
            return ""

    def refuse_name(self, text: str, *, creating: bool = False) -> None:
        """Note that a syntactically valid mailbox name cannot be accepted, and go on parsing.

        The first refusal wins. The parser raises `MailboxNameRefused` (a NO) once the whole command has
        parsed, so a grammar error anywhere in the command still gets its BAD.
        """
        if self.refused_name is None:
            self.refused_name = (text, creating)

    def sequence_set(self) -> SequenceSet:
        try:
            return SequenceSet.parse(self.match(_SEQUENCE, "sequence set").group())
        except InvalidSequenceSet as exc:
            raise self.fail(str(exc)) from None

    def flag(self) -> str:
        text = self.match(_FLAG, "flag").group().decode("ascii")
        return _SYSTEM_FLAGS.get(text.upper(), text)

    def flag_list(self) -> tuple[str, ...]:
        """RFC 9051 §9 flag-list: "(" [flag *(SP flag)] ")"."""
        self.expect(b"(")
        flags: list[str] = []
        while not self.accept(b")"):
            if flags:
                self.sp()
            flags.append(self.flag())
        return tuple(flags)

    def parenthesised(self, item: Callable[[], None], *, allow_empty: bool = False) -> None:
        """ "(" item *(SP item) ")", calling `item` for each."""
        self.expect(b"(")
        if allow_empty and self.accept(b")"):
            return
        item()
        while not self.accept(b")"):
            self.sp()
            item()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("too deeply nested")

    def text(self, raw: bytes) -> str:
        """Decode a string argument that the grammar defines as UTF-8."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("invalid UTF-8") from None

    def month(self, name: bytes) -> int:
        try:
            return _MONTHS.index(name.upper().decode("ascii")) + 1
        except ValueError:
            raise self.fail("invalid month") from None

    def header_field_name(self) -> str:
        """An astring that is an RFC 5322 §3.6.8 field name (printable ASCII except ":"), upper-cased."""
        name = self.astring()
        if not name or not all(33 <= byte <= 126 for byte in name) or b":" in name:
            raise self.fail("bad header field name")
        return name.decode("ascii").upper()
