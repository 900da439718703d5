"""Domains, users and aliases, with the validation a person typing them needs."""

from __future__ import annotations

import asyncio
import re

from kittiwake.auth.passwords import Passwords
from kittiwake.store import errors
from kittiwake.store.interface import Store
from kittiwake.store.models import Account

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[^\s@\"()<>,;:\\\[\]]+$")


class AdminError(errors.KittiwakeError):
    """A request an administrator made that cannot be carried out; the message says why."""


def normalize_domain(name: str) -> str:
    """Lower-case A-label form (IDNA, RFC 5890); raises AdminError for something that is not a domain."""
    text = name.strip().rstrip(".")
    try:
        ascii_name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AdminError(f"{name!r} is not a valid domain name") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or len(ascii_name) > 253:
        raise AdminError(f"{name!r} is not a valid domain name")
    return ascii_name


def normalize_address(address: str, *, allow_catch_all: bool = False) -> str:
    """local@domain, lower-cased (mailbox names are compared without case, as most servers do)."""
    local, at, domain = address.strip().rpartition("@")
    if not at or (not local and not allow_catch_all):
        raise AdminError(f"{address!r} is not an address (expected local@domain)")
    if local and (not _LOCAL.match(local) or len(local) > 64 or local.startswith(".") or ".." in local):
        raise AdminError(f"{address!r} has an invalid local part")
    return f"{local.lower()}@{normalize_domain(domain)}"


async def add_domain(store: Store, name: str) -> str:
    domain = normalize_domain(name)
    await store.add_domain(domain)
    return domain


async def add_user(store: Store, passwords: Passwords, address: str, password: str) -> Account:
    address = normalize_address(address)
    if "+" in address.partition("@")[0]:
        raise AdminError("'+' is reserved for sub-addresses (user+tag@domain reaches user@domain)")
    domain = address.rpartition("@")[2]
    if domain not in {d.name for d in await store.list_domains()}:
        raise AdminError(f"{domain} is not one of our domains; add it with 'kittiwake domain add {domain}'")
    check_password(password)
    if await store.get_alias(address) is not None:
        raise AdminError(f"{address} is already an alias")
    password_hash = await asyncio.to_thread(passwords.hash, password)
    return await store.add_account(address, password_hash)


async def set_password(store: Store, passwords: Passwords, address: str, password: str) -> None:
    address = normalize_address(address)
    check_password(password)
    account = await store.get_account(address)
    if account is None:
        raise errors.AccountNotFound(address)
    await store.set_password_hash(account.id, await asyncio.to_thread(passwords.hash, password))


def check_password(password: str) -> None:
    if len(password) < 8:
        raise AdminError("the password must have at least 8 characters")


async def add_alias(store: Store, source: str, targets: list[str]) -> str:
    source = normalize_address(source, allow_catch_all=True)
    domain = source.rpartition("@")[2]
    if domain not in {d.name for d in await store.list_domains()}:
        raise AdminError(f"{domain} is not one of our domains")
    if await store.get_account(source) is not None:
        raise AdminError(f"{source} is a user; an alias cannot have the same address")
    if not targets:
        raise AdminError("an alias needs at least one target address")
    await store.add_alias(source, [normalize_address(t) for t in targets])
    return source
