"""Outbound delivery end to end: submission -> queue -> sink MX servers on loopback, with injected DNS and clock."""

from __future__ import annotations

import asyncio
import email
import smtplib
import ssl
from pathlib import Path

import pytest
import trustme

from kittiwake.mailauth.arc import verify_arc
from kittiwake.mailauth.dkim import public_key_record, verify_message
from tests.fakes import FakeClock, FakeResolver
from tests.service.queue.harness import MESSAGE, inbox, settle, submit
from tests.service.queue.sink import Sink, running_sinks
from tests.service.server_harness import PASSWORD, RunningServer, free_ports, running_server


async def test_message_goes_to_the_preferred_mx_byte_exact_and_leaves_the_queue(
    server: RunningServer, sink_port: int
) -> None:
    async with running_sinks(sink_port, {"127.0.0.2": Sink(), "127.0.0.3": Sink()}) as sinks:
        await submit(server, ["friend@remote.test"])
        await settle(server)
    (got,) = sinks["127.0.0.2"].received
    assert got.sender == "alice@example.org" and got.recipients == ["friend@remote.test"]
    assert got.data.endswith(MESSAGE)
    assert not got.data.startswith(b"Return-Path:")  # that header belongs to final delivery only
    assert sinks["127.0.0.3"].received == []
    assert await server.store.count_queued() == 0


async def test_unreachable_first_mx_falls_back_to_the_second(server: RunningServer, sink_port: int) -> None:
    async with running_sinks(sink_port, {"127.0.0.3": Sink()}) as sinks:
        await submit(server, ["friend@remote.test"])
        await settle(server)
    assert len(sinks["127.0.0.3"].received) == 1


async def test_domain_without_mx_uses_its_address(server: RunningServer, sink_port: int) -> None:
    async with running_sinks(sink_port, {"127.0.0.4": Sink()}) as sinks:
        await submit(server, ["someone@bare.test"])
        await settle(server)
    assert len(sinks["127.0.0.4"].received) == 1


async def test_temporary_failure_is_retried_later_then_delivered(
    server: RunningServer, sink_port: int, clock: FakeClock
) -> None:
    first = Sink(behaviour="defer")
    async with running_sinks(sink_port, {"127.0.0.2": first, "127.0.0.3": Sink(behaviour="defer")}):
        await submit(server, ["friend@remote.test"])
        await settle(server)
    (entry,) = await server.store.load_queue()
    (state,) = entry.recipients
    assert state.status == "deferred" and state.attempts == 1 and "451 4.3.0" in (state.last_reply or "")
    assert 0 <= state.next_attempt - clock.now <= 60  # the first retry interval
    async with running_sinks(sink_port, {"127.0.0.2": Sink(), "127.0.0.3": Sink()}) as sinks:
        await settle(server)  # not due yet: nothing happens
        assert sinks["127.0.0.2"].received == []
        clock.advance(61)
        await settle(server)
    assert len(sinks["127.0.0.2"].received) == 1
    assert await server.store.count_queued() == 0


async def test_permanent_failure_bounces_to_the_local_sender(server: RunningServer, sink_port: int) -> None:
    async with running_sinks(sink_port, {"127.0.0.2": Sink(behaviour="refuse")}):
        await submit(server, ["friend@remote.test"])
        await settle(server)
    assert await server.store.count_queued() == 0
    (bounce,) = await inbox(server)
    report = email.message_from_bytes(
        bounce.split(b"\r\n", 2)[2] if bounce.startswith(b"Return-Path") else bounce
    )
    assert report.get_content_type() == "multipart/report"
    assert b"Final-Recipient: rfc822;friend@remote.test" in bounce.replace(b"; ", b";")
    assert b"550 5.1.1 no such user" in bounce
    assert b"Action: failed" in bounce


async def test_nxdomain_and_null_mx_bounce_at_once(server: RunningServer, resolver: FakeResolver) -> None:
    resolver.mx_records["nullmx.test"] = [(0, ".")]
    await submit(server, ["x@nowhere.test", "y@nullmx.test"])
    await settle(server)
    (bounce,) = await inbox(server)
    assert b"x@nowhere.test" in bounce and b"y@nullmx.test" in bounce
    assert b"5.1.10" in bounce and b"5.1.2" in bounce
    assert await server.store.count_queued() == 0


async def test_dns_failure_defers(server: RunningServer, resolver: FakeResolver) -> None:
    resolver.failing.add("flaky.test")
    await submit(server, ["x@flaky.test"])
    await settle(server)
    (entry,) = await server.store.load_queue()
    assert entry.recipients[0].status == "deferred"


async def test_message_expires_after_the_queue_lifetime_and_bounces(
    server: RunningServer, sink_port: int, clock: FakeClock
) -> None:
    async with running_sinks(
        sink_port, {"127.0.0.2": Sink(behaviour="defer"), "127.0.0.3": Sink(behaviour="defer")}
    ):
        await submit(server, ["friend@remote.test"])
        await settle(server)
        clock.advance(server.config.queue.lifetime + 1)
        await settle(server)
    assert await server.store.count_queued() == 0
    bounces = await inbox(server)
    assert any(b"4.4.7" in b and b"Action: failed" in b for b in bounces)


async def test_delay_warning_is_sent_once(server: RunningServer, sink_port: int, clock: FakeClock) -> None:
    sinks = {"127.0.0.2": Sink(behaviour="defer"), "127.0.0.3": Sink(behaviour="defer")}
    async with running_sinks(sink_port, sinks):
        await submit(server, ["friend@remote.test"])
        await settle(server)
        for _ in range(3):
            clock.advance(server.config.queue.delay_warning)
            await settle(server)
    warnings = [b for b in await inbox(server) if b"Action: delayed" in b]
    assert len(warnings) == 1
    assert await server.store.count_queued() == 1


async def test_utf8_message_to_a_server_without_smtputf8_bounces_with_5_6_7(
    server: RunningServer, sink_port: int
) -> None:
    message = "From: alice@example.org\r\nTo: jörg@remote.test\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    plain = {"127.0.0.2": Sink(smtputf8=False), "127.0.0.3": Sink(smtputf8=False)}
    async with running_sinks(sink_port, plain) as sinks:
        await submit(server, ["jörg@remote.test"], message, mail_options=["SMTPUTF8"])
        await settle(server)
    assert sinks["127.0.0.2"].received == []
    (bounce,) = await inbox(server)
    assert b"5.6.7" in bounce


async def test_stalled_server_times_out_and_defers(
    tmp_path: Path, sink_port: int, resolver: FakeResolver
) -> None:
    overrides = {"queue.remote_port": sink_port, "queue.connect_timeout": 1}
    async with running_server(tmp_path, overrides, resolver=resolver, clock=FakeClock()) as server:
        worker = server.services.queue
        assert worker is not None
        worker.timeouts = type(worker.timeouts)(connect=1, greeting=1, command=1, data_start=1, data_end=1)
        stalls = {"127.0.0.2": Sink(behaviour="stall"), "127.0.0.3": Sink(behaviour="drop")}
        async with running_sinks(sink_port, stalls):
            await submit(server, ["friend@remote.test"])
            await settle(server)
        (entry,) = await server.store.load_queue()
        assert entry.recipients[0].status == "deferred"


async def test_null_sender_mail_never_bounces(server: RunningServer, sink_port: int) -> None:
    def send() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=server.client_tls) as client:
            client.login("alice@example.org", PASSWORD)
            client.sendmail("", ["friend@remote.test"], MESSAGE)

    async with running_sinks(sink_port, {"127.0.0.2": Sink(behaviour="refuse")}):
        await asyncio.to_thread(send)
        await settle(server)
    assert await inbox(server) == []
    assert await server.store.count_queued() == 0


async def test_outgoing_mail_is_dkim_signed_and_verifies_at_the_receiver(
    server: RunningServer, sink_port: int, tmp_path: Path
) -> None:
    async with running_sinks(sink_port, {"127.0.0.2": Sink()}) as sinks:
        await submit(server, ["friend@remote.test"])
        await settle(server)
    (got,) = sinks["127.0.0.2"].received
    assert got.data.startswith(b"DKIM-Signature: ")
    key = (tmp_path / "dkim" / "example.org.kittiwake.key").read_bytes()
    receiver_dns = FakeResolver(
        txt_records={"kittiwake._domainkey.example.org": [public_key_record(key).encode()]}
    )
    (result,) = await verify_message(got.data, receiver_dns)
    assert (result.domain, result.result) == ("example.org", "pass")


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
async def test_smarthost_gets_everything_over_verified_tls_with_auth(
    tmp_path: Path, resolver: FakeResolver, mode: str
) -> None:
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost")
    relay_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(relay_tls)
    ca.cert_pem.write_to_path(str(tmp_path / "relay-ca.pem"))
    (relay_port,) = free_ports(1)
    overrides: dict[str, object] = {
        "smarthost.host": "localhost",
        "smarthost.port": relay_port,
        "smarthost.tls": mode,
        "smarthost.username": "relay-user",
        "smarthost.password": "relay-secret",
        "smarthost.ca_file": str(tmp_path / "relay-ca.pem"),
    }
    relay = Sink(
        starttls=relay_tls, implicit_tls=mode == "implicit", require_auth=("relay-user", "relay-secret")
    )
    site = tmp_path / "site"
    async with (
        running_server(site, overrides, resolver=resolver, clock=FakeClock()) as server,
        running_sinks(relay_port, {"127.0.0.1": relay}),
    ):
        await submit(server, ["friend@remote.test", "other@bare.test"])
        await settle(server)
    assert len(relay.received) == 1
    (got,) = relay.received
    assert sorted(got.recipients) == ["friend@remote.test", "other@bare.test"]  # one transaction for both
    assert got.tls and got.auth == "relay-user"
    assert ("MX", "remote.test") not in resolver.queries  # the smarthost replaces MX routing


class PolicyFile:
    """Stands in for https://mta-sts.<domain>/.well-known/mta-sts.txt."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.fetched: list[str] = []

    async def fetch(self, domain: str) -> bytes:
        self.fetched.append(domain)
        return self.text.encode()


async def test_mta_sts_enforce_keeps_mail_off_unlisted_mx_and_off_plaintext(
    server: RunningServer, resolver: FakeResolver, sink_port: int
) -> None:
    resolver.txt_records["_mta-sts.remote.test"] = [b"v=STSv1; id=20261122"]
    policy = PolicyFile("version: STSv1\r\nmode: enforce\r\nmx: mx2.remote.test\r\nmax_age: 86400\r\n")
    worker = server.services.queue
    assert worker is not None
    worker.sts_fetcher = policy
    sinks = {"127.0.0.2": Sink(), "127.0.0.3": Sink()}  # neither offers STARTTLS
    async with running_sinks(sink_port, sinks):
        await submit(server, ["friend@remote.test"])
        await settle(server)
    assert sinks["127.0.0.2"].connections == 0  # mx1 is not in the policy
    assert sinks["127.0.0.3"].received == []  # mx2 is, but offers no TLS
    (entry,) = await server.store.load_queue()
    assert entry.recipients[0].status == "deferred" and "4.7.10" in (entry.recipients[0].last_reply or "")
    assert policy.fetched == ["remote.test"]


async def test_mta_sts_testing_mode_only_reports(
    server: RunningServer, resolver: FakeResolver, sink_port: int
) -> None:
    resolver.txt_records["_mta-sts.remote.test"] = [b"v=STSv1; id=1"]
    worker = server.services.queue
    assert worker is not None
    worker.sts_fetcher = PolicyFile(
        "version: STSv1\r\nmode: testing\r\nmx: mx2.remote.test\r\nmax_age: 86400\r\n"
    )
    async with running_sinks(sink_port, {"127.0.0.2": Sink()}) as sinks:
        await submit(server, ["friend@remote.test"])
        await settle(server)
    assert len(sinks["127.0.0.2"].received) == 1


async def test_mail_forwarded_by_an_alias_is_arc_sealed_and_the_seal_verifies(
    server: RunningServer, sink_port: int, tmp_path: Path
) -> None:
    await server.store.add_alias("fwd@example.org", ["friend@remote.test"])
    message = b"From: someone@elsewhere.net\r\nTo: fwd@example.org\r\nSubject: pass it on\r\n\r\nThanks.\r\n"

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"]) as client:
            client.sendmail("someone@elsewhere.net", ["fwd@example.org"], message)

    async with running_sinks(sink_port, {"127.0.0.2": Sink()}) as sinks:
        await asyncio.to_thread(send)
        await settle(server)
    (got,) = sinks["127.0.0.2"].received
    assert got.data.endswith(message)
    assert b"ARC-Seal: i=1;" in got.data and b"\r\nAuthentication-Results: mail.example.org;" in got.data
    key = (tmp_path / "dkim" / "example.org.kittiwake.key").read_bytes()
    downstream = FakeResolver(
        txt_records={"kittiwake._domainkey.example.org": [public_key_record(key).encode()]}
    )
    sealed = await verify_arc(got.data, downstream)
    assert (sealed.result, sealed.sealers) == ("pass", ("example.org",))
