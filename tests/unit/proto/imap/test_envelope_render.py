from __future__ import annotations

from dataclasses import replace
from typing import Any

from kittiwake.mail.envelope import Envelope, EnvelopeAddress
from kittiwake.proto.imap.wire_format import render_envelope


def address(name: str | None, mailbox: str | None, host: str | None) -> EnvelopeAddress:
    return EnvelopeAddress(name=name, adl=None, mailbox=mailbox, host=host)


EMPTY = Envelope(
    date=None,
    subject=None,
    from_=(),
    sender=(),
    reply_to=(),
    to=(),
    cc=(),
    bcc=(),
    in_reply_to=None,
    message_id=None,
)


def envelope(**fields: Any) -> Envelope:
    return replace(EMPTY, **fields)


GRAY = address("Terry Gray", "gray", "cac.washington.edu")


def test_envelope_matches_the_rfc_9051_example() -> None:
    rendered = render_envelope(
        envelope(
            date="Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
            subject="IMAP4rev2 WG mtg summary and minutes",
            from_=(GRAY,),
            sender=(GRAY,),
            reply_to=(GRAY,),
            to=(address(None, "imap", "cac.washington.edu"),),
            cc=(address(None, "minutes", "CNRI.Reston.VA.US"), address("John Klensin", "KLENSIN", "MIT.EDU")),
            message_id="<B27397-0100000@cac.washington.edu>",
        )
    )
    assert rendered == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
        b'"<B27397-0100000@cac.washington.edu>")'
    )


def test_envelope_with_no_headers_is_all_nil() -> None:
    assert render_envelope(envelope()) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_copies_from_into_absent_sender_and_reply_to() -> None:
    rendered = render_envelope(envelope(from_=(address(None, "a", "example.org"),)))
    assert rendered == (
        b'(NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) '
        b'((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)'
    )


def test_envelope_renders_group_start_and_end_markers() -> None:
    group = (
        address(None, "undisclosed-recipients", None),
        EnvelopeAddress(name=None, adl=None, mailbox=None, host=None),
    )
    rendered = render_envelope(envelope(to=group))
    assert b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))' in rendered


def test_envelope_renders_a_group_with_members() -> None:
    members = (
        address(None, "team", None),
        address("Ann", "ann", "example.org"),
        address(None, "bob", "example.org"),
        EnvelopeAddress(name=None, adl=None, mailbox=None, host=None),
    )
    rendered = render_envelope(envelope(cc=members))
    assert (
        b'((NIL NIL "team" NIL)("Ann" NIL "ann" "example.org")(NIL NIL "bob" "example.org")(NIL NIL NIL NIL))'
        in rendered
    )


def test_envelope_escapes_quotes_and_backslashes_in_names() -> None:
    rendered = render_envelope(envelope(from_=(address('Doe, "J" \\ Jr', "jd", "example.org"),)))
    assert rendered.startswith(b'(NIL NIL (("Doe, \\"J\\" \\\\ Jr" NIL "jd" "example.org"))')


def test_envelope_keeps_encoded_words_as_sent() -> None:
    rendered = render_envelope(envelope(subject="=?utf-8?q?caf=C3=A9?="))
    assert rendered == b'(NIL "=?utf-8?q?caf=C3=A9?=" NIL NIL NIL NIL NIL NIL NIL NIL)'


def test_envelope_sends_raw_8bit_subject_as_literal_without_utf8() -> None:
    rendered = render_envelope(envelope(subject="caf\u00e9"))
    assert rendered == b"(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_sends_utf8_subject_quoted_once_utf8_is_enabled() -> None:
    rendered = render_envelope(envelope(subject="caf\u00e9"), utf8=True)
    assert rendered == b'(NIL "caf\xc3\xa9" NIL NIL NIL NIL NIL NIL NIL NIL)'


def test_envelope_renders_in_reply_to_and_message_id() -> None:
    rendered = render_envelope(envelope(in_reply_to="<parent@example.org>", message_id="<child@example.org>"))
    assert rendered == b'(NIL NIL NIL NIL NIL NIL NIL NIL "<parent@example.org>" "<child@example.org>")'
