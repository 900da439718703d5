"""The checks on a received message as port 25 runs them, one message after another on one resolver: the
verdicts of each message are its own, whatever came before it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.fakes import FakeResolver

from kittiwake.config import InboundSettings
from kittiwake.delivery.verification import (
    Disposition,
    Verdicts,
    authentication_results,
    check_sender,
    disposition,
    verify_content,
)
from kittiwake.mailauth.arc import seal_message
from kittiwake.mailauth.dkim import public_key_record, sign_message
from kittiwake.mailauth.results import arc_result, build_authentication_results, spf_result

CLIENT = "192.0.2.7"
SETTINGS = InboundSettings(trusted_arc_sealers=("lists.example",))


@pytest.fixture(scope="module")
def key() -> bytes:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def resolver(key: bytes) -> FakeResolver:
    record = public_key_record(key).encode()
    return FakeResolver(
        txt_records={
            "sender.example": [b"v=spf1 ip4:192.0.2.7 -all"],
            "_dmarc.sender.example": [b"v=DMARC1; p=reject"],
            "sel._domainkey.sender.example": [record],
            "lists.example": [b"v=spf1 ip4:192.0.2.7 -all"],
            "arc._domainkey.lists.example": [record],
        }
    )


def signed(key: bytes, body: bytes = b"Figures attached.\r\n") -> bytes:
    message = (
        b"From: Boss <boss@sender.example>\r\nTo: alice@example.net\r\nSubject: quarterly\r\n"
        b"Message-ID: <q1@sender.example>\r\n\r\n" + body
    )
    return sign_message(message, domain="sender.example", selector="sel", private_key_pem=key) + message


def forwarded_by_list(key: bytes, original: bytes) -> bytes:
    """A list tags the subject (breaking DKIM) and seals what it saw."""
    changed = original.replace(b"Subject: quarterly", b"Subject: [team] quarterly")
    results = build_authentication_results(
        "lists.example", [spf_result("pass", "boss@sender.example"), arc_result("none")]
    )
    seal = seal_message(
        changed, domain="lists.example", selector="arc", private_key_pem=key,
        authserv_id="lists.example", auth_results_header=results,
    )  # fmt: skip
    return seal + results + changed


async def judge(
    message: bytes, mail_from: str, resolver: FakeResolver
) -> tuple[Verdicts, Disposition, bytes]:
    verdicts = Verdicts(mail_from=mail_from, helo="client.example", iprev="pass")
    verdicts.spf = await check_sender(CLIENT, mail_from, "client.example", resolver, "mx.example.net")
    header_block = message[: message.index(b"\r\n\r\n") + 4]
    await verify_content(verdicts, message, header_block, resolver)
    return verdicts, disposition(verdicts, SETTINGS), authentication_results("mx.example.net", verdicts)


async def test_genuine_message_gets_the_whole_field(key: bytes, resolver: FakeResolver) -> None:
    message = signed(key)
    _verdicts, verdict, field = await judge(message, "boss@sender.example", resolver)
    signature = message[message.index(b"\tb=") + 3 :][:8]
    # RFC 8601 §2.2: a pvalue that is not a token is a quoted-string; base64 may hold "/".
    header_b = b'"' + signature + b'"' if b"/" in signature else signature
    assert verdict is Disposition.INBOX
    assert field == (
        b"Authentication-Results: mx.example.net;\r\n"
        b"\tiprev=pass;\r\n"
        b"\tspf=pass smtp.mailfrom=boss@sender.example;\r\n"
        b"\tdkim=pass header.d=sender.example header.s=sel header.b=" + header_b + b";\r\n"
        b"\tarc=none;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=sender.example\r\n"
    )


async def test_arc_chain_is_checked_between_messages_without_one(key: bytes, resolver: FakeResolver) -> None:
    # RFC 8617 §5.2: a message without ARC fields is "none"; one with a chain has it verified, each time.
    sequence = [
        signed(key),
        forwarded_by_list(key, signed(key)),
        signed(key),
        forwarded_by_list(key, signed(key)),
    ]
    outcomes = []
    for message in sequence:
        verdicts, verdict, _field = await judge(message, "bounces@lists.example", resolver)
        assert verdicts.arc is not None and verdicts.dmarc is not None
        outcomes.append((verdicts.arc.result, verdicts.dmarc.result, verdict))
    passed, forwarded = ("none", "pass", Disposition.INBOX), ("pass", "fail", Disposition.INBOX)
    assert outcomes == [passed, forwarded, passed, forwarded]


async def test_tampered_arc_chain_fails_and_dmarc_decides(key: bytes, resolver: FakeResolver) -> None:
    message = forwarded_by_list(key, signed(key)).replace(b"[team] quarterly", b"[team] payday")
    verdicts, verdict, field = await judge(message, "bounces@lists.example", resolver)
    assert verdicts.arc is not None and verdicts.arc.result == "fail"
    assert verdict is Disposition.REJECT
    assert b"\tarc=fail;\r\n" in field


async def test_policy_change_of_the_sender_applies_to_the_next_message(
    key: bytes, resolver: FakeResolver
) -> None:
    unsigned = b"From: boss@sender.example\r\nTo: alice@example.net\r\nSubject: x\r\n\r\nHi.\r\n"
    dispositions = []
    for policy in (b"reject", b"quarantine", b"none", b"reject"):
        resolver.txt_records["_dmarc.sender.example"] = [b"v=DMARC1; p=" + policy]
        dispositions.append((await judge(unsigned, "someone@lists.example", resolver))[1])
    assert dispositions == [Disposition.REJECT, Disposition.JUNK, Disposition.INBOX, Disposition.REJECT]
