"""Opening what a command needs: the configuration and the store, with errors worded for people."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from kittiwake.cli.errors import CliError
from kittiwake.config import Config, load_config
from kittiwake.store.errors import KittiwakeError
from kittiwake.store.sqlite import SqliteStore

T = TypeVar("T")


def load(args: argparse.Namespace) -> Config:
    path = Path(args.config)
    if not path.exists():
        raise CliError(
            f"{path}: no configuration file; make one with 'kittiwake init DIR --domain example.org'"
            " and pass it with --config",
            2,
        )
    return load_config(path)


async def open_store(config: Config) -> SqliteStore:
    # A running server may be receiving mail right now: leave crash recovery to `serve`.
    return await SqliteStore.open(
        config.data_dir,
        max_group=config.storage.group_commit_max,
        inline_max=config.storage.inline_max,
        recover=False,
    )


def with_store(config: Config, action: Callable[[SqliteStore], Awaitable[T]]) -> T:
    """Run one store action, turning refusals (unknown user, duplicate domain...) into a CLI message."""

    async def run() -> T:
        store = await open_store(config)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except KittiwakeError as error:
        raise CliError(_describe(error)) from None


def _describe(error: KittiwakeError) -> str:
    kind = type(error).__name__
    words = {
        "DomainExists": "domain already exists",
        "DomainNotFound": "no such domain",
        "AccountExists": "user already exists",
        "AccountNotFound": "no such user",
        "AliasNotFound": "no such alias",
    }.get(kind)
    return f"{words}: {error}" if words else str(error)
