"""Drive an SmtpServerConnection from tests: a session that accepts everything, and byte helpers."""

from __future__ import annotations

from collections.abc import Callable

from kittiwake.proto.smtp.events import (
    AuthResponse,
    AuthStart,
    DataStart,
    Event,
    Hello,
    MailFrom,
    MessageChunk,
    MessageEnd,
    RcptTo,
    StartTls,
    Vrfy,
)
from kittiwake.proto.smtp.options import ServerExtensions, ServerLimits
from kittiwake.proto.smtp.replies import (
    AUTH_SUCCEEDED_235,
    CANNOT_VRFY_252,
    MESSAGE_ACCEPTED_250,
    RECIPIENT_OK_250,
    SENDER_OK_250,
)
from kittiwake.proto.smtp.server import SmtpServerConnection


def accept_everything(conn: SmtpServerConnection, event: Event) -> None:
    """The positive answer for every event that awaits one."""
    match event:
        case Hello():
            conn.accept_hello()
        case StartTls():
            conn.accept_starttls()
        case AuthStart() | AuthResponse():
            conn.send_reply(AUTH_SUCCEEDED_235)
        case MailFrom():
            conn.send_reply(SENDER_OK_250)
        case RcptTo():
            conn.send_reply(RECIPIENT_OK_250)
        case Vrfy():
            conn.send_reply(CANNOT_VRFY_252)
        case DataStart():
            conn.accept_data()
        case MessageEnd():
            conn.send_reply(MESSAGE_ACCEPTED_250)
        case _:
            pass


def make_server(
    extensions: ServerExtensions | None = None, limits: ServerLimits | None = None
) -> SmtpServerConnection:
    """A greeted server; the greeting is already taken out of data_to_send()."""
    conn = SmtpServerConnection(
        "mx.test", extensions=extensions or ServerExtensions(), limits=limits or ServerLimits()
    )
    conn.greet()
    conn.data_to_send()
    return conn


def pump(
    conn: SmtpServerConnection, handle: Callable[[SmtpServerConnection, Event], None] = accept_everything
) -> list[Event]:
    """Answer events with ``handle`` until the core has nothing more to say; return them all."""
    seen: list[Event] = []
    while events := conn.events():
        for event in events:
            seen.append(event)
            handle(conn, event)
    return seen


def feed(conn: SmtpServerConnection, data: bytes) -> tuple[list[Event], bytes]:
    """Feed ``data`` (b"" feeds nothing) with the accept-everything session; return events and output."""
    if data:
        conn.receive_data(data)
    events = pump(conn)
    return events, conn.data_to_send()


def message_bytes(events: list[Event]) -> bytes:
    return b"".join(event.data for event in events if isinstance(event, MessageChunk))


def ready_server(
    extensions: ServerExtensions | None = None, limits: ServerLimits | None = None
) -> SmtpServerConnection:
    """A server after an accepted EHLO."""
    conn = make_server(extensions, limits)
    feed(conn, b"EHLO client.test\r\n")
    return conn


def in_transaction(
    extensions: ServerExtensions | None = None, limits: ServerLimits | None = None
) -> SmtpServerConnection:
    """A server after EHLO, MAIL and one RCPT, all accepted."""
    conn = ready_server(extensions, limits)
    feed(conn, b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mx.test>\r\n")
    return conn


def reply_lines(output: bytes) -> list[bytes]:
    return output.split(b"\r\n")[:-1]
