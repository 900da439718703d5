"""IMAP framing: lines, literals ({n}, {n+}, ~{n}), limits and resynchronisation, IDLE, APPEND streaming."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.proto.imap.receiver import (
    CommandTooLong,
    ContinuationNeeded,
    IdleDone,
    ImapReceiver,
    Literal,
    LiteralChunk,
    LiteralEnd,
    LiteralStart,
    LiteralTooLarge,
    RawCommand,
    ReceiverEvent,
    StreamedLiteral,
)


def feed(receiver: ImapReceiver, *chunks: bytes) -> list[ReceiverEvent]:
    events: list[ReceiverEvent] = []
    for chunk in chunks:
        receiver.receive_data(chunk)
        events.extend(receiver.events())
    return events


def commands(events: list[ReceiverEvent]) -> list[RawCommand]:
    return [event for event in events if isinstance(event, RawCommand)]


def test_simple_line_becomes_raw_command_with_upper_cased_name() -> None:
    events = feed(ImapReceiver(), b"a1 noop\r\n")
    assert events == [RawCommand(tag=b"a1", name=b"NOOP", args=(b"",))]


def test_arguments_keep_their_leading_space() -> None:
    events = feed(ImapReceiver(), b"a2 SELECT INBOX\r\n")
    assert events == [RawCommand(tag=b"a2", name=b"SELECT", args=(b" INBOX",))]


def test_bare_lf_is_accepted_as_line_end() -> None:
    events = feed(ImapReceiver(), b"a1 NOOP\nb2 CAPABILITY\n")
    assert [(event.tag, event.name) for event in commands(events)] == [
        (b"a1", b"NOOP"),
        (b"b2", b"CAPABILITY"),
    ]


def test_pipelined_commands_in_one_packet_come_out_in_order() -> None:
    events = feed(ImapReceiver(), b"a NOOP\r\nb NOOP\r\nc LOGOUT\r\n")
    assert [event.tag for event in commands(events)] == [b"a", b"b", b"c"]


def test_blank_lines_between_commands_are_ignored() -> None:
    assert commands(feed(ImapReceiver(), b"\r\n\r\na NOOP\r\n"))[0].tag == b"a"


def test_partial_line_waits_for_more_data() -> None:
    receiver = ImapReceiver()
    assert feed(receiver, b"a1 NO") == []
    assert feed(receiver, b"OP\r") == []
    assert feed(receiver, b"\n") == [RawCommand(tag=b"a1", name=b"NOOP", args=(b"",))]


def test_synchronising_literal_asks_for_continuation_then_joins_the_command() -> None:
    events = feed(ImapReceiver(), b"a LOGIN {4}\r\n", b"fred {6}\r\n", b"secret\r\n")
    assert events == [
        ContinuationNeeded(tag=b"a", size=4),
        ContinuationNeeded(tag=b"a", size=6),
        RawCommand(
            tag=b"a", name=b"LOGIN", args=(b" ", Literal(data=b"fred"), b" ", Literal(data=b"secret"), b"")
        ),
    ]


def test_literal_plus_does_not_send_continuation() -> None:
    events = feed(ImapReceiver(), b"a LOGIN {4+}\r\nfred {6+}\r\nsecret\r\n")
    assert [type(event) for event in events] == [RawCommand]


def test_literal8_marker_is_binary() -> None:
    events = feed(ImapReceiver(), b"a SEARCH TEXT ~{3+}\r\nx\x00y\r\n")
    assert commands(events)[0].args == (b" TEXT ", Literal(data=b"x\x00y", binary=True), b"")


def test_literal_may_contain_crlf_and_braces() -> None:
    data = b"a\r\n{5}\r\nb"
    events = feed(ImapReceiver(), b"a LOGIN {%d+}\r\n" % len(data) + data + b" x\r\n")
    assert commands(events)[0].args == (b" ", Literal(data=data), b" x")


COMMAND = b"t1 LOGIN {5}\r\nhello {3+}\r\nabc\r\nt2 NOOP\r\n"


@pytest.mark.parametrize("split", range(1, len(COMMAND)))
def test_literals_split_across_packets_at_every_position_frame_the_same(split: int) -> None:
    events = feed(ImapReceiver(), COMMAND[:split], COMMAND[split:])
    assert commands(events) == [
        RawCommand(
            tag=b"t1", name=b"LOGIN", args=(b" ", Literal(data=b"hello"), b" ", Literal(data=b"abc"), b"")
        ),
        RawCommand(tag=b"t2", name=b"NOOP", args=(b"",)),
    ]


def test_byte_by_byte_delivery_frames_the_same() -> None:
    receiver = ImapReceiver()
    events = feed(receiver, *(COMMAND[i : i + 1] for i in range(len(COMMAND))))
    assert [event.tag for event in commands(events)] == [b"t1", b"t2"]


def test_synchronising_literal_over_limit_is_refused_before_the_client_sends_it() -> None:
    receiver = ImapReceiver(max_literal=10)
    events = feed(receiver, b"a LOGIN {11}\r\n")
    assert events == [LiteralTooLarge(tag=b"a", size=11, synchronizing=True)]
    # The client abandoned the command, so the next line is a new command.
    assert commands(feed(receiver, b"b NOOP\r\n"))[0].tag == b"b"


def test_non_synchronising_literal_over_limit_is_read_and_dropped() -> None:
    receiver = ImapReceiver(max_literal=10)
    events = feed(receiver, b"a LOGIN {12+}\r\nb NOOP\r\nxyz c NOOP\r\nd NOOP\r\n")
    assert events == [
        LiteralTooLarge(tag=b"a", size=12, synchronizing=False),
        RawCommand(tag=b"d", name=b"NOOP", args=(b"",)),
    ]


def test_dropped_command_follows_further_non_synchronising_literals() -> None:
    receiver = ImapReceiver(max_literal=10)
    events = feed(receiver, b"a X {12+}\r\n0123456789AB {4+}\r\nz NO\r\n\r\nb NOOP\r\n")
    assert [type(event) for event in events] == [LiteralTooLarge, RawCommand]
    assert commands(events)[0].tag == b"b"


def test_literal_minus_accepts_4096_octets_without_literal_plus() -> None:
    receiver = ImapReceiver(literal_plus=False, max_literal=10000)
    events = feed(receiver, b"a LOGIN {4096+}\r\n" + b"x" * 4096 + b" y\r\n")
    assert [type(event) for event in events] == [RawCommand]


def test_literal_minus_refuses_larger_non_synchronising_literal() -> None:
    receiver = ImapReceiver(literal_plus=False, max_literal=10000)
    events = feed(receiver, b"a LOGIN {4097+}\r\n" + b"x" * 4097 + b" y\r\nb NOOP\r\n")
    assert events[0] == LiteralTooLarge(tag=b"a", size=4097, synchronizing=False)
    assert commands(events)[0].tag == b"b"


def test_literal_minus_still_allows_large_synchronising_literal() -> None:
    receiver = ImapReceiver(literal_plus=False, max_literal=10000)
    events = feed(receiver, b"a LOGIN {5000}\r\n", b"x" * 5000 + b" y\r\n")
    assert [type(event) for event in events] == [ContinuationNeeded, RawCommand]


def test_too_long_line_is_reported_with_its_tag_and_the_next_command_is_parsed() -> None:
    receiver = ImapReceiver(max_line=100)
    events = feed(receiver, b"a1 SEARCH " + b"X" * 200 + b"\r\na2 NOOP\r\n")
    assert events == [CommandTooLong(tag=b"a1"), RawCommand(tag=b"a2", name=b"NOOP", args=(b"",))]


def test_too_long_line_is_reported_before_its_end_arrives() -> None:
    receiver = ImapReceiver(max_line=100)
    assert feed(receiver, b"a1 SEARCH " + b"X" * 200) == [CommandTooLong(tag=b"a1")]
    assert feed(receiver, b"Y" * 500) == []
    assert commands(feed(receiver, b"\r\na2 NOOP\r\n"))[0].tag == b"a2"


def test_literal_announced_at_end_of_too_long_line_is_not_taken_as_commands() -> None:
    receiver = ImapReceiver(max_line=100)
    smuggled = b"x LOGOUT\r\n"
    events = feed(receiver, b"a1 SEARCH " + b"X" * 200 + b" {%d+}\r\n" % len(smuggled) + smuggled + b"\r\n")
    events += feed(receiver, b"a2 NOOP\r\n")
    assert [event.tag for event in commands(events)] == [b"a2"]


def test_command_over_max_command_is_too_long() -> None:
    receiver = ImapReceiver(max_line=100, max_literal=100, max_command=150)
    events = feed(receiver, b"a X {90+}\r\n" + b"x" * 90 + b" {90+}\r\n" + b"y" * 90 + b"\r\nb NOOP\r\n")
    assert events[0] == LiteralTooLarge(tag=b"a", size=90, synchronizing=False)
    assert commands(events)[0].tag == b"b"


def test_refused_literal_abandons_the_command() -> None:
    receiver = ImapReceiver()
    receiver.receive_data(b"a LOGIN {5}\r\n")
    events = receiver.events()
    assert next(events) == ContinuationNeeded(tag=b"a", size=5)
    receiver.refuse_literal()
    receiver.receive_data(b"b NOOP\r\n")
    assert list(events) == [RawCommand(tag=b"b", name=b"NOOP", args=(b"",))]


def test_idle_ends_with_done_in_any_case() -> None:
    receiver = ImapReceiver()
    assert commands(feed(receiver, b"a IDLE\r\n"))[0].name == b"IDLE"
    receiver.start_idle()
    assert feed(receiver, b"done\r\nb NOOP\r\n") == [
        IdleDone(valid=True),
        RawCommand(tag=b"b", name=b"NOOP", args=(b"",)),
    ]


def test_other_line_during_idle_is_an_invalid_done() -> None:
    receiver = ImapReceiver()
    receiver.start_idle()
    assert feed(receiver, b"b NOOP\r\n") == [IdleDone(valid=False)]


def test_take_unparsed_returns_bytes_pipelined_after_starttls() -> None:
    receiver = ImapReceiver()
    receiver.receive_data(b"a STARTTLS\r\nb LOGIN x y\r\n")
    events = receiver.events()
    first = next(events)
    assert isinstance(first, RawCommand)
    assert first.name == b"STARTTLS"
    assert receiver.take_unparsed() == b"b LOGIN x y\r\n"
    assert list(events) == []


def test_append_message_literal_is_streamed_in_chunks() -> None:
    receiver = ImapReceiver(max_literal=10)
    events = feed(receiver, b"a APPEND INBOX (\\Seen) {20}\r\n", b"0123456789", b"abcdefghij", b"\r\n")
    assert events == [
        ContinuationNeeded(tag=b"a", size=20),
        LiteralStart(tag=b"a", index=0, size=20, binary=False),
        LiteralChunk(tag=b"a", index=0, data=b"0123456789"),
        LiteralChunk(tag=b"a", index=0, data=b"abcdefghij"),
        LiteralEnd(tag=b"a", index=0),
        RawCommand(
            tag=b"a",
            name=b"APPEND",
            args=(b" INBOX (\\Seen) ", StreamedLiteral(index=0, size=20), b""),
        ),
    ]


APPEND = b"t1 APPEND Drafts (\\Draft) {11+}\r\nFrom: a\r\n\r\n UTF8 (~{4}\r\n\x00\r\n\xff)\r\nt2 NOOP\r\n"


@pytest.mark.parametrize("split", range(1, len(APPEND)))
def test_streamed_append_split_at_every_position_delivers_the_same_messages(split: int) -> None:
    events = feed(ImapReceiver(), APPEND[:split], APPEND[split:])
    messages: dict[int, bytes] = {}
    for event in events:
        if isinstance(event, LiteralChunk):
            messages[event.index] = messages.get(event.index, b"") + event.data
    assert messages == {0: b"From: a\r\n\r\n", 1: b"\x00\r\n\xff"}
    assert [event.tag for event in commands(events)] == [b"t1", b"t2"]
    assert commands(events)[0].args[-2:] == (StreamedLiteral(index=1, size=4, binary=True), b")")


def test_append_mailbox_literal_is_buffered_and_message_literals_streamed() -> None:
    events = feed(ImapReceiver(), b"a APPEND {5+}\r\nDraft {3+}\r\nabc UTF8 (~{2+}\r\nxy)\r\n")
    assert commands(events)[0].args == (
        b" ",
        Literal(data=b"Draft"),
        b" ",
        StreamedLiteral(index=0, size=3),
        b" UTF8 (",
        StreamedLiteral(index=1, size=2, binary=True),
        b")",
    )
    assert [event.data for event in events if isinstance(event, LiteralChunk)] == [b"abc", b"xy"]


def test_append_message_limit_is_separate_from_the_literal_limit() -> None:
    receiver = ImapReceiver(max_literal=10, max_message=100)
    assert feed(receiver, b"a APPEND INBOX {101}\r\n") == [
        LiteralTooLarge(tag=b"a", size=101, synchronizing=True)
    ]
    events = feed(receiver, b"b APPEND INBOX {100+}\r\n" + b"m" * 100 + b"\r\n")
    assert commands(events)[0].args[1] == StreamedLiteral(index=0, size=100)


def test_streamed_chunks_hold_only_what_arrived_and_nothing_is_buffered() -> None:
    receiver = ImapReceiver()
    feed(receiver, b"a APPEND INBOX {1000000+}\r\n")
    for _ in range(10):
        events = feed(receiver, b"z" * 1000)
        assert events == [LiteralChunk(tag=b"a", index=0, data=b"z" * 1000)]
        assert receiver.take_unparsed() == b""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_only_produce_receiver_events(chunks: list[bytes]) -> None:
    receiver = ImapReceiver(max_line=32, max_literal=16, max_command=64, max_message=16)
    for chunk in chunks:
        receiver.receive_data(chunk)
        for event in receiver.events():
            assert isinstance(
                event,
                RawCommand
                | ContinuationNeeded
                | LiteralTooLarge
                | CommandTooLong
                | IdleDone
                | LiteralStart
                | LiteralChunk
                | LiteralEnd,
            )
