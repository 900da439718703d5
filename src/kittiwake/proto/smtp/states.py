"""The SMTP server's state table: which verbs each state accepts, and why the others are refused.

Theory of operation: the state says what the next input line means (``State``); ``ALLOWED_VERBS`` lists
the verbs each command state accepts. Any other verb is answered ``503 5.5.1`` by the core with the reason
from ``sequence_error``, and never reaches the session. States absent from the table (GREETING, DATA,
CHUNK, AUTH, TLS, CLOSED) read no commands at all. ``Pending`` names the event whose answer the core
awaits before it reads further input.
"""

from __future__ import annotations

from enum import Enum, auto

from kittiwake.proto.smtp.replies import Reply, bad_sequence


class State(Enum):
    GREETING = auto()  # greet() not called yet; input waits
    REFUSED = auto()  # 554 greeting sent; RFC 5321 §3.1: only QUIT from now on
    NEED_HELLO = auto()
    READY = auto()  # HELO/EHLO done, no transaction
    MAIL = auto()  # MAIL accepted, no recipient yet
    RCPT = auto()  # at least one recipient accepted
    BDAT = auto()  # between two BDAT chunks of one transaction
    DATA = auto()  # reading a DATA body
    CHUNK = auto()  # reading the octets of one BDAT chunk
    AUTH = auto()  # SASL exchange: each line is a response to a 334 challenge
    TLS = auto()  # 220 sent to STARTTLS; waiting for start_tls_done()
    CLOSED = auto()


class Pending(Enum):
    """The event whose answer the core is waiting for."""

    HELLO = auto()
    STARTTLS = auto()
    AUTH = auto()
    MAIL = auto()
    RCPT = auto()
    VRFY = auto()
    DATA_START = auto()
    CHUNKING_START = auto()
    MESSAGE_END = auto()


# RFC 5321 §4.1.4: NOOP, HELP, EXPN, VRFY and RSET may be used at any time.
ANYTIME_VERBS = frozenset({"NOOP", "HELP", "EXPN", "VRFY", "RSET", "QUIT"})
ALLOWED_VERBS: dict[State, frozenset[str]] = {
    State.REFUSED: frozenset({"QUIT"}),
    State.NEED_HELLO: ANYTIME_VERBS | {"HELO", "EHLO"},
    State.READY: ANYTIME_VERBS | {"HELO", "EHLO", "MAIL", "STARTTLS", "AUTH"},
    State.MAIL: ANYTIME_VERBS | {"HELO", "EHLO", "RCPT"},
    State.RCPT: ANYTIME_VERBS | {"HELO", "EHLO", "RCPT", "DATA", "BDAT"},
    # RFC 3030 §2: within a BDAT transaction only further BDAT chunks (or RSET/NOOP/QUIT) may follow.
    State.BDAT: frozenset({"BDAT", "RSET", "NOOP", "HELP", "QUIT"}),
}

# Why a verb is out of sequence, by (verb, state); (verb, None) is the verb's default.
SEQUENCE_TEXT: dict[tuple[str, State | None], str] = {
    ("MAIL", State.NEED_HELLO): "Send EHLO or HELO first",
    ("MAIL", None): "Sender already specified",
    ("RCPT", None): "Need MAIL before RCPT",
    ("DATA", State.MAIL): "Need RCPT before DATA",
    ("DATA", State.BDAT): "DATA not allowed after BDAT",
    ("DATA", None): "Need MAIL before DATA",
    ("BDAT", State.MAIL): "Need RCPT before BDAT",
    ("BDAT", None): "Need MAIL before BDAT",
    ("AUTH", State.NEED_HELLO): "Send EHLO first",
    ("AUTH", None): "AUTH not allowed during a mail transaction",
    ("STARTTLS", State.NEED_HELLO): "Send EHLO first",
    ("STARTTLS", None): "STARTTLS not allowed during a mail transaction",
    ("HELO", None): "Finish the message first",
    ("EHLO", None): "Finish the message first",
}


def sequence_error(verb: str, state: State) -> Reply:
    text = SEQUENCE_TEXT.get((verb, state)) or SEQUENCE_TEXT.get((verb, None)) or "Bad sequence of commands"
    return bad_sequence(text)
