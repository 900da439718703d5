"""CHUNKING (RFC 3030): BDAT chunks, BDAT 0 LAST, data in the same packet, errors that must stay in sync."""

from __future__ import annotations

import pytest
from smtp_harness import feed, in_transaction, message_bytes, ready_server, reply_lines

from kittiwake.proto.smtp.events import DataStart, MessageAborted, MessageChunk, MessageEnd, Reset
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits
from kittiwake.proto.smtp.replies import BARE_LINE_ENDING_500, MESSAGE_TOO_BIG_552, Reply


def test_single_bdat_last_with_data_in_the_same_packet() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"BDAT 7 LAST\r\nhi\r\n.\r\nNOOP\r\n")
    assert events == [DataStart(chunking=True), MessageChunk(data=b"hi\r\n.\r\n"), MessageEnd()]
    assert reply_lines(out) == [b"250 2.0.0 Message accepted", b"250 2.0.0 OK"]


def test_bdat_chunks_are_counted_not_dot_unstuffed() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"BDAT 6\r\n..ab\r\nBDAT 3 last\r\n.\r\n")
    assert message_bytes(events) == b"..ab\r\n.\r\n"
    assert isinstance(events[-1], MessageEnd)
    assert reply_lines(out) == [b"250 2.0.0 6 octets received", b"250 2.0.0 Message accepted"]


def test_bare_lf_in_a_chunk_rejects_the_message_at_that_chunk() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"BDAT 5\r\nab\ncdBDAT 3 LAST\r\nxyzQUIT\r\n")
    assert MessageAborted(reply=BARE_LINE_ENDING_500) in events
    assert not any(isinstance(e, MessageChunk | MessageEnd) for e in events)
    assert reply_lines(out) == [
        b"500 5.5.2 Bare CR or LF not allowed",
        b"503 5.5.1 Need MAIL before BDAT",
        b"221 2.0.0 mx.test closing connection",
    ]


def test_bdat_zero_last_ends_the_message() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"BDAT 6\r\nline\r\nBDAT 0 LAST\r\n")
    assert [type(e) for e in events] == [DataStart, MessageChunk, MessageEnd]
    assert reply_lines(out) == [b"250 2.0.0 6 octets received", b"250 2.0.0 Message accepted"]


def test_bdat_zero_last_as_the_only_chunk_is_an_empty_message() -> None:
    conn = in_transaction()
    events, _ = feed(conn, b"BDAT 0 LAST\r\n")
    assert events == [DataStart(chunking=True), MessageEnd()]


@pytest.mark.parametrize("split", range(1, len(b"BDAT 4 LAST\r\nab\r\nNOOP\r\n")))
def test_bdat_split_anywhere_reads_exactly_the_chunk(split: int) -> None:
    wire = b"BDAT 4 LAST\r\nab\r\nNOOP\r\n"
    conn = in_transaction()
    events1, out1 = feed(conn, wire[:split])
    events2, out2 = feed(conn, wire[split:])
    assert message_bytes(events1 + events2) == b"ab\r\n"
    assert reply_lines(out1 + out2) == [b"250 2.0.0 Message accepted", b"250 2.0.0 OK"]


def test_binarymime_allows_bare_line_endings() -> None:
    conn = ready_server()
    feed(conn, b"MAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<c@mx.test>\r\n")
    events, _ = feed(conn, b"BDAT 3 LAST\r\n\x00\n\r")
    assert message_bytes(events) == b"\x00\n\r"
    assert isinstance(events[-1], MessageEnd)


def test_cr_at_chunk_end_followed_by_lf_in_next_chunk_is_a_crlf() -> None:
    conn = in_transaction()
    events, _ = feed(conn, b"BDAT 2\r\na\rBDAT 1 LAST\r\n\n")
    assert message_bytes(events) == b"a\r\n"
    assert isinstance(events[-1], MessageEnd)


def test_bdat_refused_by_session_still_consumes_the_chunk() -> None:
    conn = in_transaction()
    conn.receive_data(b"BDAT 6\r\nNOOP\r\nRCPT TO:<x@mx.test>\r\n")
    assert conn.events() == [DataStart(chunking=True)]
    conn.send_reply(Reply(code=554, enhanced="5.5.0", text="No"))
    assert conn.events() == []
    assert reply_lines(conn.data_to_send()) == [b"554 5.5.0 No", b"503 5.5.1 Need MAIL before RCPT"]


def test_bdat_out_of_sequence_consumes_its_chunk() -> None:
    conn = ready_server()
    events, out = feed(conn, b"BDAT 6\r\nNOOP\r\nNOOP\r\n")
    assert events == []
    assert reply_lines(out) == [b"503 5.5.1 Need MAIL before BDAT", b"250 2.0.0 OK"]


def test_bdat_without_chunking_is_502_and_consumes_its_chunk() -> None:
    conn = in_transaction(ServerExtensions(chunking=False))
    events, out = feed(conn, b"BDAT 6\r\nNOOP\r\nNOOP\r\n")
    assert events == []
    assert reply_lines(out) == [b"502 5.5.1 Command not implemented", b"250 2.0.0 OK"]


@pytest.mark.parametrize(
    "argument", [b"BDAT", b"BDAT x", b"BDAT -1", b"BDAT 1 FIRST", b"BDAT 1234567890123456789"]
)
def test_bdat_syntax_errors_are_501(argument: bytes) -> None:
    conn = in_transaction()
    events, out = feed(conn, argument + b"\r\n")
    assert events == []
    assert out == b"501 5.5.2 Syntax: BDAT size [LAST]\r\n"


def test_bdat_over_size_cap_is_discarded_then_552_and_transaction_ends() -> None:
    conn = in_transaction(limits=ServerLimits(max_message_size=8))
    feed(conn, b"BDAT 5\r\nabc\r\n")
    events, out = feed(conn, b"BDAT 10\r\n" + b"x" * 10 + b"BDAT 1 LAST\r\nz")
    assert events[0] == MessageAborted(reply=MESSAGE_TOO_BIG_552)
    assert not any(isinstance(e, MessageChunk) for e in events)
    assert reply_lines(out) == [
        b"552 5.3.4 Message size exceeds fixed maximum message size",
        b"503 5.5.1 Need MAIL before BDAT",
    ]


def test_large_bdat_chunk_over_cap_is_not_buffered() -> None:
    conn = in_transaction(limits=ServerLimits(max_message_size=100))
    feed(conn, b"BDAT 10000000 LAST\r\n")
    events = []
    for _ in range(100):
        conn.receive_data(b"y" * 100_000)
        events += conn.events()
        assert conn.buffered == 0
    assert sum(len(e.data) for e in events if isinstance(e, MessageChunk)) <= 100
    assert events[-1] == MessageAborted(reply=MESSAGE_TOO_BIG_552)
    _, out = feed(conn, b"NOOP\r\n")
    assert reply_lines(out)[-1] == b"250 2.0.0 OK"


def test_rset_between_chunks_aborts_the_transaction() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"BDAT 2\r\nabRSET\r\nBDAT 1 LAST\r\nz")
    assert events[-1] == Reset()
    assert reply_lines(out) == [
        b"250 2.0.0 2 octets received",
        b"250 2.0.0 Reset state",
        b"503 5.5.1 Need MAIL before BDAT",
    ]
