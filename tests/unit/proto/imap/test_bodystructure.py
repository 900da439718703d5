from __future__ import annotations

from dataclasses import replace
from typing import Any

from kittiwake.mail.envelope import Envelope, EnvelopeAddress
from kittiwake.mail.structure import BodyPart, MessageStructure
from kittiwake.proto.imap.wire_format import render_body_structure

NO_ENVELOPE = Envelope(
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


def part(media: str, *, size: int = 0, lines: int = 0, **fields: Any) -> BodyPart:
    """A part whose body is `size` octets long; offsets are irrelevant to the rendering."""
    media_type, _, media_subtype = media.partition("/")
    base = BodyPart(
        header_start=0,
        body_start=100,
        body_end=100 + size,
        body_lines=lines,
        media_type=media_type,
        media_subtype=media_subtype,
        params=(),
        content_id=None,
        description=None,
        encoding="7BIT",
        md5=None,
        disposition=None,
        disposition_params=(),
        language=(),
        location=None,
        children=(),
        message=None,
    )
    return replace(base, **fields)


def message(root: BodyPart, envelope: Envelope = NO_ENVELOPE) -> MessageStructure:
    return MessageStructure(size=root.body_end, envelope=envelope, root=root)


US_ASCII = (("charset", "us-ascii"),)


def test_text_plain_body_matches_the_rfc_9051_example_in_dovecot_case() -> None:
    structure = message(part("text/plain", size=3028, lines=92, params=US_ASCII))
    assert render_body_structure(structure, extensible=False) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3028 92)'
    )


def test_text_plain_bodystructure_adds_md5_disposition_language_location() -> None:
    structure = message(part("text/plain", size=6, lines=1, params=US_ASCII))
    # Dovecot's test-imap-bodystructure.c output for a one-line us-ascii message.
    assert render_body_structure(structure, extensible=True) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)'
    )


def test_basic_part_has_no_line_count() -> None:
    structure = message(part("image/png", size=2048, encoding="BASE64"))
    assert render_body_structure(structure, extensible=False) == b'("image" "png" NIL NIL NIL "base64" 2048)'


def _dovecot_test_message() -> MessageStructure:
    """The part tree of the message in Dovecot's test-imap-bodystructure.c."""
    own = part(
        "text/x-myown",
        size=7,
        lines=1,
        params=(("charset", "us-ascii"), ("foo", 'quoted"string')),
        content_id="<foo@example.com>",
        description="hellodescription",
        md5="Q2hlY2sgSW50ZWdyaXR5IQ==",
        disposition="inline",
        disposition_params=(("foo", "bar"),),
        language=("en", "fi", "se"),
        location="http://example.com/test.txt",
    )
    alternative = part(
        "multipart/alternative",
        params=(("boundary", "sub1"),),
        children=(
            part("text/html", size=20, lines=1, params=US_ASCII, encoding="8BIT"),
            part("text/plain", size=21, lines=1, params=US_ASCII),
        ),
    )
    sub = EnvelopeAddress(name=None, adl=None, mailbox="sub", host="domain.org")
    inner_envelope = replace(
        NO_ENVELOPE,
        date="Sun, 12 Aug 2012 12:34:56 +0300",
        subject="submsg",
        from_=(sub,),
        sender=(sub,),
        reply_to=(sub,),
        to=(
            EnvelopeAddress(name=None, adl=None, mailbox="sub-to1", host="domain.org"),
            EnvelopeAddress(name=None, adl=None, mailbox="sub-to2", host="domain.org"),
        ),
    )
    rfc822 = part(
        "message/rfc822",
        size=412,
        lines=21,
        message=MessageStructure(size=412, envelope=inner_envelope, root=alternative),
    )
    return message(part("multipart/mixed", params=(("boundary", "foo bar"),), children=(own, rfc822)))


# Dovecot prints these without the outermost parentheses; IMAP sends them inside one pair.
DOVECOT_BODYSTRUCTURE = (
    b'(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") "<foo@example.com>" "hellodescription" '
    b'"7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar")) ("en" "fi" "se") '
    b'"http://example.com/test.txt")("message" "rfc822" NIL NIL NIL "7bit" 412 '
    b'("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) '
    b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) '
    b'NIL NIL NIL NIL) (("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1 NIL NIL NIL NIL)'
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "alternative" '
    b'("boundary" "sub1") NIL NIL NIL) 21 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL)'
)
DOVECOT_BODY = (
    b'(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") "<foo@example.com>" "hellodescription" '
    b'"7bit" 7 1)("message" "rfc822" NIL NIL NIL "7bit" 412 '
    b'("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) '
    b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) '
    b'NIL NIL NIL NIL) (("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1)'
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 21) "mixed")'
)


def test_nested_multipart_and_message_rfc822_bodystructure_matches_dovecot() -> None:
    assert render_body_structure(_dovecot_test_message(), extensible=True) == DOVECOT_BODYSTRUCTURE


def test_nested_multipart_and_message_rfc822_body_matches_dovecot() -> None:
    assert render_body_structure(_dovecot_test_message(), extensible=False) == DOVECOT_BODY


def _mixed_with_alternative_and_attachment() -> MessageStructure:
    utf8 = (("charset", "utf-8"),)
    alternative = part(
        "multipart/alternative",
        params=(("boundary", "alt"),),
        children=(
            part("text/plain", size=120, lines=4, params=utf8, encoding="QUOTED-PRINTABLE"),
            part("text/html", size=300, lines=10, params=utf8, encoding="QUOTED-PRINTABLE"),
        ),
    )
    attachment = part(
        "application/pdf",
        size=5000,
        params=(("name", "report.pdf"),),
        encoding="BASE64",
        disposition="attachment",
        disposition_params=(("filename", "report.pdf"),),
    )
    return message(part("multipart/mixed", params=(("boundary", "mix"),), children=(alternative, attachment)))


def test_mixed_alternative_with_attachment_bodystructure() -> None:
    assert render_body_structure(_mixed_with_alternative_and_attachment(), extensible=True) == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 120 4 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 300 10 NIL NIL NIL NIL) '
        b'"alternative" ("boundary" "alt") NIL NIL NIL)'
        b'("application" "pdf" ("name" "report.pdf") NIL NIL "base64" 5000 NIL '
        b'("attachment" ("filename" "report.pdf")) NIL NIL) "mixed" ("boundary" "mix") NIL NIL NIL)'
    )


def test_mixed_alternative_with_attachment_body_has_no_extension_data() -> None:
    assert render_body_structure(_mixed_with_alternative_and_attachment(), extensible=False) == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 120 4)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 300 10) "alternative")'
        b'("application" "pdf" ("name" "report.pdf") NIL NIL "base64" 5000) "mixed")'
    )


def test_disposition_without_parameters_renders_nil_parameters() -> None:
    structure = message(part("image/gif", size=10, encoding="BASE64", disposition="inline"))
    assert render_body_structure(structure, extensible=True) == (
        b'("image" "gif" NIL NIL NIL "base64" 10 NIL ("inline" NIL) NIL NIL)'
    )


def test_multipart_without_parameters_renders_nil_parameters() -> None:
    structure = message(part("multipart/mixed", children=(part("text/plain", size=1, lines=1),)))
    assert render_body_structure(structure, extensible=True) == (
        b'(("text" "plain" NIL NIL NIL "7bit" 1 1 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)'
    )


def test_multipart_extension_carries_disposition_language_and_location() -> None:
    structure = message(
        part(
            "multipart/related",
            params=(("type", "text/html"),),
            disposition="inline",
            language=("de",),
            location="http://example.org/",
            children=(part("text/html", size=5, lines=1),),
        )
    )
    assert render_body_structure(structure, extensible=True) == (
        b'(("text" "html" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL) "related" ("type" "text/html") '
        b'("inline" NIL) ("de") "http://example.org/")'
    )


def test_multipart_without_children_gets_an_empty_text_part() -> None:
    structure = message(part("multipart/mixed", params=(("boundary", "x"),)))
    assert render_body_structure(structure, extensible=False) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'
    )


def test_top_level_message_rfc822_part_renders_envelope_body_and_lines() -> None:
    inner = MessageStructure(
        size=50,
        envelope=replace(NO_ENVELOPE, subject="inner"),
        root=part("text/plain", size=10, lines=2, params=US_ASCII),
    )
    structure = message(part("message/rfc822", size=50, lines=5, message=inner))
    assert render_body_structure(structure, extensible=False) == (
        b'("message" "rfc822" NIL NIL NIL "7bit" 50 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 2) 5)'
    )


def test_message_part_without_parsed_message_renders_as_basic() -> None:
    structure = message(part("message/delivery-status", size=80, lines=3))
    assert render_body_structure(structure, extensible=False) == (
        b'("message" "delivery-status" NIL NIL NIL "7bit" 80)'
    )


def test_rendering_a_body_part_directly_equals_rendering_its_message() -> None:
    structure = _mixed_with_alternative_and_attachment()
    assert render_body_structure(structure.root, extensible=True) == render_body_structure(
        structure, extensible=True
    )


def test_8bit_parameter_value_goes_out_as_literal_unless_utf8_enabled() -> None:
    structure = message(
        part("application/pdf", size=1, encoding="BASE64", params=(("name", "b\u00e4r.pdf"),))
    )
    assert render_body_structure(structure, extensible=False) == (
        b'("application" "pdf" ("name" {8}\r\nb\xc3\xa4r.pdf) NIL NIL "base64" 1)'
    )
    assert render_body_structure(structure, extensible=False, utf8=True) == (
        b'("application" "pdf" ("name" "b\xc3\xa4r.pdf") NIL NIL "base64" 1)'
    )


def test_surrogateescaped_header_octets_go_out_unchanged() -> None:
    structure = message(part("text/plain", size=1, lines=1, description="\udce9t\udce9"))
    assert render_body_structure(structure, extensible=False) == (
        b'("text" "plain" NIL NIL {3}\r\n\xe9t\xe9 "7bit" 1 1)'
    )
