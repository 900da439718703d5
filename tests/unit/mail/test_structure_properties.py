"""Property tests: the structure parser never raises, its offsets nest, and chunking never changes the result."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.mail.structure import BodyPart, MessageStructure, StructureParser, parse_structure

MIME_PIECES = [
    b"--a\r\n", b"--a--\r\n", b"--a", b"--b\n", b"--b--", b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"-", b"--",
    b"Content-Type: multipart/mixed; boundary=a\r\n", b"Content-Type: multipart/digest; boundary=b\n",
    b"Content-Type: message/rfc822\r\n", b"Content-Type: multipart/alternative; boundary=\"a\"\n",
    b"Subject: s\r\n", b" folded\r\n", b"hello world", b"\xff\xfe\x00", b"From: <a@b>\r\n",
]  # fmt: skip

mime_like = st.lists(st.sampled_from(MIME_PIECES), max_size=40).map(b"".join)
messages = st.one_of(st.binary(max_size=400), mime_like)


def feed_in_chunks(data: bytes, cuts: list[int], **options: int) -> MessageStructure:
    parser = StructureParser(**options)
    previous = 0
    for cut in sorted(cut % (len(data) + 1) for cut in cuts):
        parser.feed(data[previous:cut])
        previous = cut
    parser.feed(data[previous:])
    return parser.close()


def assert_nested(part: BodyPart, low: int, high: int) -> None:
    assert low <= part.header_start <= part.body_start <= part.body_end <= high
    assert part.body_lines <= part.body_size
    position = part.body_start
    for child in part.children:
        assert child.header_start >= position
        assert_nested(child, part.body_start, part.body_end)
        position = child.body_end
    if part.message is not None:
        root = part.message.root
        assert root.header_start == part.body_start
        assert part.message.size == root.body_end - root.header_start
        assert_nested(root, part.body_start, part.body_end)
    if part.is_multipart:
        assert part.children


@settings(max_examples=400)
@given(messages)
def test_offsets_are_within_the_message_and_ordered(data: bytes) -> None:
    structure = parse_structure(data)
    assert structure.size == len(data)
    assert (structure.root.header_start, structure.root.body_end) == (0, len(data))
    assert_nested(structure.root, 0, len(data))


@settings(max_examples=400)
@given(messages, st.lists(st.integers(min_value=0, max_value=500), max_size=12))
def test_any_chunking_gives_the_same_structure_as_one_feed(data: bytes, cuts: list[int]) -> None:
    assert feed_in_chunks(data, cuts) == parse_structure(data)


@settings(max_examples=200)
@given(
    mime_like,
    st.lists(st.integers(min_value=0, max_value=500), max_size=12),
    st.integers(1, 40),
    st.integers(0, 4),
)
def test_chunking_is_irrelevant_with_small_header_and_depth_caps(
    data: bytes, cuts: list[int], cap: int, depth: int
) -> None:
    whole = feed_in_chunks(data, [], header_cap=cap, max_depth=depth)
    assert feed_in_chunks(data, cuts, header_cap=cap, max_depth=depth) == whole
    assert_nested(whole.root, 0, len(data))


@settings(max_examples=200)
@given(mime_like)
def test_single_byte_feeding_gives_the_same_structure(data: bytes) -> None:
    parser = StructureParser()
    for index in range(len(data)):
        parser.feed(data[index : index + 1])
    assert parser.close() == parse_structure(data)
