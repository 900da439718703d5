"""BODY[section] and BINARY[part] planning over a nested message, compared with RFC 9051 §6.4.5 answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.mail.structure import parse_structure
from kittiwake.proto.imap.fetch_items import Partial, Section, SectionText
from kittiwake.proto.imap.section_ranges import (
    BinaryAssembler,
    BinaryError,
    BinaryPlan,
    HeaderFilter,
    SectionPlan,
    apply_partial,
    filter_header_fields,
    find_part,
    plan_binary,
    plan_section,
    render_section,
    rewrite_binary_header,
)

TOP_HEADER = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?= report\r\n"
    b"X-Folded: first\r\n"
    b"\tsecond\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
)
PART_1_MIME = (
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
)
PART_1 = b"Caf=C3=A9 body=\r\n continued"
PART_2_MIME = b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
PART_2 = (
    b"--inner\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
    b"--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--"
)
PART_3_MIME = b"Content-Type: message/rfc822\r\n\r\n"
PART_3_HEADER = (
    b"From: Carol <carol@example.com>\r\n"
    b"Subject: inner message\r\n"
    b'Content-Type: multipart/mixed; boundary="enc"\r\n'
    b"\r\n"
)
PART_3_2_MIME = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
PART_3_TEXT = (
    b"--enc\r\nContent-Type: text/plain\r\n\r\nenclosed text\r\n--enc\r\n"
    + PART_3_2_MIME
    + b"AAECAw==\r\n--enc--"
)
PART_4_MIME = b"Content-Type: message/rfc822\r\n\r\n"
PART_4_HEADER = b"Subject: simple\r\n\r\n"
PART_5_MIME = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
BODY = (
    b"preamble\r\n"
    b"--outer\r\n" + PART_1_MIME + PART_1 + b"\r\n"
    b"--outer\r\n" + PART_2_MIME + PART_2 + b"\r\n"
    b"--outer\r\n" + PART_3_MIME + PART_3_HEADER + PART_3_TEXT + b"\r\n"
    b"--outer\r\n" + PART_4_MIME + PART_4_HEADER + b"simple body\r\n"
    b"--outer\r\n" + PART_5_MIME + b"begin 644 x\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)
MESSAGE = TOP_HEADER + BODY
STRUCTURE = parse_structure(MESSAGE)


def _section(part: tuple[int, ...] = (), text: SectionText | None = None, *fields: str) -> Section:
    return Section(part=part, text=text, header_fields=fields)


def _read(section: Section, message: bytes = MESSAGE) -> bytes:
    plan = plan_section(parse_structure(message) if message is not MESSAGE else STRUCTURE, section)
    return render_section(plan, message[plan.start : plan.end])


H, T, M = SectionText.HEADER, SectionText.TEXT, SectionText.MIME
FIELDS, FIELDS_NOT = SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (_section(), MESSAGE),
        (_section((), H), TOP_HEADER),
        (_section((), T), BODY),
        (_section((1,)), PART_1),
        (_section((1,), M), PART_1_MIME),
        (_section((2,)), PART_2),
        (_section((2,), M), PART_2_MIME),
        (_section((2, 1)), b"plain text"),
        (_section((2, 2)), b"<p>html</p>"),
        (_section((2, 2), M), b"Content-Type: text/html\r\n\r\n"),
        (_section((3,)), PART_3_HEADER + PART_3_TEXT),
        (_section((3,), M), PART_3_MIME),
        (_section((3,), H), PART_3_HEADER),
        (_section((3,), T), PART_3_TEXT),
        (_section((3, 1)), b"enclosed text"),
        (_section((3, 2)), b"AAECAw=="),
        (_section((3, 2), M), PART_3_2_MIME),
        (_section((4,)), PART_4_HEADER + b"simple body"),
        (_section((4,), H), PART_4_HEADER),
        (_section((4,), T), b"simple body"),
        (_section((4, 1)), b"simple body"),
        (_section((4, 1), M), PART_4_HEADER),
        (_section((5,)), b"begin 644 x"),
        (_section((5,), M), PART_5_MIME),
    ],
    ids=lambda value: repr(value)[:60],
)
def test_section_reads_the_bytes_rfc9051_names(section: Section, expected: bytes) -> None:
    plan = plan_section(STRUCTURE, section)
    assert plan.exists
    assert plan.header_filter is None
    assert MESSAGE[plan.start : plan.end] == expected


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            _section((), FIELDS, "FROM", "X-FOLDED"),
            b"From: Alice <alice@example.com>\r\nX-Folded: first\r\n\tsecond\r\n\r\n",
        ),
        (_section((), FIELDS, "subject"), b"Subject: =?utf-8?q?Caf=C3=A9?= report\r\n\r\n"),
        (_section((), FIELDS, "X-ABSENT"), b"\r\n"),
        (
            _section((), FIELDS_NOT, "FROM", "TO", "SUBJECT", "MIME-VERSION"),
            b'X-Folded: first\r\n\tsecond\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n',
        ),
        (_section((3,), FIELDS, "SUBJECT"), b"Subject: inner message\r\n\r\n"),
        (_section((3,), FIELDS_NOT, "FROM", "CONTENT-TYPE"), b"Subject: inner message\r\n\r\n"),
        (_section((4,), FIELDS, "SUBJECT"), PART_4_HEADER),
    ],
)
def test_header_fields_section_filters_the_header_block(section: Section, expected: bytes) -> None:
    plan = plan_section(STRUCTURE, section)
    assert plan.header_filter == HeaderFilter(
        names=section.header_fields, negate=section.text is SectionText.HEADER_FIELDS_NOT
    )
    assert _read(section) == expected


@pytest.mark.parametrize(
    "section",
    [
        _section((6,)),
        _section((2, 3)),
        _section((3, 3)),
        _section((4, 2)),
        _section((1, 1)),
        _section((5, 1)),
        _section((2, 1, 1)),
        _section((6,), M),
        _section((1,), H),
        _section((1,), T),
        _section((2,), H),
        _section((2, 1), T),
        _section((5,), FIELDS, "FROM"),
    ],
    ids=repr,
)
def test_section_naming_no_part_is_empty(section: Section) -> None:
    plan = plan_section(STRUCTURE, section)
    assert not plan.exists
    assert plan.length == 0
    assert _read(section) == b""


SINGLE_HEADER = b"From: a@example.com\r\nSubject: one part\r\n\r\n"
SINGLE = SINGLE_HEADER + b"just text\r\n"


@pytest.mark.parametrize(
    ("section", "expected", "exists"),
    [
        (_section(), SINGLE, True),
        (_section((), H), SINGLE_HEADER, True),
        (_section((), T), b"just text\r\n", True),
        (_section((1,)), b"just text\r\n", True),
        (_section((1,), M), SINGLE_HEADER, True),
        (_section((1,), T), b"", False),
        (_section((2,)), b"", False),
        (_section((1, 1)), b"", False),
    ],
    ids=repr,
)
def test_non_multipart_message_has_only_part_one(section: Section, expected: bytes, exists: bool) -> None:
    assert plan_section(parse_structure(SINGLE), section).exists is exists
    assert _read(section, SINGLE) == expected


def test_message_rfc822_top_level_numbers_the_enclosed_parts_under_one() -> None:
    enclosed = (
        b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n--b--\r\n"
    )
    message = b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\n" + enclosed
    assert _read(_section((1,)), message) == enclosed
    assert (
        _read(_section((1,), H), message)
        == b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    )
    assert _read(_section((1, 1)), message) == b"first"


def test_message_without_blank_line_has_header_fields_without_it() -> None:
    message = b"Subject: no body\r\nFrom: a@example.com\r\n"
    assert _read(_section((), H), message) == message
    assert _read(_section((), FIELDS, "SUBJECT"), message) == b"Subject: no body\r\n"


def test_find_part_returns_the_part_that_numbers_name() -> None:
    part = find_part(STRUCTURE, (3, 2))
    assert part is not None
    assert (part.media_type, part.media_subtype) == ("application", "octet-stream")
    assert find_part(STRUCTURE, ()) is STRUCTURE.root
    assert find_part(STRUCTURE, (0,)) is None


@pytest.mark.parametrize(
    ("names", "negate", "expected"),
    [
        (("subject",), False, b"Subject: a\r\n b\r\n\r\n"),
        (("SUBJECT", "x-b"), False, b"Subject: a\r\n b\r\nX-B: 2\r\n\r\n"),
        (("x-a",), False, b"x-a : 1\r\n\r\n"),
        (("x-a", "subject"), True, b"X-B: 2\r\nno colon here\r\n\r\n"),
        (("subj",), False, b"\r\n"),
        ((), True, b"x-a : 1\r\nSubject: a\r\n b\r\nX-B: 2\r\nno colon here\r\n\r\n"),
    ],
)
def test_filter_header_fields_keeps_folded_fields_by_name_ignoring_case(
    names: tuple[str, ...], negate: bool, expected: bytes
) -> None:
    block = b"x-a : 1\r\nSubject: a\r\n b\r\nX-B: 2\r\nno colon here\r\n\r\n"
    assert filter_header_fields(block, names, negate=negate) == expected


def test_filter_header_fields_ends_a_cut_block_with_crlf() -> None:
    assert filter_header_fields(b"Subject: a\r\nTo: b", ("to",)) == b"To: b\r\n"


@given(st.binary(max_size=300), st.lists(st.sampled_from(["subject", "to", "x"]), max_size=3), st.booleans())
def test_filter_header_fields_never_raises_and_ends_with_a_line_end(
    block: bytes, names: list[str], negate: bool
) -> None:
    result = filter_header_fields(block, names, negate=negate)
    assert result == b"" or result.endswith(b"\n")


@pytest.mark.parametrize(
    ("length", "partial", "expected"),
    [
        (100, None, (0, 100)),
        (100, Partial(offset=0, length=10), (0, 10)),
        (100, Partial(offset=95, length=10), (95, 5)),
        (100, Partial(offset=100, length=10), (100, 0)),
        (100, Partial(offset=500, length=10), (100, 0)),
        (0, Partial(offset=0, length=1), (0, 0)),
    ],
)
def test_apply_partial_cuts_at_the_end_of_the_section(
    length: int, partial: Partial | None, expected: tuple[int, int]
) -> None:
    assert apply_partial(length, partial) == expected


def test_section_plan_length_is_its_byte_count() -> None:
    assert SectionPlan(start=5, end=12).length == 7


def _binary(part: tuple[int, ...], message: bytes = MESSAGE, chunk: int = 0) -> bytes:
    """BINARY[part] assembled from the stored bytes, fed whole or `chunk` bytes at a time."""
    plan = plan_binary(STRUCTURE if message is MESSAGE else parse_structure(message), part)
    assert isinstance(plan, BinaryPlan)
    data = message[plan.start : plan.end]
    assembler = BinaryAssembler(plan)
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    return b"".join(assembler.feed(piece) for piece in pieces) + assembler.flush()


def test_binary_of_a_part_in_an_unknown_encoding_is_refused() -> None:
    # RFC 3516 §4.3: NO [UNKNOWN-CTE] when the server cannot decode the section.
    assert plan_binary(STRUCTURE, (5,)) is BinaryError.UNKNOWN_CTE


def test_binary_of_a_section_holding_a_part_in_an_unknown_encoding_is_refused() -> None:
    # BINARY[] holds part 5 (x-uuencode), which cannot be decoded; Dovecot refuses it the same way.
    assert plan_binary(STRUCTURE, ()) is BinaryError.UNKNOWN_CTE


@pytest.mark.parametrize(
    ("part", "decoded"),
    [
        ((1,), "Café body continued".encode()),
        ((2, 1), b"plain text"),
        ((3, 2), b"\x00\x01\x02\x03"),
        ((4, 1), b"simple body"),
    ],
)
def test_binary_of_a_leaf_is_its_decoded_body(part: tuple[int, ...], decoded: bytes) -> None:
    assert _binary(part) == decoded


def test_binary_of_a_multipart_with_nothing_encoded_is_its_body_as_stored() -> None:
    assert _binary((2,)) == PART_2


def test_binary_of_a_message_rfc822_part_is_the_message_with_its_parts_decoded() -> None:
    # The encapsulated message, header included; its base64 part decoded, that part's header saying binary.
    expected = (
        PART_3_HEADER
        + b"--enc\r\nContent-Type: text/plain\r\n\r\nenclosed text\r\n--enc\r\n"
        + b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + b"\x00\x01\x02\x03\r\n--enc--"
    )
    assert _binary((3,)) == expected


def test_binary_of_a_message_rfc822_part_with_a_single_part_message_is_that_message() -> None:
    assert _binary((4,)) == PART_4_HEADER + b"simple body"


SINGLE_BASE64 = (
    b"From: a@example.com\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"\r\n"
    b"AAEC\r\nAw==\r\n"
)


def test_binary_of_the_whole_message_decodes_it_and_says_so_in_its_header() -> None:
    assert _binary((), SINGLE_BASE64) == (
        b"From: a@example.com\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"\x00\x01\x02\x03"
    )


def test_binary_of_the_whole_message_with_nothing_encoded_is_body_of_the_whole_message() -> None:
    message = (
        MESSAGE.replace(PART_1_MIME, b"Content-Type: text/plain; charset=utf-8\r\n\r\n")
        .replace(PART_3_2_MIME, b"Content-Type: application/octet-stream\r\n\r\n")
        .replace(PART_5_MIME, b"Content-Type: application/pdf\r\n\r\n")
    )
    assert _binary((), message) == message


NESTED = (
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9=\r\n!\r\n"
    b"--b\r\n"
    b"Content-Transfer-Encoding: BASE64\r\n"
    b"X-Other: kept\r\n"
    b"Content-Transfer-Encoding:\r\n base64\r\n"
    b"\r\n"
    b"AAECAw==\r\n"
    b"--b--\r\n"
    b"epilogue\r\n"
)


@given(st.integers(min_value=1, max_value=40))
def test_binary_content_does_not_depend_on_how_the_stored_bytes_are_split(chunk: int) -> None:
    assert _binary((), NESTED, chunk) == _binary((), NESTED)


def test_binary_of_a_multipart_decodes_each_part_and_keeps_the_rest_as_stored() -> None:
    assert _binary((), NESTED) == (
        b'Content-Type: multipart/mixed; boundary="b"\r\n'
        b"\r\n"
        b"preamble\r\n"
        b"--b\r\n"
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"caf\xc3\xa9!\r\n"
        b"--b\r\n"
        b"X-Other: kept\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"\x00\x01\x02\x03\r\n"
        b"--b--\r\n"
        b"epilogue\r\n"
    )


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n",
        ),
        (
            b"content-transfer-encoding:\r\n\tbase64\r\nX-A: 1\r\n\r\n",
            b"X-A: 1\r\nContent-Transfer-Encoding: binary\r\n\r\n",
        ),
        (b"Content-Transfer-Encoding: base64\r\n\r\n", b"Content-Transfer-Encoding: binary\r\n\r\n"),
        (b"X-A: 1\n\n", b"X-A: 1\nContent-Transfer-Encoding: binary\r\n\r\n"),
        (b"X-A: 1\r\nContent-Transfer-Encoding: base64", b"X-A: 1\r\nContent-Transfer-Encoding: binary\r\n"),
    ],
)
def test_rewrite_binary_header_replaces_the_encoding_field_before_the_blank_line(
    block: bytes, expected: bytes
) -> None:
    assert rewrite_binary_header(block) == expected


def test_binary_of_a_missing_part_is_empty() -> None:
    plan = plan_binary(STRUCTURE, (9,))
    assert isinstance(plan, BinaryPlan)
    assert not plan.exists
    assert plan.segments == ()
