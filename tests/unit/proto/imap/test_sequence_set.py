"""Sequence sets: parsing, resolution against UIDs and message numbers, compact rendering."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.proto.imap.sequence_set import STAR, InvalidSequenceSet, SequenceSet, format_uid_set


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        (b"1", ((1, 1),)),
        (b"1:5,7,9:*", ((1, 5), (7, 7), (9, STAR))),
        (b"*", ((STAR, STAR),)),
        (b"*:4", ((STAR, 4),)),
        (b"5:2", ((5, 2),)),
        (b"4294967295", ((4294967295, 4294967295),)),
    ],
)
def test_parse_keeps_ranges_as_sent(text: bytes, ranges: tuple[tuple[int, int], ...]) -> None:
    assert SequenceSet.parse(text).ranges == ranges


def test_dollar_is_the_saved_result() -> None:
    assert SequenceSet.parse(b"$") == SequenceSet(saved=True)


@pytest.mark.parametrize(
    "text", [b"", b"0", b"1:0", b"01", b"1,", b",1", b"1::2", b"a", b"1 2", b"$,1", b"4294967296", b"-1"]
)
def test_invalid_sequence_set_is_rejected(text: bytes) -> None:
    with pytest.raises(InvalidSequenceSet):
        SequenceSet.parse(text)


UIDS = [3, 5, 8, 9, 10, 20]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"1:*", UIDS),
        (b"*", [20]),
        (b"8:9", [8, 9]),
        (b"9:8", [8, 9]),
        (b"4", []),
        (b"21:*", [20]),  # RFC 9051 §6.4.9: n:* includes the highest UID even when n is above it
        (b"10,3,5:8,9", [3, 5, 8, 9, 10]),
        (b"1:4,4:6", [3, 5]),
        (b"100:200", []),
    ],
)
def test_resolve_uids_returns_existing_uids_ascending(text: bytes, expected: list[int]) -> None:
    assert SequenceSet.parse(text).resolve_uids(UIDS) == expected


def test_resolve_uids_on_empty_mailbox_is_empty() -> None:
    assert SequenceSet.parse(b"1:*").resolve_uids([]) == []


def test_resolve_message_numbers_returns_merged_ranges() -> None:
    assert SequenceSet.parse(b"1:3,2:5,8,*").resolve_message_numbers(10) == [
        range(1, 6),
        range(8, 9),
        range(10, 11),
    ]


@pytest.mark.parametrize(("text", "count"), [(b"11", 10), (b"1:*", 0), (b"*", 0), (b"5:20", 10)])
def test_message_number_beyond_mailbox_is_invalid(text: bytes, count: int) -> None:
    with pytest.raises(InvalidSequenceSet):
        SequenceSet.parse(text).resolve_message_numbers(count)


def test_saved_set_must_be_substituted_before_resolving() -> None:
    with pytest.raises(InvalidSequenceSet):
        SequenceSet(saved=True).resolve_uids(UIDS)


def test_resolving_all_of_100000_messages_is_fast() -> None:
    uids = list(range(1, 200001, 2))
    started = time.perf_counter()
    for _ in range(100):
        assert len(SequenceSet.parse(b"1:*").resolve_uids(uids)) == 100000
        assert SequenceSet.parse(b"1:*").resolve_message_numbers(100000) == [range(1, 100001)]
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([], ""),
        ([1], "1"),
        ([1, 2, 3, 4, 5, 7], "1:5,7"),
        ([7, 1, 2], "7,1:2"),
        ([10, 11, 13, 14, 15], "10:11,13:15"),
    ],
)
def test_format_uid_set_is_compact(uids: list[int], text: str) -> None:
    assert format_uid_set(uids) == text


def test_str_renders_the_wire_form() -> None:
    assert str(SequenceSet.parse(b"1:5,7,9:*,*")) == "1:5,7,9:*,*"
    assert str(SequenceSet(saved=True)) == "$"


@given(
    st.sets(st.integers(min_value=1, max_value=500), max_size=60), st.sets(st.integers(1, 500), max_size=60)
)
def test_set_of_numbers_resolves_to_their_intersection_with_the_mailbox(
    wanted: set[int], present: set[int]
) -> None:
    uids = sorted(present)
    if not wanted:
        return
    assert SequenceSet.of(wanted).resolve_uids(uids) == sorted(wanted & present)
    assert SequenceSet.parse(str(SequenceSet.of(wanted)).encode()) == SequenceSet.of(wanted)


@given(st.binary(max_size=40))
def test_arbitrary_bytes_parse_or_raise_invalid_sequence_set(data: bytes) -> None:
    with contextlib.suppress(InvalidSequenceSet):
        SequenceSet.parse(data)
