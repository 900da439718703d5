"""Two kittiwake sites, a.test on 127.0.0.1 and b.test on 127.0.0.5, finding each other through a loopback DNS
server: mail a user of one submits reaches a user of the other DKIM-signed, passes SPF, DKIM and DMARC there,
and is read over IMAP."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from tests.dns_server import dns_server
from tests.interop.sites import (
    PASSWORD,
    Site,
    authentication_results,
    mail_site,
    prepare_site,
    site_zone,
    wait_for_message,
)


@pytest.fixture
async def sites(tmp_path: Path) -> AsyncIterator[tuple[Site, Site]]:
    ca = trustme.CA()
    a = prepare_site(tmp_path / "a", "a.test", "127.0.0.1", ca)
    b = prepare_site(tmp_path / "b", "b.test", "127.0.0.5", ca)
    async with (
        dns_server(site_zone([a, b])) as dns,
        mail_site(a, dns=dns, remote_port=b.ports["smtp"]),
        mail_site(b, dns=dns, remote_port=a.ports["smtp"]),
    ):
        yield a, b


def submit(site: Site, sender: str, recipient: str, subject: str) -> None:
    message = (
        f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@{site.domain}>\r\n\r\nHello across domains.\r\n"
    )
    with smtplib.SMTP(
        site.host, site.ports["submission"], local_hostname="laptop.test", timeout=20
    ) as client:
        client.starttls(context=site.client_tls)
        client.login(sender, PASSWORD)
        client.sendmail(sender, [recipient], message.encode())


def read_over_imap(site: Site, user: str, subject: str) -> bytes:
    with imaplib.IMAP4_SSL(site.host, site.ports["imaps"], ssl_context=site.client_tls, timeout=20) as client:
        client.login(site.address(user), PASSWORD)
        client.select("INBOX", readonly=True)
        status, found = client.search(None, "SUBJECT", subject)
        assert status == "OK" and found[0], found
        number = found[0].split()[-1]
        status, data = client.fetch(number, "(BODY.PEEK[])")
        assert status == "OK"
        part = data[0]
        assert isinstance(part, tuple)
        return part[1]


@pytest.mark.parametrize("direction", ["a-to-b", "b-to-a"])
async def test_mail_between_two_sites_passes_dkim_spf_dmarc_and_is_read_over_imap(
    sites: tuple[Site, Site], direction: str
) -> None:
    source, target = sites if direction == "a-to-b" else sites[::-1]
    subject = f"interop-{direction}"
    await asyncio.to_thread(submit, source, source.address("alice"), target.address("bob"), subject)
    stored = await wait_for_message(target, "bob")
    results = authentication_results(stored)
    assert results.startswith(target.mx), results
    for check in ("dkim=pass", "spf=pass", "dmarc=pass"):
        assert check in results, results
    assert f"header.d={source.domain}" in results or f"header.i=@{source.domain}" in results, results
    received = stored[stored.index(b"Received:") : stored.index(b"\r\n", stored.index(b"Received:"))]
    assert source.mx.encode() in received and b"ESMTPS" in received, received  # the sites spoke over TLS
    fetched = await asyncio.to_thread(read_over_imap, target, "bob", subject)
    assert fetched == stored
    assert b"Hello across domains." in fetched
