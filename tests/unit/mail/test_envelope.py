"""ENVELOPE extraction (RFC 9051 §7.5.2)."""

from __future__ import annotations

from kittiwake.mail.envelope import Envelope, EnvelopeAddress, parse_envelope
from kittiwake.mail.headers import parse_header_fields


def address(mailbox: str, host: str, name: str | None = None) -> EnvelopeAddress:
    return EnvelopeAddress(name=name, adl=None, mailbox=mailbox, host=host)


def test_envelope_takes_raw_values_and_parsed_addresses() -> None:
    fields = parse_header_fields(
        b"Date: Sun, 22 Nov 2026 04:30:00 +0000\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"From: Alice <alice@example.com>\r\n"
        b"To: bob@example.org,\r\n Carol <carol@example.net>\r\n"
        b"Cc: undisclosed-recipients:;\r\n"
        b"Bcc: secret@example.org\r\n"
        b"In-Reply-To: <prev@example.com>\r\n"
        b"Message-ID: <this@example.com>\r\n\r\n"
    )
    alice = address("alice", "example.com", "Alice")
    assert parse_envelope(fields) == Envelope(
        date="Sun, 22 Nov 2026 04:30:00 +0000",
        subject="=?utf-8?q?caf=C3=A9?=",
        from_=(alice,),
        sender=(alice,),
        reply_to=(alice,),
        to=(address("bob", "example.org"), address("carol", "example.net", "Carol")),
        cc=(
            EnvelopeAddress(name=None, adl=None, mailbox="undisclosed-recipients", host=None),
            EnvelopeAddress(name=None, adl=None, mailbox=None, host=None),
        ),
        bcc=(address("secret", "example.org"),),
        in_reply_to="<prev@example.com>",
        message_id="<this@example.com>",
    )


def test_sender_and_reply_to_are_kept_when_present_and_default_when_empty() -> None:
    envelope = parse_envelope([("From", "a@x.test"), ("Sender", "s@x.test"), ("Reply-To", "")])
    assert envelope.sender == (address("s", "x.test"),)
    assert envelope.reply_to == (address("a", "x.test"),)


def test_absent_fields_are_none_or_empty_and_first_occurrence_wins() -> None:
    envelope = parse_envelope([("subject", "first"), ("SUBJECT", "second")])
    assert envelope.subject == "first"
    assert (envelope.date, envelope.message_id, envelope.in_reply_to) == (None, None, None)
    assert envelope.from_ == envelope.sender == envelope.reply_to == envelope.to == ()
