"""IMAP server responses (RFC 9051 §7 and extensions) as frozen dataclasses with `serialize() -> bytes`.

Theory of operation: handlers build these values and the server writes `serialize()` for each. A
`FetchResponse` may hold `BodyLiteral` markers instead of message bytes; the server then writes
`serialize_parts()` piece by piece, streaming each marker's octets from storage, so a large `BODY[]` is never
held in memory as one bytes object. Text that ends up in `resp-text` has CR and LF replaced by spaces, so a
message from an exception can never break the framing.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kittiwake.proto.imap.thread_algorithms import ThreadNode, render_threads
from kittiwake.proto.imap.wire_format import (
    NIL,
    encode_astring,
    encode_atom,
    encode_flag_list,
    encode_list,
    encode_mailbox_name,
    encode_nstring,
    encode_number,
    encode_quoted,
    encode_string,
    mailbox_name_octets,
    render_uid_set,
)

CRLF = b"\r\n"


class Status(enum.Enum):
    """The condition of a status response (RFC 9051 §7.1)."""

    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


def _text(text: str) -> bytes:
    # RFC 9051 §9: text = 1*TEXT-CHAR; TEXT-CHAR excludes CR and LF, and CHAR excludes NUL.
    return text.replace("\r", " ").replace("\n", " ").replace("\x00", " ").encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCode:
    """A `resp-text-code` such as `[TRYCREATE]` or `[APPENDUID 38505 3955]` (RFC 9051 §7.1).

    `arguments` holds the encoded bytes after the atom and its space; use the constructors below.
    """

    atom: str
    arguments: bytes = b""

    def serialize(self) -> bytes:
        body = encode_atom(self.atom)
        if self.arguments:
            body += b" " + self.arguments
        return b"[" + body + b"]"

    @classmethod
    def appenduid(cls, uid_validity: int, uids: Iterable[int]) -> ResponseCode:
        """RFC 4315 §3: `[APPENDUID uidvalidity uid-set]`."""
        return cls(atom="APPENDUID", arguments=encode_number(uid_validity) + b" " + render_uid_set(uids))

    @classmethod
    def copyuid(
        cls, uid_validity: int, source_uids: Sequence[int], destination_uids: Sequence[int]
    ) -> ResponseCode:
        """RFC 4315 §3: `[COPYUID uidvalidity source-set destination-set]`, sets in corresponding order.

        The two lists pair up by position; both are rendered as sets, which keeps the pairing only when both
        are ascending, as they are when copies get UIDs in source UID order.
        """
        arguments = b"%d %s %s" % (
            uid_validity,
            render_uid_set(source_uids),
            render_uid_set(destination_uids),
        )
        return cls(atom="COPYUID", arguments=arguments)

    @classmethod
    def number(cls, atom: str, value: int) -> ResponseCode:
        """A code with one number: UIDVALIDITY, UIDNEXT, UNSEEN, HIGHESTMODSEQ."""
        return cls(atom=atom, arguments=encode_number(value))

    @classmethod
    def permanentflags(cls, flags: Iterable[str]) -> ResponseCode:
        """`[PERMANENTFLAGS (\\Seen \\*)]`; include `\\*` when clients may create keywords."""
        return cls(atom="PERMANENTFLAGS", arguments=encode_flag_list(flags))

    @classmethod
    def capability(cls, capabilities: Iterable[str]) -> ResponseCode:
        """`[CAPABILITY IMAP4rev2 ...]`."""
        return cls(atom="CAPABILITY", arguments=b" ".join(encode_atom(name) for name in capabilities))

    @classmethod
    def modified(cls, numbers: Iterable[int]) -> ResponseCode:
        """RFC 7162 §3.1.3: `[MODIFIED set]` names the messages a conditional STORE left alone."""
        return cls(atom="MODIFIED", arguments=render_uid_set(numbers))

    @classmethod
    def badcharset(cls, charsets: Iterable[str]) -> ResponseCode:
        """RFC 9051 §7.1: `[BADCHARSET (UTF-8 US-ASCII)]` lists the charsets the server supports, if any."""
        names = [encode_astring(name) for name in charsets]
        return cls(atom="BADCHARSET", arguments=encode_list(names) if names else b"")


# Codes without arguments (RFC 9051 §7.1, RFC 5530, RFC 7162, RFC 4315, RFC 4978/RFC 5162 CLOSED).
ALERT = ResponseCode(atom="ALERT")
ALREADYEXISTS = ResponseCode(atom="ALREADYEXISTS")
AUTHENTICATIONFAILED = ResponseCode(atom="AUTHENTICATIONFAILED")
AUTHORIZATIONFAILED = ResponseCode(atom="AUTHORIZATIONFAILED")
CANNOT = ResponseCode(atom="CANNOT")
CLIENTBUG = ResponseCode(atom="CLIENTBUG")
CLOSED = ResponseCode(atom="CLOSED")
CONTACTADMIN = ResponseCode(atom="CONTACTADMIN")
CORRUPTION = ResponseCode(atom="CORRUPTION")
EXPIRED = ResponseCode(atom="EXPIRED")
EXPUNGEISSUED = ResponseCode(atom="EXPUNGEISSUED")
HASCHILDREN = ResponseCode(atom="HASCHILDREN")
INUSE = ResponseCode(atom="INUSE")
LIMIT = ResponseCode(atom="LIMIT")
NOMODSEQ = ResponseCode(atom="NOMODSEQ")
NONEXISTENT = ResponseCode(atom="NONEXISTENT")
NOPERM = ResponseCode(atom="NOPERM")
OVERQUOTA = ResponseCode(atom="OVERQUOTA")
PARSE = ResponseCode(atom="PARSE")
PRIVACYREQUIRED = ResponseCode(atom="PRIVACYREQUIRED")
READ_ONLY = ResponseCode(atom="READ-ONLY")
READ_WRITE = ResponseCode(atom="READ-WRITE")
SERVERBUG = ResponseCode(atom="SERVERBUG")
TOOBIG = ResponseCode(atom="TOOBIG")
TRYCREATE = ResponseCode(atom="TRYCREATE")
UIDNOTSTICKY = ResponseCode(atom="UIDNOTSTICKY")
UNAVAILABLE = ResponseCode(atom="UNAVAILABLE")
UNKNOWN_CTE = ResponseCode(atom="UNKNOWN-CTE")


def _resp_text(code: ResponseCode | None, text: str) -> bytes:
    # RFC 9051 §9: resp-text = ["[" resp-text-code "]" SP] [text]
    body = _text(text)
    if code is None:
        return body
    return code.serialize() + b" " + body if body else code.serialize()


@dataclass(frozen=True, slots=True, kw_only=True)
class Tagged:
    """`tag OK/NO/BAD [code] text`: the completion of one command."""

    tag: str
    status: Status
    text: str
    code: ResponseCode | None = None

    def serialize(self) -> bytes:
        if self.status not in (Status.OK, Status.NO, Status.BAD):
            raise ValueError(f"a tagged response cannot be {self.status.value}")
        return b"%s %s %s\r\n" % (
            self.tag.encode("ascii"),
            self.status.value.encode(),
            _resp_text(self.code, self.text),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UntaggedStatus:
    """`* OK/NO/BAD/PREAUTH/BYE [code] text` (RFC 9051 §7.1)."""

    status: Status
    text: str
    code: ResponseCode | None = None

    def serialize(self) -> bytes:
        return b"* %s %s\r\n" % (self.status.value.encode(), _resp_text(self.code, self.text))


@dataclass(frozen=True, slots=True, kw_only=True)
class Continuation:
    """`+ text` (a literal may be sent, IDLE started) or `+ base64` (a SASL challenge; RFC 9051 §7.6)."""

    text: str = ""
    challenge: bytes | None = None  # raw SASL challenge octets, sent base64-encoded when set

    def serialize(self) -> bytes:
        if self.challenge is not None:
            return b"+ " + base64.b64encode(self.challenge) + CRLF
        return b"+ " + _text(self.text) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class Exists:
    """`* n EXISTS`."""

    count: int

    def serialize(self) -> bytes:
        return b"* %d EXISTS\r\n" % self.count


@dataclass(frozen=True, slots=True, kw_only=True)
class Recent:
    """`* n RECENT` (IMAP4rev1 only; RFC 9051 removed it)."""

    count: int

    def serialize(self) -> bytes:
        return b"* %d RECENT\r\n" % self.count


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge:
    """`* n EXPUNGE`: the message with this sequence number is gone and later numbers shift down."""

    sequence_number: int

    def serialize(self) -> bytes:
        return b"* %d EXPUNGE\r\n" % self.sequence_number


@dataclass(frozen=True, slots=True, kw_only=True)
class Vanished:
    """`* VANISHED [(EARLIER)] uid-set` (RFC 7162 §3.2.10), sent instead of EXPUNGE after QRESYNC."""

    uids: tuple[int, ...]
    earlier: bool = False

    def serialize(self) -> bytes:
        earlier = b"(EARLIER) " if self.earlier else b""
        return b"* VANISHED " + earlier + render_uid_set(self.uids) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagsResponse:
    """`* FLAGS (...)`: the flags defined in the selected mailbox."""

    flags: tuple[str, ...]

    def serialize(self) -> bytes:
        return b"* FLAGS " + encode_flag_list(self.flags) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class ListResponse:
    """`* LIST (attributes) "/" name [extended items]` (RFC 9051 §7.3.1, RFC 5258), or `* LSUB` (RFC 3501).

    `child_info` fills the RFC 5258 §3.5 `("CHILDINFO" ("SUBSCRIBED"))` item; `old_name` the RFC 9051 §6.3.9
    `("OLDNAME" ("name"))` item.
    """

    attributes: tuple[str, ...]
    delimiter: str | None
    name: str
    utf8: bool = False
    lsub: bool = False
    child_info: tuple[str, ...] = ()
    old_name: str | None = None

    def serialize(self) -> bytes:
        delimiter = NIL if self.delimiter is None else encode_quoted(self.delimiter)
        line = b"* %s %s %s %s" % (
            b"LSUB" if self.lsub else b"LIST",
            encode_flag_list(self.attributes),
            delimiter,
            encode_mailbox_name(self.name, self.utf8),
        )
        extended: list[bytes] = []
        if self.child_info:
            extended.append(b'"CHILDINFO" ' + encode_list(encode_quoted(item) for item in self.child_info))
        if self.old_name is not None:
            extended.append(b'"OLDNAME" (' + encode_mailbox_name(self.old_name, self.utf8) + b")")
        if extended:
            line += b" (" + b" ".join(extended) + b")"
        return line + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusResponse:
    """`* STATUS name (MESSAGES 3 UIDNEXT 44 ...)`, items in the order given (RFC 9051 §7.2.4)."""

    mailbox: str
    items: tuple[tuple[str, int], ...]
    utf8: bool = False

    def serialize(self) -> bytes:
        items = encode_list(encode_atom(name) + b" " + encode_number(value) for name, value in self.items)
        return b"* STATUS " + encode_mailbox_name(self.mailbox, self.utf8) + b" " + items + CRLF


def _numbers(numbers: Iterable[int]) -> bytes:
    return b"".join(b" %d" % number for number in numbers)


def _modseq_suffix(modseq: int | None) -> bytes:
    # RFC 7162 §3.1.5: "(MODSEQ n)" after the numbers when the search used MODSEQ.
    return b"" if modseq is None else b" (MODSEQ %d)" % modseq


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResponse:
    """`* SEARCH 2 3 6 [(MODSEQ n)]` (RFC 3501 §7.2.5; IMAP4rev1 clients without ESEARCH)."""

    numbers: tuple[int, ...]
    modseq: int | None = None

    def serialize(self) -> bytes:
        return b"* SEARCH" + _numbers(self.numbers) + _modseq_suffix(self.modseq) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class SortResponse:
    """`* SORT 2 3 6 [(MODSEQ n)]` (RFC 5256 §4, RFC 7162 §3.1.5)."""

    numbers: tuple[int, ...]
    modseq: int | None = None

    def serialize(self) -> bytes:
        return b"* SORT" + _numbers(self.numbers) + _modseq_suffix(self.modseq) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class ESearchResponse:
    """`* ESEARCH (TAG "x") UID MIN n MAX n COUNT n ALL set MODSEQ n` (RFC 9051 §7.3.4, RFC 4731).

    Items left as None are omitted; RFC 4731 §3.1 omits MIN, MAX and ALL when nothing matched.
    """

    tag: str | None
    uid: bool
    min: int | None = None
    max: int | None = None
    count: int | None = None
    all: tuple[int, ...] | None = None
    modseq: int | None = None

    def serialize(self) -> bytes:
        line = b"* ESEARCH"
        if self.tag is not None:
            line += b" (TAG " + encode_string(self.tag) + b")"
        if self.uid:
            line += b" UID"
        for name, value in ((b"MIN", self.min), (b"MAX", self.max), (b"COUNT", self.count)):
            if value is not None:
                line += b" %s %d" % (name, value)
        if self.all:
            line += b" ALL " + render_uid_set(self.all)
        if self.modseq is not None:
            line += b" MODSEQ %d" % self.modseq
        return line + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadResponse:
    """`* THREAD (2)(3 6 (4 23)(44 7 96))` (RFC 5256 §4); an empty result is `* THREAD`."""

    threads: tuple[ThreadNode, ...]

    def serialize(self) -> bytes:
        rendered = render_threads(self.threads)
        return b"* THREAD " + rendered + CRLF if rendered else b"* THREAD\r\n"


def _atoms(names: Iterable[str]) -> bytes:
    return b"".join(b" " + encode_atom(name) for name in names)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapabilityResponse:
    """`* CAPABILITY IMAP4rev2 ...`."""

    capabilities: tuple[str, ...]

    def serialize(self) -> bytes:
        return b"* CAPABILITY" + _atoms(self.capabilities) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class EnabledResponse:
    """`* ENABLED UTF8=ACCEPT` (RFC 5161 §3.2); may list no capability at all."""

    capabilities: tuple[str, ...]

    def serialize(self) -> bytes:
        return b"* ENABLED" + _atoms(self.capabilities) + CRLF


Namespace = tuple[tuple[str, str | None], ...]  # (prefix, hierarchy delimiter) pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceResponse:
    """`* NAMESPACE (("" "/")) NIL NIL` (RFC 9051 §7.3.5): personal, other users', shared namespaces."""

    personal: Namespace
    other_users: Namespace = ()
    shared: Namespace = ()
    utf8: bool = False

    def serialize(self) -> bytes:
        parts = (
            self._namespace(self.personal),
            self._namespace(self.other_users),
            self._namespace(self.shared),
        )
        return b"* NAMESPACE " + b" ".join(parts) + CRLF

    def _namespace(self, namespace: Namespace) -> bytes:
        # RFC 9051 §9: Namespace = nil / "(" 1*Namespace-Descr ")"; the prefix is a `string`, never an atom.
        if not namespace:
            return NIL
        descriptions = (
            b"("
            + encode_string(mailbox_name_octets(prefix, self.utf8), utf8=self.utf8)
            + b" "
            + _delimiter(delimiter)
            + b")"
            for prefix, delimiter in namespace
        )
        return b"(" + b"".join(descriptions) + b")"

    def _prefix(self, prefix: str) -> bytes:
        return encode_string(mailbox_name_octets(prefix, self.utf8), utf8=self.utf8)


def _delimiter(delimiter: str | None) -> bytes:
    return NIL if delimiter is None else encode_quoted(delimiter)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdResponse:
    """`* ID ("name" "kittiwake" ...)` or `* ID NIL` (RFC 2971 §3.2)."""

    fields: tuple[tuple[str, str | None], ...] | None

    def serialize(self) -> bytes:
        if not self.fields:
            return b"* ID NIL\r\n"
        pairs = (encode_string(key) + b" " + encode_nstring(value) for key, value in self.fields)
        return b"* ID " + encode_list(pairs) + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaResponse:
    """`* QUOTA "" (STORAGE 10 512)` (RFC 9208 §5.1): (resource, usage, limit) triples."""

    root: str
    resources: tuple[tuple[str, int, int], ...]

    def serialize(self) -> bytes:
        items = encode_list(
            encode_atom(name) + b" " + encode_number(usage) + b" " + encode_number(limit)
            for name, usage, limit in self.resources
        )
        return b"* QUOTA " + encode_astring(self.root) + b" " + items + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaRootResponse:
    """`* QUOTAROOT INBOX ""` (RFC 9208 §5.2): the quota roots of a mailbox."""

    mailbox: str
    roots: tuple[str, ...]
    utf8: bool = False

    def serialize(self) -> bytes:
        roots = b"".join(b" " + encode_astring(root) for root in self.roots)
        return b"* QUOTAROOT " + encode_mailbox_name(self.mailbox, self.utf8) + roots + CRLF


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyLiteral:
    """A literal whose octets the server streams from storage instead of holding them in memory.

    `serialize_parts()` emits the `{size}CRLF` header itself; the server must then write exactly `size`
    octets read through `source`, an opaque handle the FETCH handler chose (a blob key and offset range).
    Unless `binary`, each chunk goes through `wire_format.replace_nul` first: only a literal8 may carry NUL
    (RFC 9051 §4.3.1), and the replacement keeps every length, partial FETCH origins included.
    """

    size: int
    source: object
    binary: bool = False  # literal8 `~{n}` for BINARY[...] data (RFC 3516 §4.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchResponse:
    """`* n FETCH (name value ...)` (RFC 9051 §7.5.2), items in the order given.

    Each item is a data item name as it goes on the wire (`"UID"`, `"BODY[1.2]<0>"`, `"BINARY[2]"`) and its
    value: encoded bytes (a number, a flag list, `render_envelope(...)`, a literal from `encode_literal`)
    or a `BodyLiteral` to stream.
    """

    sequence_number: int
    items: tuple[tuple[str, bytes | BodyLiteral], ...]

    def serialize_parts(self) -> list[bytes | BodyLiteral]:
        """The response as pieces to write in order: bytes as is, each `BodyLiteral` by streaming its source."""
        parts: list[bytes | BodyLiteral] = []
        current = [b"* %d FETCH (" % self.sequence_number]
        for index, (name, value) in enumerate(self.items):
            current.append((b" " if index else b"") + name.encode("ascii") + b" ")
            if isinstance(value, BodyLiteral):
                current.append(b"%s{%d}\r\n" % (b"~" if value.binary else b"", value.size))
                parts.append(b"".join(current))
                parts.append(value)
                current = []
            else:
                current.append(value)
        current.append(b")\r\n")
        parts.append(b"".join(current))
        return parts

    def serialize(self) -> bytes:
        """The whole response as bytes; raises ValueError when an item is a `BodyLiteral`."""
        parts = self.serialize_parts()
        head = parts[0]
        if len(parts) != 1 or not isinstance(head, bytes):
            raise ValueError("a FETCH response with streamed literals must be written with serialize_parts()")
        return head


@dataclass(frozen=True, slots=True, kw_only=True)
class Prebuilt:
    """Untagged responses already rendered to bytes, for fast paths that format many lines at once."""

    data: bytes

    def serialize(self) -> bytes:
        return self.data


Response = (
    Prebuilt
    | Tagged
    | UntaggedStatus
    | Continuation
    | Exists
    | Recent
    | Expunge
    | Vanished
    | FlagsResponse
    | ListResponse
    | StatusResponse
    | SearchResponse
    | SortResponse
    | ESearchResponse
    | ThreadResponse
    | CapabilityResponse
    | EnabledResponse
    | NamespaceResponse
    | IdResponse
    | QuotaResponse
    | QuotaRootResponse
    | FetchResponse
)
