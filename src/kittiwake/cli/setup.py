"""`kittiwake init` and `kittiwake quickstart`: a working server from nothing."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

from kittiwake.admin import accounts
from kittiwake.admin.config_template import render_config
from kittiwake.admin.keys import dkim_key_path, make_dkim_key, make_self_signed_certificate
from kittiwake.auth.passwords import Passwords
from kittiwake.cli.context import open_store
from kittiwake.cli.errors import CliError
from kittiwake.config import load_config

DEV_PORTS = {"smtp": 2525, "submission": 5587, "submissions": 5465, "imap": 1143, "imaps": 1993}
STANDARD_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993}


def add_commands(commands: Any) -> None:
    init = commands.add_parser(
        "init", help="create a configuration, data folder, TLS certificate and DKIM key"
    )
    init.add_argument("directory", type=Path)
    init.add_argument("--domain", required=True, help="the first mail domain, e.g. example.org")
    init.add_argument("--hostname", help="this server's host name (default: mail.<domain>)")
    init.add_argument("--dev-ports", action="store_true", help="listen on 127.0.0.1 with unprivileged ports")
    init.set_defaults(handler=run_init)

    quick = commands.add_parser(
        "quickstart", help="try kittiwake now: a test domain, one user, a server on unprivileged ports"
    )
    quick.add_argument("directory", type=Path, nargs="?", default=Path("kittiwake-data"))
    quick.add_argument("--domain", default="example.test")
    quick.set_defaults(handler=run_quickstart)


def initialise(directory: Path, domain: str, hostname: str, *, dev_ports: bool) -> Path:
    """Write DIR/kittiwake.toml, the TLS pair, the DKIM key and an empty store; refuses to overwrite."""
    config_file = directory / "kittiwake.toml"
    if config_file.exists():
        raise CliError(f"{config_file} already exists; not overwriting it")
    domain = accounts.normalize_domain(domain)
    host = "127.0.0.1" if dev_ports else "0.0.0.0"
    ports = DEV_PORTS if dev_ports else STANDARD_PORTS
    overrides: dict[str, object] = {"server.hostname": hostname}
    overrides.update({f"listen.{name}": (f"{host}:{port}",) for name, port in ports.items()})
    directory.mkdir(parents=True, exist_ok=True)
    config_file.write_text(render_config(overrides), encoding="utf-8")
    config = load_config(config_file)
    cert, key = config.path(config.tls.cert), config.path(config.tls.key)
    if not cert.exists() and not key.exists():
        make_self_signed_certificate(hostname, cert, key)
    dkim = dkim_key_path(config.path(config.dkim.key_dir), domain, config.dkim.selector)
    if not dkim.exists():
        make_dkim_key(dkim)

    async def create_store() -> None:
        store = await open_store(config)
        try:
            await store.add_domain(domain)
        finally:
            await store.close()

    asyncio.run(create_store())
    return config_file


def run_init(args: argparse.Namespace) -> int:
    domain = accounts.normalize_domain(args.domain)
    hostname = args.hostname or f"mail.{domain}"
    config_file = initialise(args.directory, domain, hostname, dev_ports=args.dev_ports)
    print(f"created {config_file}")
    print(f"next: kittiwake --config {config_file} user add you@{domain}")
    print(f"then: kittiwake --config {config_file} dns   (records to publish)")
    print(f"then: kittiwake --config {config_file} serve")
    return 0


def run_quickstart(args: argparse.Namespace) -> int:
    from kittiwake.cli.operate import serve_config

    directory: Path = args.directory
    config_file = directory / "kittiwake.toml"
    dev_ports = os.geteuid() != 0
    if not config_file.exists():
        initialise(directory, args.domain, "localhost", dev_ports=dev_ports)
        password = secrets.token_urlsafe(12)
        address = f"you@{accounts.normalize_domain(args.domain)}"
        config = load_config(config_file)

        async def add_user() -> None:
            store = await open_store(config)
            try:
                await accounts.add_user(store, Passwords(), address, password)
            finally:
                await store.close()

        asyncio.run(add_user())
        print(f"user:     {address}")
        print(f"password: {password}")
    else:
        print(f"using {config_file} (delete the folder to start afresh)")
    return serve_config(load_config(config_file))
