"""The ``wpprotect`` command: a thin layer over the public API.

Each subcommand lives in its own module with a ``register(subparsers)`` function; handlers return
the exit status: 0 nothing wrong, 1 a finding or a failed test needs action, 2 a usage or
environment error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from wpprotect.errors import WPProtectError

__all__ = ["EXIT_ACTION", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_ACTION = 1
EXIT_USAGE = 2

# Subcommand modules, in the order `wpprotect --help` lists them.
_COMMANDS = (
    "wpprotect.cli._doctor",
    "wpprotect.cli._tc",
    "wpprotect.cli._agent",
    "wpprotect.cli._demo",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors: one line, exit 2, as for every other usage error.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by :func:`main` and by the docs' CLI reference)."""
    from wpprotect import __version__

    parser = _Parser(
        prog="wpprotect",
        description="Operate Datadog Workload Protection (CWS): doctor, TC conflicts, "
        "self-test, flare and disable.",
    )
    parser.add_argument("--version", action="version", version=f"wpprotect {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="log debug messages and show tracebacks"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a subcommand not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(handler(args))
    except WPProtectError as exc:
        if args.debug:
            raise
        print(f"wpprotect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("wpprotect: interrupted", file=sys.stderr)
        return 130
