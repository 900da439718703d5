"""Command line: argparse entry points that call admin functions and app.run().

Every failure is one line on stderr and a non-zero exit status: 2 for configuration and usage problems, 1 for
requests that could not be carried out. No traceback reaches the person at the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from kittiwake import __version__
from kittiwake.cli import manage, operate, queue_commands, setup
from kittiwake.cli.errors import CliError
from kittiwake.config import ConfigError
from kittiwake.store.errors import KittiwakeError

DEFAULT_CONFIG = "kittiwake.toml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kittiwake",
        description="A complete mail server: SMTP, IMAP and an outbound queue in one program.",
    )
    parser.add_argument("--version", action="version", version=f"kittiwake {__version__}")
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        default=os.environ.get("KITTIWAKE_CONFIG", DEFAULT_CONFIG),
        help=f"configuration file (default: $KITTIWAKE_CONFIG or ./{DEFAULT_CONFIG})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    setup.add_commands(commands)
    manage.add_commands(commands)
    operate.add_commands(commands)
    queue_commands.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as error:
        print(f"kittiwake: {error}", file=sys.stderr)
        return 2
    except CliError as error:
        print(f"kittiwake: {error}", file=sys.stderr)
        return error.status
    except KittiwakeError as error:
        print(f"kittiwake: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
