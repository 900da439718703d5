"""The IMAP ENVELOPE fields (RFC 9051 §7.5.2) extracted from a header block."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kittiwake.mail.address import parse_address_list


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


_ENVELOPE_FIELDS = frozenset(
    ("date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id")
)


def parse_envelope(fields: Iterable[tuple[str, str]]) -> Envelope:
    """Build the ENVELOPE of a header block from its (name, unfolded value) fields; the first of repeated
    fields wins. Never raises: unreadable address fields give what could be read."""
    values: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        if key in _ENVELOPE_FIELDS and key not in values:
            values[key] = value
    from_ = _addresses(values.get("from"))
    return Envelope(
        date=values.get("date"),
        subject=values.get("subject"),
        from_=from_,
        # RFC 9051 §7.5.2: an absent or empty Sender/Reply-To is set to the From value.
        sender=_addresses(values.get("sender")) or from_,
        reply_to=_addresses(values.get("reply-to")) or from_,
        to=_addresses(values.get("to")),
        cc=_addresses(values.get("cc")),
        bcc=_addresses(values.get("bcc")),
        in_reply_to=values.get("in-reply-to"),
        message_id=values.get("message-id"),
    )


def _addresses(value: str | None) -> tuple[EnvelopeAddress, ...]:
    if not value:
        return ()
    return tuple(
        EnvelopeAddress(name=entry.name, adl=entry.adl, mailbox=entry.mailbox, host=entry.host)
        for entry in parse_address_list(value)
    )
