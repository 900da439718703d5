"""Composition root: builds the store and the services from the configuration and runs them until told to stop.

The only place that wires concrete classes together. Tests call `run()` with a ready-event and a stop-event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kittiwake.auth.authenticator import Authenticator
from kittiwake.auth.passwords import Passwords
from kittiwake.config import Config
from kittiwake.delivery.notifications import NotificationDelivery
from kittiwake.delivery.router import Router
from kittiwake.delivery.signing import DkimSigner
from kittiwake.delivery.verify_process import VerifyProcesses
from kittiwake.imapd import server as imapd_server
from kittiwake.net.connection import ConnectionIdFilter
from kittiwake.net.listeners import Handler, start_listener
from kittiwake.net.tls import TlsContextHolder
from kittiwake.queue.worker import QueueWorker
from kittiwake.resolver import DnspythonResolver, Resolver
from kittiwake.smtpd import server as smtpd_server
from kittiwake.smtpd.checks import InboundChecks
from kittiwake.smtpd.policy import Policy
from kittiwake.store.sqlite import SqliteStore

log = logging.getLogger(__name__)
LISTENER_NAMES = ("smtp", "submission", "submissions", "imap", "imaps")


@dataclass(slots=True)
class Services:
    """What the listeners share: the store, routing, logins, the TLS context, and the connections in flight."""

    config: Config
    store: SqliteStore
    tls: TlsContextHolder
    router: Router
    authenticator: Authenticator
    connections: set[asyncio.Task[None]] = field(default_factory=set)
    queue: QueueWorker | None = None
    resolver: Resolver = field(default_factory=DnspythonResolver)
    signer: DkimSigner | None = None
    verifier: VerifyProcesses | None = None
    clock: Callable[[], float] = time.time


ServiceFactory = Callable[[Services, str], Handler]


def _smtp(services: Services, name: str) -> Handler:
    policy = Policy(services.store, services.router)
    checks = None
    if name == "smtp":
        config = services.config
        checks = InboundChecks(
            config.inbound,
            services.resolver,
            config.server.hostname,
            clock=services.clock,
            sealer=services.signer.seal if services.signer else None,
            verifier=services.verifier,
        )
    return smtpd_server.make_handler(
        services.config, services.store, policy, services.authenticator, services.tls, name, checks
    )


def _imap(services: Services, name: str) -> Handler:
    return imapd_server.make_handler(
        services.config, services.store, services.authenticator, services.tls, name
    )


def service_factories() -> dict[str, ServiceFactory]:
    """Listener name -> the factory of its connection handler, for the services this build has."""
    return {"smtp": _smtp, "submission": _smtp, "submissions": _smtp, "imap": _imap, "imaps": _imap}


def configure_logging(config: Config) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ConnectionIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(conn)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log.level.upper())


def _tracked(services: Services, handler: Handler) -> Handler:
    """Wrap a handler so a clean shutdown can wait for the connections it is serving."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        services.connections.add(task)
        try:
            await handler(reader, writer)
        finally:
            services.connections.discard(task)

    return serve


async def run(
    config: Config,
    *,
    ready: Callable[[Services, list[asyncio.Server]], Awaitable[None] | None] | None = None,
    stop: asyncio.Event | None = None,
    shutdown_grace: float = 30.0,
    passwords: Passwords | None = None,
    resolver: Resolver | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set): stop accepting, let connections finish, close the store."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    store = await SqliteStore.open(
        config.data_dir, max_group=config.storage.group_commit_max, inline_max=config.storage.inline_max
    )
    services = Services(
        config=config,
        store=store,
        tls=TlsContextHolder(config),
        router=Router(store),
        authenticator=Authenticator(store, passwords or Passwords()),
        resolver=resolver or DnspythonResolver(config.dns.resolver),
        clock=clock,
    )
    services.signer = DkimSigner(config, services.router)
    services.verifier = _verifier(config, injected_resolver=resolver is not None)
    servers: list[asyncio.Server] = []
    worker = QueueWorker(
        store,
        services.resolver,
        config,
        NotificationDelivery(store, services.router),
        clock=clock,
        signer=services.signer.sign,
    )
    services.queue = worker
    store.changes.subscribe_queue(lambda _change: worker.wakeup.set())
    worker_task = asyncio.create_task(worker.run(stop), name="queue-worker")
    try:
        if services.verifier is not None:
            await services.verifier.start()
        _install_signals(loop, stop, services)
        servers = await _start_listeners(services)
        log.info("ready listeners=%d data_dir=%s", len(servers), config.data_dir)
        if ready is not None:
            result = ready(services, servers)
            if result is not None:
                await result
        await stop.wait()
        log.info("stopping: no new connections; waiting for %d in flight", len(services.connections))
    finally:
        for server in servers:
            server.close()
        await _drain(services, shutdown_grace)
        stop.set()
        await worker_task
        if services.verifier is not None:
            await services.verifier.close()
        _remove_signals(loop)
        await store.close()
        log.info("stopped")


def _verifier(config: Config, *, injected_resolver: bool) -> VerifyProcesses | None:
    """Helper processes for port 25's content checks. A resolver handed to `run` (tests' fakes) lives in
    this process only, so with one the checks stay here."""
    inbound = config.inbound
    if injected_resolver or not inbound.verify or not inbound.verify_processes or not config.listen.smtp:
        return None
    return VerifyProcesses(inbound.verify_processes, config.dns.resolver, config.server.hostname, inbound)


async def _start_listeners(services: Services) -> list[asyncio.Server]:
    factories = service_factories()
    servers = []
    for name in LISTENER_NAMES:
        addresses = getattr(services.config.listen, name)
        if not addresses:
            continue
        factory = factories.get(name)
        if factory is None:
            log.warning("service=%s is configured but this build does not provide it yet", name)
            continue
        handler = _tracked(services, factory(services, name))
        for address in addresses:
            servers.append(await start_listener(name, address, handler))
    return servers


async def _drain(services: Services, grace: float) -> None:
    if not services.connections:
        return
    _, pending = await asyncio.wait(set(services.connections), timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, services: Services) -> None:
    def reload_tls() -> None:
        try:
            services.tls.reload()
            log.info("TLS certificate reloaded")
        except (OSError, ValueError) as error:
            log.error("TLS certificate reload failed, keeping the old one: %s", error)

    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_tls)
    except (NotImplementedError, RuntimeError):  # not the main thread (tests): the stop event is used instead
        pass


def _remove_signals(loop: asyncio.AbstractEventLoop) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signum)
