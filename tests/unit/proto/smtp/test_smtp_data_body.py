"""DATA body: terminator, dot-unstuffing across every packet split, smuggling, size cap without buffering."""

from __future__ import annotations

import pytest
from smtp_harness import feed, in_transaction, message_bytes, ready_server, reply_lines

from kittiwake.proto.smtp.data import DotDataReader
from kittiwake.proto.smtp.events import MessageAborted, MessageChunk, MessageEnd
from kittiwake.proto.smtp.options import ServerLimits
from kittiwake.proto.smtp.replies import BARE_LINE_ENDING_500, MESSAGE_TOO_BIG_552


def read_all(packets: list[bytes], max_size: int | None = None) -> tuple[bytes, bool, bytes, DotDataReader]:
    reader = DotDataReader(max_size=max_size)
    body = b""
    for index, packet in enumerate(packets):
        progress = reader.feed(packet)
        body += progress.chunk
        if progress.finished:
            rest = progress.rest + b"".join(packets[index + 1 :])
            return body, True, rest, reader
    return body, False, b"", reader


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b".\r\n", b""),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"...\r\n.\r\n", b"..\r\n"),
        (b"..a\r\n..b\r\n.\r\n", b".a\r\n.b\r\n"),
        (b"a.\r\n.b\r\n.\r\n", b"a.\r\nb\r\n"),  # RFC 5321 §4.5.2: a lone leading dot is dropped
        (b"a\r\n\r\n.\r\n", b"a\r\n\r\n"),
        (b"x\r\n.. \r\n.\r\n", b"x\r\n. \r\n"),
        (b"\r\n.\r\n", b"\r\n"),
    ],
)
def test_unstuffing_and_terminator(wire: bytes, message: bytes) -> None:
    body, finished, rest, reader = read_all([wire])
    assert (body, finished, rest, reader.error) == (message, True, b"", None)


WIRE = b"..first\r\nmid.dle\r\n..\r\nx.\r\n...x\r\n.\r\nNEXT"
MESSAGE = b".first\r\nmid.dle\r\n.\r\nx.\r\n..x\r\n"


@pytest.mark.parametrize("split", range(len(WIRE) + 1))
def test_one_split_anywhere_gives_the_same_message(split: int) -> None:
    body, finished, rest, reader = read_all([WIRE[:split], WIRE[split:]])
    assert (body, finished, rest, reader.error) == (MESSAGE, True, b"NEXT", None)


@pytest.mark.parametrize("first", range(len(WIRE) - 8, len(WIRE) + 1))
@pytest.mark.parametrize("second", range(0, 8))
def test_two_splits_near_the_terminator_give_the_same_message(first: int, second: int) -> None:
    cut1, cut2 = sorted((second, first))
    body, finished, rest, _ = read_all([WIRE[:cut1], WIRE[cut1:cut2], WIRE[cut2:]])
    assert (body, finished, rest) == (MESSAGE, True, b"NEXT")


def test_byte_by_byte_gives_the_same_message() -> None:
    body, finished, rest, _ = read_all([bytes([b]) for b in WIRE])
    assert (body, finished, rest) == (MESSAGE, True, b"NEXT")


def test_chunks_are_emitted_as_data_arrives() -> None:
    reader = DotDataReader(max_size=None)
    assert reader.feed(b"hello\r\nworld").chunk == b"hello\r\nworld"
    assert reader.feed(b"\r\n").chunk == b""  # held back: could start the terminator
    assert reader.feed(b"more\r\n").chunk == b"\r\nmore"
    assert reader.buffered == 2


SMUGGLED_ENDINGS = [
    b"\n.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r.\n",
    b"\r\n.\n",
    b"\n.\r",
    b"\r\n.\r",
    b"\r\n.\rX\n",
]


@pytest.mark.parametrize("ending", SMUGGLED_ENDINGS)
def test_smuggled_terminator_never_ends_the_message_and_rejects_it(ending: bytes) -> None:
    conn = in_transaction()
    smuggled = b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@mx.test>\r\nDATA\r\nforged\r\n.\r\n"
    events, out = feed(conn, b"DATA\r\nSubject: a\r\n\r\nbody" + ending + smuggled[:20])
    assert not any(isinstance(e, MessageEnd | MessageAborted) for e in events)
    events, out2 = feed(conn, smuggled[20:])
    # The first real CRLF.CRLF ends the one message, which is rejected; nothing in it ran as a command.
    assert events[-1] == MessageAborted(reply=BARE_LINE_ENDING_500)
    assert not any(isinstance(e, MessageEnd) for e in events)
    assert reply_lines(out + out2) == [
        b"354 End data with <CR><LF>.<CR><LF>",
        b"500 5.5.2 Bare CR or LF not allowed",
    ]


@pytest.mark.parametrize("ending", SMUGGLED_ENDINGS)
@pytest.mark.parametrize("split", range(1, 6))
def test_smuggling_split_across_packets_is_still_rejected(ending: bytes, split: int) -> None:
    wire = b"body" + ending + b"QUIT\r\n.\r\n"
    cut = 4 + min(split, len(ending))
    _body, finished, rest, reader = read_all([wire[:cut], wire[cut:]])
    assert finished
    assert rest == b""
    assert reader.error == BARE_LINE_ENDING_500


@pytest.mark.parametrize("ending", [b"\r\r\n.\r\n", b"\n\r\n.\r\n"])
def test_real_terminator_after_a_bare_cr_or_lf_ends_the_message_rejected(ending: bytes) -> None:
    conn = in_transaction()
    events, out = feed(conn, b"DATA\r\nbody" + ending + b"NOOP\r\n")
    assert events[-1] == MessageAborted(reply=BARE_LINE_ENDING_500)
    assert reply_lines(out)[1:] == [b"500 5.5.2 Bare CR or LF not allowed", b"250 2.0.0 OK"]


@pytest.mark.parametrize("content", [b"a\nb\r\n", b"a\rb\r\n", b"a\r", b"\n", b"x\r\r\n"])
def test_bare_cr_or_lf_anywhere_rejects_the_message(content: bytes) -> None:
    _body, finished, _, reader = read_all([content + b"\r\n.\r\n"])
    assert finished
    assert reader.error == BARE_LINE_ENDING_500


def test_rejected_message_resets_the_transaction_and_the_session_continues() -> None:
    conn = in_transaction()
    events, out = feed(conn, b"DATA\r\nbad\nline\r\n.\r\nNOOP\r\nRCPT TO:<c@mx.test>\r\n")
    assert events[-1] == MessageAborted(reply=BARE_LINE_ENDING_500)
    assert reply_lines(out)[1:] == [
        b"500 5.5.2 Bare CR or LF not allowed",
        b"250 2.0.0 OK",
        b"503 5.5.1 Need MAIL before RCPT",
    ]


def test_message_over_size_cap_is_552_after_the_terminator() -> None:
    conn = in_transaction(limits=ServerLimits(max_message_size=10))
    events, out = feed(conn, b"DATA\r\n0123456789\r\n.\r\n")
    assert events[-1] == MessageAborted(reply=MESSAGE_TOO_BIG_552)
    assert reply_lines(out)[-1] == b"552 5.3.4 Message size exceeds fixed maximum message size"


def test_message_exactly_at_size_cap_is_accepted() -> None:
    conn = in_transaction(limits=ServerLimits(max_message_size=10))
    events, _out = feed(conn, b"DATA\r\n01234567\r\n.\r\n")
    assert message_bytes(events) == b"01234567\r\n"
    assert isinstance(events[-1], MessageEnd)


def test_ten_megabytes_over_the_cap_are_discarded_without_buffering() -> None:
    conn = in_transaction(limits=ServerLimits(max_message_size=1000))
    feed(conn, b"DATA\r\n")
    packet = (b"x" * 1022 + b"\r\n") * 64  # 64 KiB
    delivered = 0
    for _ in range(10 * 16 + 1):
        conn.receive_data(packet)
        for event in conn.events():
            assert isinstance(event, MessageChunk)
            delivered += len(event.data)
        assert conn.buffered <= 4
    assert delivered <= 1000
    events, out = feed(conn, b".\r\nNOOP\r\n")
    assert events == [MessageAborted(reply=MESSAGE_TOO_BIG_552)]
    assert reply_lines(out) == [b"552 5.3.4 Message size exceeds fixed maximum message size", b"250 2.0.0 OK"]


def test_declared_size_over_the_cap_is_refused_at_mail() -> None:
    conn = ready_server(limits=ServerLimits(max_message_size=1000))
    events, out = feed(conn, b"MAIL FROM:<a@b.test> SIZE=1001\r\n")
    assert events == []
    assert out == b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"


def test_session_answer_to_message_end_goes_out_before_the_next_command() -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\n")
    conn.events()
    conn.accept_data()
    conn.receive_data(b"hi\r\n.\r\nNOOP\r\n")
    assert conn.events() == [MessageChunk(data=b"hi\r\n"), MessageEnd(dot_free=True)]
    assert conn.data_to_send() == b"354 End data with <CR><LF>.<CR><LF>\r\n"
    conn.send_reply(MESSAGE_TOO_BIG_552)
    assert conn.data_to_send() == MESSAGE_TOO_BIG_552.serialize() + b"250 2.0.0 OK\r\n"


@pytest.mark.parametrize(
    ("wire", "dot_lines"),
    [
        (b"a\r\nb.c\r\n.\r\n", False),  # a period inside a line starts nothing
        (b"..a\r\n.\r\n", True),  # the first line
        (b"a\r\n..b\r\n.\r\n", True),
        (b"a\r\n.b\r\n.\r\n", True),  # a lone leading dot is dropped, but a line began with it
        (b".\r\n", False),  # the terminator alone
    ],
)
def test_the_reader_notes_whether_any_line_began_with_a_period(wire: bytes, dot_lines: bool) -> None:
    for cut in range(len(wire) + 1):
        *_, reader = read_all([wire[:cut], wire[cut:]])
        assert reader.dot_lines is dot_lines, cut


@pytest.mark.parametrize(("body", "dot_free"), [(b"hi\r\n", True), (b"hi\r\n..x\r\n", False)])
def test_message_end_tells_the_session_whether_a_line_began_with_a_period(
    body: bytes, dot_free: bool
) -> None:
    conn = in_transaction()
    conn.receive_data(b"DATA\r\n")
    conn.events()
    conn.accept_data()
    conn.receive_data(body + b".\r\n")
    assert conn.events()[-1] == MessageEnd(dot_free=dot_free)
