"""MIME structure parsing: every offset checked by slicing the message bytes."""

from __future__ import annotations

import base64

import pytest

from kittiwake.mail.structure import BodyPart, StructureParser, parse_structure

CRLF = b"\r\n"


def lines(*items: bytes) -> bytes:
    return CRLF.join(items)


def header_of(message: bytes, part: BodyPart) -> bytes:
    return message[part.header_start : part.body_start]


def body_of(message: bytes, part: BodyPart) -> bytes:
    return message[part.body_start : part.body_end]


ATTACHMENT = base64.encodebytes(bytes(range(256)) * 2).replace(b"\n", CRLF)

MIXED_ALTERNATIVE = (
    lines(
        b"From: Alice Example <alice@example.com>",
        b"To: bob@example.org",
        b"Subject: Quarterly report",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="outer-boundary"',
        b"",
        b"This is a multi-part message in MIME format.",
        b"--outer-boundary",
        b'Content-Type: multipart/alternative; boundary="alt"',
        b"",
        b"--alt",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"Hello Bob,",
        b"the report is attached.",
        b"--alt",
        b"Content-Type: text/html; charset=utf-8",
        b"",
        b"<p>Hello Bob,</p>",
        b"--alt--",
        b"",
        b"--outer-boundary",
        b'Content-Type: application/pdf; name="report.pdf"',
        b'Content-Disposition: attachment; filename="report.pdf"',
        b"Content-Transfer-Encoding: base64",
        b"",
        b"",
    )
    + ATTACHMENT
    + lines(b"--outer-boundary--", b"epilogue", b"")
)


def test_multipart_alternative_inside_mixed_has_exact_offsets() -> None:
    msg = MIXED_ALTERNATIVE
    structure = parse_structure(msg)
    root = structure.root
    assert structure.size == len(msg)
    assert (root.header_start, root.body_end) == (0, len(msg))
    assert header_of(msg, root).startswith(b"From: Alice") and header_of(msg, root).endswith(b'"\r\n\r\n')
    assert body_of(msg, root).startswith(b"This is a multi-part") and body_of(msg, root).endswith(
        b"epilogue\r\n"
    )
    assert (root.media_type, root.media_subtype) == ("multipart", "mixed")
    assert root.params == (("boundary", "outer-boundary"),)
    alternative, attachment = root.children
    assert header_of(msg, alternative) == b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    assert body_of(msg, alternative) == lines(
        b"--alt",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"Hello Bob,",
        b"the report is attached.",
        b"--alt",
        b"Content-Type: text/html; charset=utf-8",
        b"",
        b"<p>Hello Bob,</p>",
        b"--alt--",
        b"",
    )
    plain, html = alternative.children
    assert header_of(msg, plain) == lines(
        b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: quoted-printable", b"", b""
    )
    assert body_of(msg, plain) == b"Hello Bob,\r\nthe report is attached."
    assert (plain.body_lines, plain.encoding, plain.params) == (
        2,
        "QUOTED-PRINTABLE",
        (("charset", "utf-8"),),
    )
    assert header_of(msg, html) == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert body_of(msg, html) == b"<p>Hello Bob,</p>"
    assert (html.body_lines, html.encoding) == (1, "7BIT")
    # RFC 2046 §5.1.1: the CRLF ending the last base64 line belongs to the delimiter that follows.
    assert body_of(msg, attachment) == ATTACHMENT.removesuffix(CRLF)
    assert attachment.body_lines == ATTACHMENT.count(b"\n")
    assert (attachment.media_type, attachment.media_subtype, attachment.encoding) == (
        "application",
        "pdf",
        "BASE64",
    )
    assert attachment.disposition == "attachment"
    assert attachment.disposition_params == (("filename", "report.pdf"),)
    assert structure.envelope.subject == "Quarterly report"


FORWARDED = lines(
    b"From: carol@example.net",
    b"Subject: Fwd: plans",
    b"Content-Type: multipart/mixed; boundary=fwd",
    b"",
    b"--fwd",
    b"",
    b"See below.",
    b"--fwd",
    b"Content-Type: message/rfc822",
    b"Content-Description: forwarded message",
    b"",
    b"From: dave@example.org",
    b"To: carol@example.net",
    b"Subject: plans",
    b"Content-Type: multipart/alternative; boundary=inner",
    b"",
    b"--inner",
    b"Content-Type: text/plain",
    b"",
    b"plan A",
    b"--inner",
    b"Content-Type: text/html",
    b"",
    b"<b>plan A</b>",
    b"--inner--",
    b"--fwd--",
    b"",
)


def test_forwarded_message_is_parsed_with_its_own_envelope_and_parts() -> None:
    msg = FORWARDED
    root = parse_structure(msg).root
    note, forwarded = root.children
    assert header_of(msg, note) == CRLF
    assert body_of(msg, note) == b"See below."
    assert (note.media_type, note.media_subtype, note.params) == ("text", "plain", (("charset", "us-ascii"),))
    assert (forwarded.media_type, forwarded.media_subtype) == ("message", "rfc822")
    assert forwarded.description == "forwarded message"
    inner = forwarded.message
    assert inner is not None
    assert body_of(msg, forwarded).startswith(b"From: dave@") and body_of(msg, forwarded).endswith(
        b"--inner--"
    )
    assert forwarded.body_lines == body_of(msg, forwarded).count(b"\n") + 1
    assert inner.size == forwarded.body_size
    assert inner.root.header_start == forwarded.body_start and inner.root.body_end == forwarded.body_end
    assert inner.envelope.subject == "plans"
    assert inner.envelope.from_[0].mailbox == "dave"
    plain, html = inner.root.children
    assert (body_of(msg, plain), body_of(msg, html)) == (b"plan A", b"<b>plan A</b>")
    assert header_of(msg, html) == b"Content-Type: text/html\r\n\r\n"


DIGEST = lines(
    b"Subject: list digest",
    b"Content-Type: multipart/digest; boundary=d",
    b"",
    b"--d",
    b"",
    b"Subject: first",
    b"",
    b"one",
    b"--d",
    b"Content-Type: text/plain",
    b"",
    b"not a message",
    b"--d--",
)


def test_digest_parts_default_to_message_rfc822() -> None:
    msg = DIGEST
    first, second = parse_structure(msg).root.children
    assert (first.media_type, first.media_subtype, first.params) == ("message", "rfc822", ())
    assert first.message is not None and first.message.envelope.subject == "first"
    assert body_of(msg, first.message.root) == b"one"
    assert header_of(msg, first.message.root) == b"Subject: first\r\n\r\n"
    assert (second.media_type, second.media_subtype, second.message) == ("text", "plain", None)
    assert body_of(msg, second) == b"not a message"


def test_single_part_message_defaults_to_text_plain_us_ascii_7bit() -> None:
    msg = b"Subject: hi\r\n\r\nline one\r\nline two\r\n"
    root = parse_structure(msg).root
    assert (root.media_type, root.media_subtype, root.params, root.encoding) == (
        "text",
        "plain",
        (("charset", "us-ascii"),),
        "7BIT",
    )
    assert header_of(msg, root) == b"Subject: hi\r\n\r\n"
    assert body_of(msg, root) == b"line one\r\nline two\r\n"
    assert root.body_lines == 2
    assert root.children == ()


def test_bare_lf_line_ends_are_accepted() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello\n--b--\n"
    (part,) = parse_structure(msg).root.children
    assert header_of(msg, part) == b"Content-Type: text/plain\n\n"
    assert body_of(msg, part) == b"hello"
    assert part.body_lines == 1


@pytest.mark.parametrize(
    ("message", "header", "body"),
    [
        (b"", b"", b""),
        (b"\r\n", b"\r\n", b""),
        (b"\r\nbody only", b"\r\n", b"body only"),
        (b"Subject: no blank line", b"Subject: no blank line", b""),
        (b"Subject: x\r\nFrom: y\r\n", b"Subject: x\r\nFrom: y\r\n", b""),
        (b"\xff\xfe junk\r\n\r\n\x80body", b"\xff\xfe junk\r\n\r\n", b"\x80body"),
    ],
)
def test_degenerate_messages_split_into_header_and_body(message: bytes, header: bytes, body: bytes) -> None:
    root = parse_structure(message).root
    assert (header_of(message, root), body_of(message, root)) == (header, body)


def test_missing_close_delimiter_ends_the_last_part_at_the_end_of_data() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n--b\r\n\r\nsecond\r\n"
    first, second = parse_structure(msg).root.children
    assert (body_of(msg, first), body_of(msg, second)) == (b"first", b"second\r\n")


def test_boundary_never_found_gives_one_placeholder_text_part_spanning_the_body() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=nowhere\r\n\r\njust text\r\n"
    root = parse_structure(msg).root
    (child,) = root.children
    assert (child.media_type, child.media_subtype) == ("text", "plain")
    assert (child.header_start, child.body_start, child.body_end) == (root.body_start,) * 2 + (root.body_end,)
    assert child.body_lines == 1


def test_multipart_without_boundary_parameter_is_not_split() -> None:
    msg = b"Content-Type: multipart/mixed\r\n\r\n--\r\nx\r\n"
    (child,) = parse_structure(msg).root.children
    assert body_of(msg, child) == b"--\r\nx\r\n"


def test_outer_delimiter_closes_an_inner_multipart_missing_its_close_delimiter() -> None:
    msg = lines(
        b"Content-Type: multipart/mixed; boundary=outer",
        b"",
        b"--outer",
        b"Content-Type: multipart/alternative; boundary=inner",
        b"",
        b"--inner",
        b"",
        b"unterminated",
        b"--outer",
        b"",
        b"last",
        b"--outer--",
    )
    alternative, last = parse_structure(msg).root.children
    (inner,) = alternative.children
    assert body_of(msg, inner) == b"unterminated"
    assert body_of(msg, alternative) == b"--inner\r\n\r\nunterminated"
    assert body_of(msg, last) == b"last"


def test_delimiter_with_trailing_transport_padding_is_recognised() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b \t\r\n\r\nx\r\n--b-- \r\n"
    (part,) = parse_structure(msg).root.children
    assert header_of(msg, part) == CRLF and body_of(msg, part) == b"x"


def test_line_merely_containing_the_boundary_is_body_text() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nsee --b here\r\n -b\r\n--b--\r\n"
    (part,) = parse_structure(msg).root.children
    assert body_of(msg, part) == b"see --b here\r\n -b"


def test_longest_matching_boundary_wins_when_one_is_a_prefix_of_another() -> None:
    msg = lines(
        b"Content-Type: multipart/mixed; boundary=ab",
        b"",
        b"--ab",
        b"Content-Type: multipart/mixed; boundary=abc",
        b"",
        b"--abc",
        b"",
        b"inner",
        b"--abc--",
        b"--ab--",
    )
    (mixed,) = parse_structure(msg).root.children
    (inner,) = mixed.children
    assert body_of(msg, inner) == b"inner"


def test_part_header_cut_short_by_a_delimiter_gives_an_empty_part() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n--b--\r\n"
    (part,) = parse_structure(msg).root.children
    assert header_of(msg, part) == b"Content-Type: text/html"
    assert (part.body_size, part.body_lines, part.media_subtype) == (0, 0, "html")


def test_empty_body_part_keeps_the_blank_line_in_its_header() -> None:
    msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b--\r\n"
    (part,) = parse_structure(msg).root.children
    assert header_of(msg, part) == b"Content-Type: text/plain\r\n\r\n"
    assert (part.body_start, part.body_end, part.body_lines) == (part.body_start, part.body_start, 0)


def test_nesting_deeper_than_the_cap_becomes_opaque_leaves() -> None:
    msg = b"Content-Type: message/rfc822\r\n\r\n" * 5 + b"body"
    parser = StructureParser(max_depth=3)
    parser.feed(msg)
    part = parser.close().root
    depth = 0
    while part.message is not None:
        part = part.message.root
        depth += 1
    assert depth == 3
    assert (part.media_type, part.media_subtype) == ("message", "rfc822")
    assert body_of(msg, part) == b"Content-Type: message/rfc822\r\n\r\nbody"


def test_header_block_longer_than_the_cap_ends_at_a_line_end_within_the_cap() -> None:
    msg = b"A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody"
    parser = StructureParser(header_cap=14)
    parser.feed(msg)
    root = parser.close().root
    assert header_of(msg, root) == b"A: 1\r\nB: 2\r\n"
    assert body_of(msg, root) == b"C: 3\r\n\r\nbody"


def test_content_headers_are_reported_for_bodystructure() -> None:
    msg = lines(
        b'Content-Type: Text/Plain; Charset="ISO-8859-1"; format=flowed (comment)',
        b"Content-Transfer-Encoding: Quoted-Printable",
        b"Content-ID: <part1@example.com>",
        b"Content-Description: greeting",
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        b"Content-Disposition: inline; filename*=utf-8''gr%C3%BC%C3%9Fe.txt",
        b"Content-Language: en, de",
        b"Content-Location: http://example.com/a",
        b"",
        b"hi",
    )
    root = parse_structure(msg).root
    assert root.params == (("charset", "ISO-8859-1"), ("format", "flowed"))
    assert (root.encoding, root.content_id, root.description) == (
        "QUOTED-PRINTABLE",
        "<part1@example.com>",
        "greeting",
    )
    assert root.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert (root.disposition, root.disposition_params) == ("inline", (("filename", "grüße.txt"),))
    assert (root.language, root.location) == (("en", "de"), "http://example.com/a")


def test_message_global_is_parsed_as_an_encapsulated_message() -> None:
    msg = b"Content-Type: message/global\r\n\r\nSubject: \xc3\xa9t\xc3\xa9\r\n\r\nbody"
    inner = parse_structure(msg).root.message
    assert inner is not None and inner.envelope.subject == "été"
    assert body_of(msg, inner.root) == b"body"


def test_base64_encoded_message_rfc822_is_an_opaque_leaf() -> None:
    msg = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5\r\n"
    root = parse_structure(msg).root
    assert (root.media_type, root.media_subtype, root.encoding, root.message) == (
        "message",
        "rfc822",
        "BASE64",
        None,
    )
    assert body_of(msg, root) == b"U3ViamVjdDogeA0KDQp5\r\n"


def test_a_delimiter_split_across_chunks_is_found() -> None:
    msg = MIXED_ALTERNATIVE
    cut = msg.index(b"--alt--") + 3
    parser = StructureParser()
    parser.feed(msg[:cut])
    parser.feed(msg[cut:])
    assert parser.close() == parse_structure(msg)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000])
def test_fixed_chunk_sizes_give_the_same_structure(size: int) -> None:
    for msg in (MIXED_ALTERNATIVE, FORWARDED, DIGEST):
        parser = StructureParser()
        for start in range(0, len(msg), size):
            parser.feed(msg[start : start + size])
        assert parser.close() == parse_structure(msg)


def test_large_message_is_parsed_with_bounded_memory() -> None:
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
    chunk = line * 1000
    repeats = 50 * 1024 * 1024 // len(chunk)
    parser = StructureParser()
    parser.feed(b"Content-Type: multipart/mixed; boundary=big\r\n\r\n--big\r\n")
    parser.feed(b"Content-Transfer-Encoding: base64\r\n\r\n")
    peak = 0
    for _ in range(repeats):
        parser.feed(chunk)
        peak = max(peak, parser.buffered_size)
    parser.feed(b"--big--\r\n")
    structure = parser.close()
    (part,) = structure.root.children
    assert part.body_size == len(chunk) * repeats - 2
    assert part.body_lines == 1000 * repeats
    assert peak <= len(chunk) + 1024


def test_buffer_stays_small_for_a_body_without_line_ends() -> None:
    parser = StructureParser()
    parser.feed(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n")
    for _ in range(100):
        parser.feed(b"x" * 65536)
        assert parser.buffered_size <= 65536 + 16
    parser.feed(b"\r\n--b--")
    (part,) = parser.close().root.children
    assert (part.body_size, part.body_lines) == (6553600, 1)


def test_feed_after_close_is_refused() -> None:
    parser = StructureParser()
    parser.close()
    with pytest.raises(ValueError, match="after close"):
        parser.feed(b"x")
