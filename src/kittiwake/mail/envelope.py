"""The IMAP ENVELOPE fields (RFC 9051 §7.5.2) extracted from a header block."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeAddress:
    """One address of an ENVELOPE address list, as RFC 9051 §9 `address` gives it.

    Group syntax (RFC 5322 §3.4) is carried as RFC 9051 says: a start marker with `mailbox` set to the group
    name and `host` None, and an end marker with both `mailbox` and `host` None.
    """

    name: str | None  # display name, raw (RFC 2047 encoded words kept as sent)
    adl: str | None  # obsolete source route; always None in practice
    mailbox: str | None  # local part, or the group name for a group start marker
    host: str | None  # domain; None for group markers


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """ENVELOPE: raw header values (unfolded, encoded words kept), None where the header is absent."""

    date: str | None
    subject: str | None
    from_: tuple[EnvelopeAddress, ...]
    sender: tuple[EnvelopeAddress, ...]  # defaults to from_ when absent (RFC 9051 §7.5.2)
    reply_to: tuple[EnvelopeAddress, ...]  # defaults to from_ when absent
    to: tuple[EnvelopeAddress, ...]
    cc: tuple[EnvelopeAddress, ...]
    bcc: tuple[EnvelopeAddress, ...]
    in_reply_to: str | None
    message_id: str | None
