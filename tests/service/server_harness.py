"""A whole kittiwake, in process, on free loopback ports, with a test CA: what service tests talk to."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import trustme

from kittiwake.admin.config_template import render_config
from kittiwake.admin.keys import make_dkim_key
from kittiwake.app import Services, run
from kittiwake.auth.passwords import HashParameters, Passwords
from kittiwake.config import Config, load_config
from kittiwake.resolver import Resolver
from tests.fakes import FakeResolver

FAST_HASHES = Passwords(HashParameters(time_cost=1, memory_cost=1024, parallelism=1))
PASSWORD = "correct horse battery"
LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay open until every port is chosen, so none is handed out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(slots=True)
class RunningServer:
    config: Config
    services: Services
    ports: dict[str, int]
    client_tls: ssl.SSLContext
    ca_file: Path

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.services.store

    async def stored_messages(self, user: str = "alice", mailbox: str = "INBOX") -> list[bytes]:
        """The bytes of every message in one of `user`@example.org's mailboxes, in UID order."""
        store = self.store
        account = await store.get_account(f"{user}@example.org")
        assert account is not None
        box = await store.get_mailbox(account.id, mailbox)
        records = await store.load_messages(box.id, [(1, 1 << 30)])
        return [await store.read_blob(r.blob_id, 0, r.size) for r in records]


def write_config(
    folder: Path, overrides: dict[str, object] | None = None
) -> tuple[Path, dict[str, int], trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "mail.example.org")
    (folder / "tls").mkdir(parents=True)
    cert.private_key_pem.write_to_path(str(folder / "tls" / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "tls" / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    values: dict[str, object] = {"server.hostname": "mail.example.org"}
    values.update({f"listen.{name}": (f"127.0.0.1:{port}",) for name, port in ports.items()})
    values.update(overrides or {})
    path = folder / "kittiwake.toml"
    path.write_text(render_config(values))
    make_dkim_key(folder / "dkim" / "example.org.kittiwake.key")
    return path, ports, ca


@contextlib.asynccontextmanager
async def running_server(
    folder: Path,
    overrides: dict[str, object] | None = None,
    *,
    resolver: Resolver | None = None,
    dns_address: str | None = None,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[RunningServer]:
    """Start kittiwake with example.org, alice and bob (password PASSWORD); stop it on exit.

    DNS answers come from `resolver` (a FakeResolver unless given), so nothing leaves the machine. With
    `dns_address` instead, the server makes its own resolver for that DNS server, as `kittiwake serve`
    does, and port 25's checks run in their helper process."""
    if dns_address is not None:
        overrides = {**(overrides or {}), "dns.resolver": dns_address}
    path, ports, ca = write_config(folder, overrides)
    config = load_config(path)
    started: asyncio.Future[Services] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def ready(services: Services, servers: list[asyncio.Server]) -> None:
        store = services.store
        await store.add_domain("example.org")
        for user in ("alice", "bob"):
            await store.add_account(f"{user}@example.org", FAST_HASHES.hash(PASSWORD))
        started.set_result(services)

    task = asyncio.create_task(
        run(
            config,
            ready=ready,
            stop=stop,
            passwords=FAST_HASHES,
            shutdown_grace=5,
            resolver=None if dns_address is not None else resolver or FakeResolver(),
            clock=clock or time.time,
        )
    )
    done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    try:
        yield RunningServer(
            config=config,
            services=started.result(),
            ports=ports,
            client_tls=client_tls,
            ca_file=folder / "ca.pem",
        )
    finally:
        stop.set()
        await task
