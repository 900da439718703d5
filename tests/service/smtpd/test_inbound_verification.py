"""Port 25 verification against a real DNS server on loopback: SPF, DKIM, DMARC, ARC, Authentication-Results,
and the abuse defences (DNS block list, greylisting, early talkers, reverse DNS)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kittiwake.mailauth.arc import seal_message
from kittiwake.mailauth.dkim import public_key_record, sign_message
from kittiwake.mailauth.results import build_authentication_results, spf_result
from kittiwake.resolver import DnspythonResolver
from tests.dns_server import dns_server
from tests.fakes import FakeClock
from tests.service.server_harness import RunningServer, running_server


def new_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


SENDER_KEY = new_key()
LIST_KEY = new_key()


def txt(value: str) -> str:
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


ZONE = {
    ("sender.test", "TXT"): [txt("v=spf1 ip4:127.0.0.1 -all")],
    ("_dmarc.sender.test", "TXT"): [txt("v=DMARC1; p=reject")],
    ("sel._domainkey.sender.test", "TXT"): [txt(public_key_record(SENDER_KEY))],
    ("soft.test", "TXT"): [txt("v=spf1 -all")],
    ("_dmarc.soft.test", "TXT"): [txt("v=DMARC1; p=quarantine")],
    ("lists.test", "TXT"): [txt("v=spf1 ip4:127.0.0.1 -all")],
    ("arc._domainkey.lists.test", "TXT"): [txt(public_key_record(LIST_KEY))],
    ("bounces.test", "TXT"): [txt("v=spf1 ip4:127.0.0.1 -all")],
    ("1.0.0.127.in-addr.arpa", "PTR"): ["client.sender.test."],
    ("client.sender.test", "A"): ["127.0.0.1"],
}


def signed(body: str, from_domain: str = "sender.test") -> bytes:
    message = (
        f"From: boss@{from_domain}\r\nTo: alice@example.org\r\nSubject: quarterly\r\n"
        f"Message-ID: <q1@{from_domain}>\r\nDate: Sun, 22 Nov 2026 04:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()
    return sign_message(message, domain="sender.test", selector="sel", private_key_pem=SENDER_KEY) + message


@pytest.fixture(params=["in the server process", "in the helper process"])
async def server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    """Every check is tested both ways: in the server's own process, as it falls back to, and in the
    helper process `kittiwake serve` starts."""
    async with dns_server(ZONE) as address:
        if request.param == "in the helper process":
            async with running_server(tmp_path, dns_address=address) as s:
                assert s.services.verifier is not None
                yield s
        else:
            async with running_server(tmp_path, resolver=DnspythonResolver(address, timeout=5)) as s:
                assert s.services.verifier is None
                yield s


def send(server: RunningServer, sender: str, message: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
        client.ehlo("client.sender.test")
        code, reply = client.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = client.rcpt("alice@example.org")
        if code != 250:
            raise smtplib.SMTPRecipientsRefused({"alice@example.org": (code, reply)})
        return client.data(message)


def send_on_one_connection(server: RunningServer, sender: str, messages: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
        client.ehlo("client.sender.test")
        for message in messages:
            client.sendmail(sender, ["alice@example.org"], message)


def results_field(message: bytes) -> bytes:
    start = message.index(b"Authentication-Results: mail.example.org;")
    end = message.index(b"\r\nReceived:", start)
    return message[start:end].replace(b"\r\n\t", b" ")


async def test_genuine_signed_mail_passes_everything(server: RunningServer) -> None:
    code, _ = await asyncio.to_thread(send, server, "boss@sender.test", signed("Numbers attached."))
    assert code == 250
    (message,) = await server.stored_messages()
    field = results_field(message)
    for expected in (b"iprev=pass", b"spf=pass smtp.mailfrom=boss@sender.test", b"dkim=pass header.d=sender.test",
                     b"header.s=sel", b"dmarc=pass", b"header.from=sender.test"):  # fmt: skip
        assert expected in field, field
    assert b"Received: from client.sender.test (client.sender.test [127.0.0.1])" in message.replace(
        b"\r\n\t", b" "
    )


async def test_forged_sender_of_a_reject_domain_is_refused(server: RunningServer) -> None:
    forged = b"From: boss@sender.test\r\nTo: alice@example.org\r\nSubject: wire money\r\n\r\nNow.\r\n"
    code, reply = await asyncio.to_thread(send, server, "attacker@bounces.test", forged)
    assert (code, reply) == (550, b"5.7.1 Rejected by the sender domain's DMARC policy")
    assert await server.stored_messages() == [] and await server.stored_messages(mailbox="Junk") == []


async def test_message_altered_in_transit_fails_dkim_and_quarantine_files_it_as_junk(
    server: RunningServer,
) -> None:
    original = signed("Pay 100.", from_domain="soft.test")
    altered = original.replace(b"Pay 100.", b"Pay 900.")
    code, _ = await asyncio.to_thread(send, server, "bounce@bounces.test", altered)
    assert code == 250
    assert await server.stored_messages() == []
    (junk,) = await server.stored_messages(mailbox="Junk")
    field = results_field(junk)
    assert (
        b"dkim=fail" in field
        and b"dmarc=fail" in field
        and b"spf=pass smtp.mailfrom=bounce@bounces.test" in field
    )


async def test_existing_results_claiming_our_name_are_neutralised(server: RunningServer) -> None:
    message = signed("Hello.")
    forged = b"Authentication-Results: mail.example.org; dkim=pass header.d=bank.test\r\n" + message
    assert (await asyncio.to_thread(send, server, "boss@sender.test", forged))[0] == 250
    (stored_message,) = await server.stored_messages()
    assert b"X-Spoofed-Auth-Results: mail.example.org; dkim=pass header.d=bank.test" in stored_message
    assert stored_message.count(b"Authentication-Results: mail.example.org") == 1


async def test_forged_results_named_in_another_case_are_neutralised(server: RunningServer) -> None:
    # RFC 8601 §5: field names and the authserv-id compare without regard to case.
    forged = b"X-Note: first\r\nAUTHENTICATION-RESULTS: Mail.Example.ORG; dmarc=pass\r\n" + signed("Hello.")
    assert (await asyncio.to_thread(send, server, "boss@sender.test", forged))[0] == 250
    (stored_message,) = await server.stored_messages()
    assert b"X-Note: first\r\nX-Spoofed-Auth-Results: Mail.Example.ORG; dmarc=pass\r\n" in stored_message
    assert stored_message.count(b"Authentication-Results: mail.example.org") == 1


def forwarded_by_list(original: bytes) -> bytes:
    """A mailing list adds a subject tag and a footer (breaking DKIM), then seals what it saw."""
    changed = original.replace(b"Subject: quarterly", b"Subject: [team] quarterly") + b"-- \r\nteam list\r\n"
    results = build_authentication_results("lists.test", [spf_result("pass", "boss@sender.test")])
    seal = seal_message(
        changed, domain="lists.test", selector="arc", private_key_pem=LIST_KEY,
        authserv_id="lists.test", auth_results_header=results,
    )  # fmt: skip
    return seal + changed


async def test_list_forwarded_mail_with_a_trusted_arc_seal_is_delivered(tmp_path: Path) -> None:
    overrides = {"inbound.trusted_arc_sealers": ("lists.test",)}
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        async with running_server(tmp_path, overrides, resolver=resolver) as server:
            message = forwarded_by_list(signed("Figures."))
            assert (await asyncio.to_thread(send, server, "team-bounces@lists.test", message))[0] == 250
            (delivered,) = await server.stored_messages()
    field = results_field(delivered)
    assert b"arc=pass" in field and b"dmarc=fail" in field


async def test_sealed_and_unsealed_mail_on_one_connection_each_get_their_arc_result(tmp_path: Path) -> None:
    overrides = {"inbound.trusted_arc_sealers": ("lists.test",)}
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        async with running_server(tmp_path, overrides, resolver=resolver) as server:
            messages = [signed("One."), forwarded_by_list(signed("Two.")), signed("Three.")]
            await asyncio.to_thread(send_on_one_connection, server, "team-bounces@lists.test", messages)
            delivered = await server.stored_messages()
    fields = [results_field(message) for message in delivered]
    assert [b"arc=none" in field for field in fields] == [True, False, True]
    assert b"arc=pass" in fields[1] and b"dmarc=fail" in fields[1]


async def test_list_forwarded_mail_from_an_untrusted_sealer_is_still_refused(server: RunningServer) -> None:
    message = forwarded_by_list(signed("Figures."))
    code, _ = await asyncio.to_thread(send, server, "team-bounces@lists.test", message)
    assert code == 550


async def test_client_on_a_dns_block_list_is_refused_at_connection(tmp_path: Path) -> None:
    zone = dict(ZONE)
    zone[("1.0.0.127.dnsbl.test", "A")] = ["127.0.0.2"]
    async with dns_server(zone) as address:
        resolver = DnspythonResolver(address, timeout=5)
        async with running_server(
            tmp_path, {"inbound.dnsbl_zones": ("dnsbl.test",)}, resolver=resolver
        ) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["smtp"])
            assert (await reader.readline()).startswith(b"554 5.7.1")
            writer.close()


async def test_greylisting_defers_a_new_triple_until_the_delay_has_passed(tmp_path: Path) -> None:
    clock = FakeClock()
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        overrides = {"inbound.greylisting": True, "inbound.greylist_delay": 300}
        async with running_server(tmp_path, overrides, resolver=resolver, clock=clock) as server:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as first:
                await asyncio.to_thread(send, server, "boss@sender.test", signed("x"))
            assert first.value.recipients["alice@example.org"][0] == 451
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                await asyncio.to_thread(send, server, "boss@sender.test", signed("x"))  # too soon
            clock.advance(301)
            assert (await asyncio.to_thread(send, server, "boss@sender.test", signed("x")))[0] == 250


async def test_client_talking_before_the_greeting_is_refused(tmp_path: Path) -> None:
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        async with running_server(tmp_path, {"inbound.greeting_delay": 1}, resolver=resolver) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["smtp"])
            writer.write(b"EHLO impatient.test\r\n")
            await writer.drain()
            assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"554 5.5.1")
            writer.close()
            patient_reader, patient = await asyncio.open_connection("127.0.0.1", server.ports["smtp"])
            assert (await asyncio.wait_for(patient_reader.readline(), 10)).startswith(b"220 ")
            patient.close()


async def test_too_many_messages_from_one_address_are_deferred(tmp_path: Path) -> None:
    async with dns_server(ZONE) as address:
        resolver = DnspythonResolver(address, timeout=5)
        async with running_server(
            tmp_path, {"inbound.max_messages_per_minute": 2}, resolver=resolver
        ) as server:
            for _ in range(2):
                assert (await asyncio.to_thread(send, server, "boss@sender.test", signed("x")))[0] == 250
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                await asyncio.to_thread(send, server, "boss@sender.test", signed("x"))
            assert refused.value.smtp_code == 451
