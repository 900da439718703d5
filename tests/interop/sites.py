"""Whole kittiwake sites, in process, each for its own domain on its own loopback address, and the DNS zone
that lets them find and authenticate each other: what the interoperability tests talk to."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from kittiwake.admin.config_template import render_config
from kittiwake.admin.keys import dkim_public_record, make_dkim_key
from kittiwake.app import Services, run
from kittiwake.config import Config, load_config
from tests.dns_server import Zone
from tests.service.server_harness import FAST_HASHES, LISTENERS, PASSWORD

SELECTOR = "kittiwake"

__all__ = [
    "PASSWORD",
    "SELECTOR",
    "Site",
    "authentication_results",
    "free_ports_on",
    "inbox",
    "mail_site",
    "prepare_site",
    "site_zone",
    "wait_for",
    "wait_for_message",
]


def free_ports_on(host: str, count: int) -> list[int]:
    """Distinct ports free on `host`; every socket stays open until all are chosen so none repeats."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(slots=True, kw_only=True)
class Site:
    domain: str
    host: str
    ports: dict[str, int]
    folder: Path
    ca: trustme.CA
    config: Config | None = None
    services: Services | None = None
    client_tls: ssl.SSLContext = field(default_factory=ssl.create_default_context)

    @property
    def mx(self) -> str:
        return f"mx.{self.domain}"

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def dkim_key(self) -> Path:
        return self.folder / "dkim" / f"{self.domain}.{SELECTOR}.key"

    def address(self, user: str) -> str:
        return f"{user}@{self.domain}"


def prepare_site(folder: Path, domain: str, host: str, ca: trustme.CA) -> Site:
    """Certificate (for the MX name, localhost and the site's address) and DKIM key, before the site runs."""
    site = Site(domain=domain, host=host, ports={}, folder=folder, ca=ca)
    cert = ca.issue_cert(site.mx, "localhost", host)
    (folder / "tls").mkdir(parents=True)
    cert.private_key_pem.write_to_path(str(folder / "tls" / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "tls" / "cert.pem"))
    ca.cert_pem.write_to_path(str(site.ca_file))
    make_dkim_key(site.dkim_key)
    site.ports = dict(zip(LISTENERS, free_ports_on(host, len(LISTENERS)), strict=True))
    ca.configure_trust(site.client_tls)
    return site


def site_zone(sites: list[Site], *, sender_ip: str = "127.0.0.1", extra: Zone | None = None) -> Zone:
    """MX, A, SPF, DMARC (p=reject, so a failure would show) and DKIM records for every site.

    On loopback the kernel gives every outbound connection the source address 127.0.0.1, whatever address
    the target listens on, so that is the address SPF must authorise for each domain."""
    zone: Zone = {}
    for site in sites:
        zone[(site.domain, "MX")] = [f"10 {site.mx}."]
        zone[(site.mx, "A")] = [site.host]
        zone[(site.domain, "TXT")] = [f'"v=spf1 ip4:{sender_ip} -all"']
        zone[(f"_dmarc.{site.domain}", "TXT")] = ['"v=DMARC1; p=reject"']
        record = dkim_public_record(site.dkim_key)
        chunks = " ".join(f'"{record[i : i + 250]}"' for i in range(0, len(record), 250))
        zone[(f"{SELECTOR}._domainkey.{site.domain}", "TXT")] = [chunks]
    zone.update(extra or {})
    return zone


@contextlib.asynccontextmanager
async def mail_site(
    site: Site, *, dns: str, remote_port: int, users: tuple[str, ...] = ("alice", "bob")
) -> AsyncIterator[Site]:
    """Run kittiwake for `site.domain` on `site.host`, its outbound mail going to port `remote_port`."""
    values: dict[str, object] = {
        "server.hostname": site.mx,
        "dns.resolver": dns,
        "queue.remote_port": remote_port,
        "queue.retry_intervals": (1,),
        "dkim.selector": SELECTOR,
    }
    values.update({f"listen.{name}": (f"{site.host}:{port}",) for name, port in site.ports.items()})
    path = site.folder / "kittiwake.toml"
    path.write_text(render_config(values))
    config = load_config(path)
    started: asyncio.Future[Services] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def ready(services: Services, servers: list[asyncio.Server]) -> None:
        await services.store.add_domain(site.domain)
        for user in users:
            await services.store.add_account(site.address(user), FAST_HASHES.hash(PASSWORD))
        started.set_result(services)

    task = asyncio.create_task(
        run(config, ready=ready, stop=stop, passwords=FAST_HASHES, shutdown_grace=5, clock=time.time)
    )
    waiting: set[asyncio.Future[object]] = {task, started}  # type: ignore[arg-type]
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    site.config = config
    site.services = started.result()
    try:
        yield site
    finally:
        stop.set()
        await task


async def inbox(site: Site, user: str, mailbox: str = "INBOX") -> list[bytes]:
    """Every message in the user's mailbox, read straight from the store."""
    assert site.services is not None
    store = site.services.store
    account = await store.get_account(site.address(user))
    assert account is not None
    folder = await store.get_mailbox(account.id, mailbox)
    records = await store.load_messages(folder.id, [(1, 1 << 30)])
    return [await store.read_blob(r.blob_id, 0, r.size) for r in records]


async def wait_for_message(site: Site, user: str, seconds: float = 20) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        messages = await inbox(site, user)
        if messages:
            return messages[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing reached {site.address(user)} in {seconds} s")


async def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


def authentication_results(message: bytes) -> str:
    """The Authentication-Results field the receiving site added (the topmost one), unfolded."""
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    value = parsed.get("Authentication-Results")
    assert value is not None, message[:2000]
    return " ".join(str(value).split())
