"""`kittiwake domain|user|alias ...`: manage who receives mail here."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from kittiwake.admin import accounts
from kittiwake.admin.keys import dkim_key_path, make_dkim_key
from kittiwake.auth.passwords import Passwords
from kittiwake.cli.context import load, with_store
from kittiwake.cli.errors import CliError
from kittiwake.store.errors import KittiwakeError
from kittiwake.store.sqlite import SqliteStore


def add_commands(commands: Any) -> None:
    domain = commands.add_parser("domain", help="add, list or remove mail domains")
    domain_actions = domain.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub = domain_actions.add_parser("add", help="receive mail for a domain (also makes its DKIM key)")
    sub.add_argument("name")
    sub.set_defaults(handler=domain_add)
    domain_actions.add_parser("list", help="list domains").set_defaults(handler=domain_list)
    sub = domain_actions.add_parser("remove", help="stop receiving mail for a domain with no users")
    sub.add_argument("name")
    sub.set_defaults(handler=domain_remove)

    user = commands.add_parser("user", help="add, list or remove users, change passwords")
    user_actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, text in (
        ("add", user_add, "add a user (asks for the password twice)"),
        ("passwd", user_passwd, "change a user's password"),
    ):
        sub = user_actions.add_parser(name, help=text)
        sub.add_argument("address")
        sub.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        sub.set_defaults(handler=handler)
    user_actions.add_parser("list", help="list users").set_defaults(handler=user_list)
    sub = user_actions.add_parser("remove", help="remove a user and all their mail")
    sub.add_argument("address")
    sub.set_defaults(handler=user_remove)

    alias = commands.add_parser("alias", help="add, list or remove aliases; @domain is a catch-all")
    alias_actions = alias.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub = alias_actions.add_parser("add", help="deliver mail for SOURCE to each TARGET")
    sub.add_argument("source", help="local@domain, or @domain for every unknown address of the domain")
    sub.add_argument("targets", nargs="+", metavar="TARGET")
    sub.set_defaults(handler=alias_add)
    alias_actions.add_parser("list", help="list aliases").set_defaults(handler=alias_list)
    sub = alias_actions.add_parser("remove", help="remove an alias")
    sub.add_argument("source")
    sub.set_defaults(handler=alias_remove)


def _run(args: argparse.Namespace, action: Any) -> Any:
    config = load(args)
    try:
        return with_store(config, action)
    except KittiwakeError as error:
        raise CliError(str(error)) from None


def domain_add(args: argparse.Namespace) -> int:
    config = load(args)
    name = _run(args, lambda store: accounts.add_domain(store, args.name))
    key = dkim_key_path(config.path(config.dkim.key_dir), name, config.dkim.selector)
    if not key.exists():
        make_dkim_key(key)
    print(f"added domain {name}; publish its records: kittiwake --config {args.config} dns")
    return 0


def domain_list(args: argparse.Namespace) -> int:
    for domain in _run(args, lambda store: store.list_domains()):
        print(domain.name)
    return 0


def domain_remove(args: argparse.Namespace) -> int:
    name = accounts.normalize_domain(args.name)
    _run(args, lambda store: store.remove_domain(name))
    print(f"removed domain {name}")
    return 0


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("the passwords differ")
    else:
        raise CliError("no terminal to ask for a password; use --password-stdin")
    if not password:
        raise CliError("empty password")
    return password


def user_add(args: argparse.Namespace) -> int:
    password = read_password(args)

    async def action(store: SqliteStore) -> str:
        account = await accounts.add_user(store, Passwords(), args.address, password)
        return account.address

    print(f"added user {_run(args, action)}")
    return 0


def user_passwd(args: argparse.Namespace) -> int:
    password = read_password(args)
    _run(args, lambda store: accounts.set_password(store, Passwords(), args.address, password))
    print("password changed")
    return 0


def user_list(args: argparse.Namespace) -> int:
    for account in _run(args, lambda store: store.list_accounts()):
        print(account.address)
    return 0


def user_remove(args: argparse.Namespace) -> int:
    address = accounts.normalize_address(args.address)
    _run(args, lambda store: store.remove_account(address))
    print(f"removed user {address} and their mail")
    return 0


def alias_add(args: argparse.Namespace) -> int:
    source = _run(args, lambda store: accounts.add_alias(store, args.source, args.targets))
    print(f"added alias {source}")
    return 0


def alias_list(args: argparse.Namespace) -> int:
    for alias in _run(args, lambda store: store.list_aliases()):
        print(f"{alias.source} -> {', '.join(alias.targets)}")
    return 0


def alias_remove(args: argparse.Namespace) -> int:
    source = accounts.normalize_address(args.source, allow_catch_all=True)
    _run(args, lambda store: store.remove_alias(source))
    print(f"removed alias {source}")
    return 0
