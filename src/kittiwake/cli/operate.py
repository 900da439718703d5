"""`kittiwake serve|dns|check`: run the server, print DNS records, check an installation."""

from __future__ import annotations

import argparse
import asyncio
import ssl
from typing import Any

from kittiwake import collector
from kittiwake.admin.dns_records import host_records, records_for
from kittiwake.cli.context import load, open_store
from kittiwake.cli.errors import CliError
from kittiwake.config import Config


def add_commands(commands: Any) -> None:
    commands.add_parser("serve", help="run every configured service until SIGTERM or SIGINT").set_defaults(
        handler=run_serve
    )
    commands.add_parser("dns", help="print the DNS records to publish for every domain").set_defaults(
        handler=run_dns
    )
    commands.add_parser("check", help="check the configuration, TLS files and the store").set_defaults(
        handler=run_check
    )


def serve_config(config: Config) -> int:
    from kittiwake.app import configure_logging, run

    configure_logging(config)
    collector.tune_for_serving()
    try:
        asyncio.run(run(config, ready=lambda _services, _servers: collector.freeze_startup()))
    except OSError as error:
        raise CliError(f"cannot start: {error}") from None
    return 0


def run_serve(args: argparse.Namespace) -> int:
    return serve_config(load(args))


def run_dns(args: argparse.Namespace) -> int:
    config = load(args)

    async def domains() -> list[str]:
        store = await open_store(config)
        try:
            return [d.name for d in await store.list_domains()]
        finally:
            await store.close()

    names = asyncio.run(domains())
    if not names:
        raise CliError("no domains yet; add one with 'kittiwake domain add example.org'")
    lines = host_records(config.server.hostname)
    for name in names:
        lines += [
            "",
            *records_for(
                name, config.server.hostname, config.path(config.dkim.key_dir), config.dkim.selector
            ),
        ]
    print("\n".join(lines))
    return 0


def check_tls(config: Config) -> list[str]:
    cert, key = config.path(config.tls.cert), config.path(config.tls.key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        return [f"TLS: cannot load {cert} with {key}: {error}"]
    return []


def run_check(args: argparse.Namespace) -> int:
    config = load(args)
    problems = check_tls(config)

    async def verify() -> list[str]:
        store = await open_store(config)
        try:
            return await store.verify()
        finally:
            await store.close()

    problems += asyncio.run(verify())
    for problem in problems:
        print(problem)
    if problems:
        raise CliError(f"{len(problems)} problem(s) found")
    print(f"{config.source}: configuration, TLS files and store are fine")
    return 0
