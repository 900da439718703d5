"""Events the SMTP server core emits, and the parsed ESMTP parameters they carry.

Events that await the session's answer (the core processes no further input until it arrives):
``Hello`` (accept_hello() or send_reply), ``StartTls`` (accept_starttls() or send_reply),
``AuthStart``/``AuthResponse`` (send_auth_challenge() or send_reply), ``MailFrom``, ``RcptTo``, ``Vrfy``
(send_reply), ``DataStart`` (accept_data() or send_reply) and ``MessageEnd`` (send_reply).

Notifications the core has already answered itself: ``MessageChunk``, ``MessageAborted``, ``Reset``,
``Quit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kittiwake.proto.smtp.replies import Reply

BodyType = Literal["7BIT", "8BITMIME", "BINARYMIME"]
NotifyCondition = Literal["SUCCESS", "FAILURE", "DELAY"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MailParams:
    size: int | None = None  # RFC 1870 SIZE= declared by the client
    body: BodyType | None = None  # RFC 6152 / RFC 3030 BODY=
    smtputf8: bool = False  # RFC 6531
    requiretls: bool = False  # RFC 8689
    auth: str | None = None  # RFC 4954 §5 AUTH=, xtext-decoded; "<>" when the client sent that
    ret: Literal["FULL", "HDRS"] | None = None  # RFC 3461 §4.3
    envid: str | None = None  # RFC 3461 §4.4, xtext-decoded


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginalRecipient:
    """RFC 3461 §4.2 ORCPT=addr-type;xtext, the address xtext-decoded."""

    address_type: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptParams:
    # RFC 3461 §4.1: None means not given; an empty set means NOTIFY=NEVER.
    notify: frozenset[NotifyCondition] | None = None
    orcpt: OriginalRecipient | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    verb: Literal["HELO", "EHLO"]
    domain: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthStart:
    mechanism: str  # upper-cased
    initial_response: bytes | None  # RFC 4954 §4: b"" when the client sent "="


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    data: bytes  # base64-decoded answer to the last challenge


@dataclass(frozen=True, slots=True, kw_only=True)
class MailFrom:
    reverse_path: str  # "" for the null reverse path <>
    params: MailParams = field(default_factory=MailParams)
    source_route: bool = False  # RFC 5321 §4.1.2: a route was given and dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class RcptTo:
    forward_path: str
    params: RcptParams = field(default_factory=RcptParams)
    source_route: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DataStart:
    """DATA, or the first BDAT chunk of a transaction (``chunking=True``): open the spool and accept."""

    chunking: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageChunk:
    data: bytes  # message bytes, already dot-unstuffed


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEnd:
    """The whole message was received intact; answer it with send_reply (250 or an error)."""

    # No line of the message begins with a period: known after DATA, whose unstuffing sees every line
    # start (RFC 5321 §4.5.2); BDAT does not look, so False there.
    dot_free: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAborted:
    """The message in progress is void: discard what was spooled. ``reply`` is what the core already sent,
    None when the peer closed the connection."""

    reply: Reply | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reset:
    """RSET (already answered 250): drop the envelope."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit:
    """QUIT (already answered 221): flush data_to_send() and close."""


Event = (
    Hello
    | StartTls
    | AuthStart
    | AuthResponse
    | MailFrom
    | RcptTo
    | Vrfy
    | DataStart
    | MessageChunk
    | MessageEnd
    | MessageAborted
    | Reset
    | Quit
)
