"""Postfix as a peer MTA: it relays mail into kittiwake's MX over SMTP with STARTTLS, and it is the MX that
kittiwake's queue delivers to. Postfix must be installed (/usr/sbin/postfix); without it these tests fail,
saying so, rather than skip: they exist to show that kittiwake and Postfix work together."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import trustme

from tests.dns_server import dns_server
from tests.interop.postfix_peer import PostfixPeer, require_postfix, running_postfix
from tests.interop.sites import (
    PASSWORD,
    Site,
    authentication_results,
    free_ports_on,
    mail_site,
    prepare_site,
    site_zone,
    wait_for,
    wait_for_message,
)

POSTFIX_HOST = "127.0.0.7"
POSTFIX_DOMAIN = "p.test"


@contextlib.asynccontextmanager
async def kittiwake_and_postfix(tmp_path: Path) -> AsyncIterator[tuple[Site, PostfixPeer]]:
    ca = trustme.CA()
    site = prepare_site(tmp_path / "kittiwake", "k.test", "127.0.0.1", ca)
    (port,) = free_ports_on(POSTFIX_HOST, 1)
    peer = PostfixPeer(
        root=tmp_path / "postfix", domain=POSTFIX_DOMAIN, mailbox="carol", host=POSTFIX_HOST, port=port
    )
    zone = site_zone(
        [site],
        extra={
            (POSTFIX_DOMAIN, "MX"): [f"10 mx.{POSTFIX_DOMAIN}."],
            (f"mx.{POSTFIX_DOMAIN}", "A"): [POSTFIX_HOST],
            (POSTFIX_DOMAIN, "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
        },
    )
    (tmp_path / "postfix").mkdir()
    cert = ca.issue_cert(f"mx.{POSTFIX_DOMAIN}", POSTFIX_HOST)
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "postfix" / "tls.pem"))
    pem = tmp_path / "postfix" / "tls.pem"
    async with dns_server(zone) as dns, mail_site(site, dns=dns, remote_port=port):
        with running_postfix(peer, relay=(site.host, site.ports["smtp"]), cert=pem, key=pem):
            yield site, peer


async def test_postfix_relays_into_kittiwake_mx_over_starttls_and_spf_passes(tmp_path: Path) -> None:
    require_postfix()
    async with kittiwake_and_postfix(tmp_path) as (site, postfix):
        await check_postfix_relays_into_kittiwake(site, postfix)


async def check_postfix_relays_into_kittiwake(site: Site, postfix: PostfixPeer) -> None:
    message = (
        b"From: Carol <carol@p.test>\r\nTo: Bob <bob@k.test>\r\nSubject: from postfix\r\n"
        b"Message-ID: <postfix-relay@p.test>\r\n\r\nRelayed by Postfix.\r\n"
    )
    await asyncio.to_thread(postfix.sendmail, "carol@p.test", "bob@k.test", message)
    try:
        stored = await wait_for_message(site, "bob", 30)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{postfix.log()[-3000:]}") from None
    assert stored.endswith(b"\r\n\r\nRelayed by Postfix.\r\n")
    assert b"Subject: from postfix\r\n" in stored
    results = authentication_results(stored)
    assert "spf=pass" in results and "smtp.mailfrom=p.test" in results.replace("carol@", ""), results
    # kittiwake's Received field names the TLS session Postfix's smtp client negotiated.
    parsed = email.message_from_bytes(stored, policy=email.policy.compat32)
    received = " ".join(str((parsed.get_all("Received") or [""])[0]).split())
    assert "ESMTPS" in received or "TLS" in received, received
    # Postfix logs the delivery once it has read our 250, a moment after the message is stored.
    for _ in range(100):
        if "status=sent" in postfix.log():
            break
        await asyncio.sleep(0.1)
    assert "status=sent" in postfix.log()


def submit_to_postfix_user(site: Site) -> None:
    message = (
        b"From: Alice <alice@k.test>\r\nTo: Carol <carol@p.test>\r\nSubject: to postfix\r\n"
        b"Message-ID: <to-postfix@k.test>\r\n\r\nDelivered to Postfix.\r\n"
    )
    with smtplib.SMTP(
        site.host, site.ports["submission"], local_hostname="laptop.test", timeout=20
    ) as client:
        client.starttls(context=site.client_tls)
        client.login("alice@k.test", PASSWORD)
        client.sendmail("alice@k.test", ["carol@p.test"], message)


async def test_kittiwake_delivers_dkim_signed_mail_to_a_postfix_mx(tmp_path: Path) -> None:
    require_postfix()
    async with kittiwake_and_postfix(tmp_path) as (site, postfix):
        await check_kittiwake_delivers_to_postfix(site, postfix)


async def check_kittiwake_delivers_to_postfix(site: Site, postfix: PostfixPeer) -> None:
    await asyncio.to_thread(submit_to_postfix_user, site)
    try:
        await wait_for(postfix.maildir_messages, 30, "a message in Postfix's Maildir")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{postfix.log()[-3000:]}") from None
    (delivered,) = postfix.maildir_messages()
    delivered = delivered.replace(b"\n", b"\r\n")  # Postfix's virtual(8) writes Maildir files with LF
    assert delivered.endswith(b"\r\n\r\nDelivered to Postfix.\r\n")
    parsed = email.message_from_bytes(delivered, policy=email.policy.compat32)
    signature = " ".join(str(parsed["DKIM-Signature"]).split())
    assert "d=k.test" in signature and "s=kittiwake" in signature, signature
    received = " ".join(str((parsed.get_all("Received") or [""])[0]).split())
    assert "mx.k.test" in received and "TLS" in received, received
