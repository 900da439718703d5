from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kittiwake.queue.bounces import (
    NotificationKind,
    RecipientStatus,
    ReturnContent,
    compose_dsn,
    is_null_sender,
    should_notify,
)

ARRIVAL = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)
ORIGINAL = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: lunch\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"\r\n"
    b"See you at noon.\r\n"
)
FAILED = RecipientStatus(
    address="bob@example.net",
    original_recipient="rfc822;bob+2Bspam@example.net",
    action="failed",
    status="5.1.1",
    remote_mta="mx.example.net",
    diagnostic="550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Try again",
    last_attempt=datetime(2026, 11, 22, 4, 29, tzinfo=UTC),
)


def compose(
    *,
    recipients: list[RecipientStatus] | None = None,
    original: bytes = ORIGINAL,
    ret: ReturnContent | None = None,
    envid: str | None = "QQ314159",
    kind: NotificationKind = "failure",
    sender: str = "alice@example.org",
    return_limit: int = 1_000_000,
) -> bytes:
    return compose_dsn(
        reporting_mta="mail.example.org",
        original_sender=sender,
        recipients=recipients or [FAILED],
        original_message=original,
        ret=ret,
        envid=envid,
        arrival=ARRIVAL,
        now=NOW,
        kind=kind,
        message_id_domain="example.org",
        return_limit=return_limit,
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(data: bytes) -> list[EmailMessage]:
    return list(parse(data).iter_parts())  # type: ignore[arg-type]


def status_blocks(data: bytes) -> list[dict[str, str]]:
    """The field blocks of the delivery-status part, read from the raw report (the global form too)."""
    boundary = parse(data).get_boundary()
    assert boundary is not None
    section = data.split(b"--" + boundary.encode() + b"\r\n")[2]
    raw = section.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
    parser = BytesHeaderParser(policy=email.policy.default)
    return [dict(parser.parsebytes(block + b"\r\n").items()) for block in raw.strip().split(b"\r\n\r\n")]


def test_failure_report_is_multipart_report_with_three_parts() -> None:
    message = parse(compose())
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "message/delivery-status",
        "message/rfc822",
    ]


def test_top_header_fields_address_the_sender_from_the_mailer_daemon() -> None:
    report = compose()
    message = parse(report)
    assert b'\r\nFrom: "Mail Delivery System" <MAILER-DAEMON@mail.example.org>\r\n' in b"\r\n" + report
    assert b"\r\nTo: <alice@example.org>\r\n" in report
    assert message["Date"] == "Sun, 22 Nov 2026 04:30:00 +0000"
    assert message["Message-ID"].endswith("@example.org>")
    assert message["MIME-Version"] == "1.0"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<m1@example.org>"


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("failure", "Undelivered Mail Returned to Sender"),
        ("delay", "Delayed Mail (still being retried)"),
        ("success", "Successful Mail Delivery Report"),
    ],
)
def test_subject_names_the_kind_of_report(kind: NotificationKind, subject: str) -> None:
    assert parse(compose(kind=kind))["Subject"] == subject


def test_output_uses_crlf_line_ends_only() -> None:
    data = compose(original=ORIGINAL.replace(b"\r\n", b"\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data.endswith(b"--\r\n")


def test_per_message_fields_carry_reporting_mta_envid_and_arrival() -> None:
    message_fields = status_blocks(compose(envid="QQ+2B314159"))[0]
    assert message_fields == {
        "Reporting-MTA": "dns; mail.example.org",
        "Original-Envelope-Id": "QQ+314159",
        "Arrival-Date": "Sun, 22 Nov 2026 03:00:00 +0000",
    }


def test_envelope_id_field_is_absent_without_envid() -> None:
    assert "Original-Envelope-Id" not in status_blocks(compose(envid=None))[0]


def test_per_recipient_fields_of_a_failure() -> None:
    recipient = status_blocks(compose())[1]
    assert recipient == {
        "Original-Recipient": "rfc822; bob+spam@example.net",
        "Final-Recipient": "rfc822; bob@example.net",
        "Action": "failed",
        "Status": "5.1.1",
        "Remote-MTA": "dns; mx.example.net",
        "Diagnostic-Code": "smtp; 550-5.1.1 The email account that you tried to reach does not exist."
        " 550 5.1.1 Try again",
        "Last-Attempt-Date": "Sun, 22 Nov 2026 04:29:00 +0000",
    }


def test_stdlib_reads_one_block_per_recipient() -> None:
    second = RecipientStatus(address="carol@example.net", action="failed", status="5.2.2")
    status = parts(compose(recipients=[FAILED, second]))[1]
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    assert [block["Final-Recipient"] for block in blocks[1:] if isinstance(block, Message)] == [
        "rfc822; bob@example.net",
        "rfc822; carol@example.net",
    ]


def test_optional_recipient_fields_are_left_out_when_unknown() -> None:
    bare = RecipientStatus(address="carol@example.net", action="failed", status="5.4.4")
    assert status_blocks(compose(recipients=[bare]))[1] == {
        "Final-Recipient": "rfc822; carol@example.net",
        "Action": "failed",
        "Status": "5.4.4",
    }


def test_delay_report_has_will_retry_until_and_headers_only() -> None:
    delayed = RecipientStatus(
        address="bob@example.net",
        action="delayed",
        status="4.4.1",
        remote_mta="mx.example.net",
        diagnostic="451 4.4.1 try later",
        last_attempt=NOW,
        will_retry_until=NOW + timedelta(days=5),
    )
    report = compose(recipients=[delayed], kind="delay")
    text, _status, returned = parts(report)
    fields = status_blocks(report)[1]
    assert fields["Action"] == "delayed"
    assert fields["Will-Retry-Until"] == "Fri, 27 Nov 2026 04:30:00 +0000"
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "Retrying until Fri, 27 Nov 2026" in text.get_content()


def test_will_retry_until_is_only_given_for_delayed_recipients() -> None:
    failed = RecipientStatus(address="b@example.net", action="failed", status="5.0.0", will_retry_until=NOW)
    assert "Will-Retry-Until" not in status_blocks(compose(recipients=[failed]))[1]


def test_human_readable_part_quotes_the_remote_reply() -> None:
    text = parts(compose())[0].get_content()
    assert "<bob@example.net>: the server mx.example.net refused it (status 5.1.1)." in text
    assert "    550 5.1.1 Try again" in text


@pytest.mark.parametrize(
    ("ret", "kind", "limit", "expected_type"),
    [
        (None, "failure", 1_000_000, "message/rfc822"),
        ("FULL", "failure", 1_000_000, "message/rfc822"),
        ("HDRS", "failure", 1_000_000, "text/rfc822-headers"),
        (None, "failure", 10, "text/rfc822-headers"),
        ("FULL", "failure", 10, "text/rfc822-headers"),
        ("FULL", "success", 1_000_000, "text/rfc822-headers"),
        ("FULL", "delay", 1_000_000, "text/rfc822-headers"),
    ],
)
def test_returned_content_follows_ret_kind_and_size(
    ret: ReturnContent | None, kind: NotificationKind, limit: int, expected_type: str
) -> None:
    assert parts(compose(ret=ret, kind=kind, return_limit=limit))[2].get_content_type() == expected_type


def test_full_return_carries_the_original_message_intact() -> None:
    returned = parts(compose(ret="FULL"))[2]
    inner = returned.get_payload()
    assert isinstance(inner, list)
    assert isinstance(inner[0], Message)
    assert inner[0]["Subject"] == "lunch"
    assert inner[0].get_payload() == "See you at noon.\r\n"


def test_headers_return_carries_the_header_block_without_the_body() -> None:
    returned = parts(compose(ret="HDRS"))[2]
    raw = returned.get_payload(decode=True)
    assert isinstance(raw, bytes)
    assert raw.rstrip(b"\r\n") == ORIGINAL.split(b"\r\n\r\n")[0]
    assert b"See you at noon." not in raw


def test_header_only_original_is_returned_whole() -> None:
    header_only = b"From: alice@example.org\r\nSubject: empty\r\n"
    returned = parts(compose(original=header_only, ret="HDRS"))[2]
    raw = returned.get_payload(decode=True)
    assert raw == header_only


UTF8_ORIGINAL = "From: Jürgen <jürgen@exämple.org>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
UTF8_RECIPIENT = RecipientStatus(
    address="用户@example.net",
    original_recipient="utf-8;\\x{7528}\\x{6237}@example.net",
    action="failed",
    status="5.1.1",
    diagnostic="550 5.1.1 unknown",
)


def test_utf8_original_uses_global_types() -> None:
    report = compose(original=UTF8_ORIGINAL, recipients=[UTF8_RECIPIENT], sender="jürgen@exämple.org")
    message = parse(report)
    assert message.get_param("report-type") == "global-delivery-status"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "message/global-delivery-status",
        "message/global",
    ]
    assert "\r\nTo: <jürgen@exämple.org>\r\n".encode() in report


def test_utf8_recipient_fields_use_the_utf8_address_type() -> None:
    report = compose(original=UTF8_ORIGINAL, recipients=[UTF8_RECIPIENT], sender="jürgen@exämple.org")
    fields = status_blocks(report)[1]
    assert fields["Final-Recipient"] == "utf-8; 用户@example.net"
    assert fields["Original-Recipient"] == "utf-8; 用户@example.net"


def test_utf8_headers_only_return_uses_global_headers() -> None:
    report = compose(original=UTF8_ORIGINAL, recipients=[UTF8_RECIPIENT], ret="HDRS")
    returned = parts(report)[2]
    assert returned.get_content_type() == "message/global-headers"
    assert returned["Content-Transfer-Encoding"] == "8bit"


def test_ascii_report_replaces_non_ascii_diagnostic_text() -> None:
    odd = RecipientStatus(address="b@example.net", action="failed", status="5.0.0", diagnostic="550 nö")
    report = compose(recipients=[odd])
    assert report.isascii()
    assert status_blocks(report)[1]["Diagnostic-Code"] == "smtp; 550 n?"


def test_eight_bit_body_is_returned_with_8bit_transfer_encoding() -> None:
    original = b"From: a@example.org\r\nSubject: x\r\n\r\ncaf\xc3\xa9\r\n"
    returned = parts(compose(original=original))[2]
    assert returned.get_content_type() == "message/rfc822"
    assert returned["Content-Transfer-Encoding"] == "8bit"


def test_header_injection_through_diagnostic_is_neutralised() -> None:
    evil = RecipientStatus(
        address="b@example.net", action="failed", status="5.0.0", remote_mta="mx\r\nBcc: x@evil.example"
    )
    fields = status_blocks(compose(recipients=[evil]))[1]
    assert "Bcc" not in fields
    assert fields["Remote-MTA"] == "dns; mx Bcc: x@evil.example"


@pytest.mark.parametrize("status", ["550", "5.1", "6.0.0", "5.1.1 extra", ""])
def test_bad_status_code_is_rejected(status: str) -> None:
    with pytest.raises(ValueError, match="enhanced status"):
        compose(recipients=[RecipientStatus(address="b@example.net", action="failed", status=status)])


def test_no_recipients_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        compose_dsn(
            reporting_mta="m",
            original_sender="a@example.org",
            recipients=[],
            original_message=ORIGINAL,
            ret=None,
            envid=None,
            arrival=ARRIVAL,
            now=NOW,
            kind="failure",
            message_id_domain="m",
        )


@pytest.mark.parametrize("sender", ["", "<>"])
def test_null_sender_is_refused(sender: str) -> None:
    with pytest.raises(ValueError, match="null reverse-path"):
        compose(sender=sender)


def test_same_inputs_give_the_same_report() -> None:
    assert compose() == compose()


def test_boundary_does_not_occur_in_the_parts() -> None:
    message = parse(compose())
    boundary = message.get_boundary()
    assert boundary is not None
    assert compose().count(boundary.encode()) == 5  # parameter, three delimiters, closing delimiter


@pytest.mark.parametrize(
    ("notify", "kind", "expected"),
    [
        (None, "failure", True),
        (None, "delay", True),
        (None, "success", False),
        (("NEVER",), "failure", False),
        (("NEVER",), "delay", False),
        (("SUCCESS",), "success", True),
        (("SUCCESS",), "failure", False),
        (("FAILURE", "DELAY"), "delay", True),
        (("failure",), "failure", True),
        (("FAILURE",), "delay", False),
    ],
)
def test_should_notify_follows_notify_parameter(
    notify: tuple[str, ...] | None, kind: NotificationKind, expected: bool
) -> None:
    assert should_notify(notify, kind) is expected


def test_delay_without_notify_can_be_turned_off() -> None:
    assert should_notify(None, "delay", delay_by_default=False) is False


@pytest.mark.parametrize(
    ("sender", "expected"), [("", True), ("<>", True), (" <> ", True), ("a@example.org", False)]
)
def test_is_null_sender(sender: str, expected: bool) -> None:
    assert is_null_sender(sender) is expected


@given(st.binary(max_size=2000))
def test_any_original_gives_a_parseable_report(original: bytes) -> None:
    message = parse(compose(original=original))
    assert message.get_content_type() == "multipart/report"
    assert len(list(message.iter_parts())) == 3
