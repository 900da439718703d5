"""Property tests: arbitrary peer bytes, split arbitrarily, never raise and never end a message twice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_harness import accept_everything

from kittiwake.proto.smtp.events import DataStart, Event, MessageAborted, MessageChunk, MessageEnd
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits
from kittiwake.proto.smtp.server import SmtpServerConnection

FRAGMENTS = [
    b"EHLO c.test\r\n",
    b"HELO c.test\r\n",
    b"MAIL FROM:<a@b.test>\r\n",
    b"MAIL FROM:<a@b.test> BODY=BINARYMIME\r\n",
    b"RCPT TO:<c@d.test>\r\n",
    b"DATA\r\n",
    b"BDAT 3\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT 2 LAST\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN dXNlcg==\r\n",
    b"STARTTLS\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"\r.\r",
    b"..",
    b"\r\n",
    b"\n",
    b"\r",
    b"x",
    b"*\r\n",
]


def chop(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(packets: list[bytes]) -> list[Event]:
    conn = SmtpServerConnection(
        "mx.test",
        extensions=ServerExtensions(
            starttls=True, auth_mechanisms=("PLAIN", "LOGIN"), auth_requires_tls=False
        ),
        limits=ServerLimits(max_message_size=64, max_bad_commands=1000),
    )
    conn.greet()
    seen: list[Event] = []
    for packet in packets:
        conn.receive_data(packet)
        while events := conn.events():
            for event in events:
                seen.append(event)
                accept_everything(conn, event)
        conn.data_to_send()
        if conn.state.name == "TLS":
            conn.start_tls_done()
    return seen


def assert_one_ending_per_message(events: list[Event]) -> None:
    open_message = False
    for event in events:
        if isinstance(event, DataStart):
            assert not open_message
            open_message = True
        elif isinstance(event, MessageEnd | MessageAborted):
            assert open_message
            open_message = False


@settings(max_examples=300)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    assert_one_ending_per_message(run(chop(data, cuts)))


@settings(max_examples=300)
@given(
    pieces=st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=8), max_size=40),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_command_soup_never_raises_and_ends_each_message_once(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    assert_one_ending_per_message(run(chop(data, cuts)))


@settings(max_examples=200)
@given(body=st.lists(st.sampled_from([b"a", b".", b"\r\n", b"\r", b"\n", b".."]), max_size=30))
def test_message_splits_do_not_change_the_outcome(body: list[bytes]) -> None:
    wire = (
        b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
        + b"".join(body)
        + b"\r\n.\r\n"
    )
    whole = run([wire])
    bytewise = run([wire[i : i + 1] for i in range(len(wire))])

    def outcome(events: list[Event]) -> list[object]:
        # An aborted message's chunks are void, and how many were emitted before the abort may vary.
        data = b"".join(e.data for e in events if isinstance(e, MessageChunk))
        kinds = [type(e).__name__ for e in events if not isinstance(e, MessageChunk)]
        return [data if "MessageEnd" in kinds else None, kinds]

    assert outcome(whole) == outcome(bytewise)
