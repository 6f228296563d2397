"""The ``wpprotect`` command: a thin layer over the public API.

Each subcommand lives in its own module with a ``register(subparsers)`` function; handlers return
the exit status: 0 nothing wrong, 1 a finding or a failed test needs action, 2 a usage or
environment error. Output goes through :mod:`wpprotect.cli._output` (tables and colour for
people, ``--json`` for machines, progress bars on stderr).

Errors: a :class:`~wpprotect.WPProtectError` or an ``OSError`` is one line on stderr and exit
status 2 (with ``--json``, also ``{"error": {...}}`` on stdout); any other exception is reported
the same way as an internal error. ``--debug`` shows the traceback instead. Ctrl-C and SIGTERM
unwind (temporary namespaces, files and processes are removed) and exit with 130 and 143.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from wpprotect.cli._output import error_line, print_json
from wpprotect.errors import WPProtectError

log = logging.getLogger(__name__)

__all__ = [
    "EXIT_ACTION",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Terminated",
    "build_parser",
    "main",
]

#: Nothing wrong.
EXIT_OK = 0
#: A finding, a problem or a failed test needs action.
EXIT_ACTION = 1
#: A usage or environment error (one line on stderr).
EXIT_USAGE = 2
#: 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
#: 128 + SIGTERM.
EXIT_TERMINATED = 143

# Subcommand modules, in the order `wpprotect --help` lists them.
_COMMANDS = (
    "wpprotect.cli._doctor",
    "wpprotect.cli._tc",
    "wpprotect.cli._tc_fleet",
    "wpprotect.cli._agent",
    "wpprotect.cli._demo",
)

_EPILOG = """\
exit status:
  0  nothing wrong
  1  a finding, a problem or a failed test needs action
  2  usage or environment error (one line on stderr; --debug shows the traceback)

examples:
  wpprotect doctor                        what is installed, where, and what is wrong
  sudo wpprotect tc scan --netns all      which classifiers blind network detection
  sudo wpprotect demo                     the same on a throwaway namespace, then cleaned up
  wpprotect disable --platform host --scope network --dry-run

NO_COLOR=1 turns colour off; output to a pipe or a file is never coloured.
"""


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that ``finally`` blocks and context managers
    unwind exactly as on Ctrl-C (a KeyboardInterrupt subclass for that reason)."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors: one line, exit 2, as for every other usage error.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full argument parser (used by :func:`main` and by the docs' CLI reference).

    Every subcommand also accepts ``--debug`` and ``--no-color`` after its name.

    :param modules: register only these subcommand modules (default: all of them).
    """
    from wpprotect._version import __version__

    parser = _Parser(
        prog="wpprotect",
        description="Operate Datadog Workload Protection (CWS): doctor, TC conflicts, "
        "self-test, flare and disable.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wpprotect {__version__}")
    _add_common(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMANDS if modules is None else modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a subcommand not built in this install
            _broken(name, exc)
            continue
        except ImportError as exc:
            _broken(name, exc)
            continue
        module.register(sub)
    for choice in sub.choices.values():
        _add_common_tree(choice)
    return parser


def _broken(name: str, exc: BaseException) -> None:
    # One broken subcommand module must not take `wpprotect doctor` down with it.
    log.debug("cannot load %s", name, exc_info=True)
    print(f"wpprotect: warning: the commands in {name} are unavailable: {exc}", file=sys.stderr)


def _add_common(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """``--debug`` and ``--no-color``; on subcommands their default is SUPPRESS so that a value
    given before the subcommand is not reset by the subparser's own default."""
    names = {a for action in parser._actions for a in action.option_strings}
    if "--debug" not in names:
        parser.add_argument(
            "--debug",
            action="store_true",
            default=default,
            help="log debug messages and show tracebacks",
        )
    if "--no-color" not in names:
        parser.add_argument(
            "--no-color",
            action="store_true",
            default=default,
            help="no colour (same as NO_COLOR=1)",
        )


def _add_common_tree(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, default=argparse.SUPPRESS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_common_tree(child)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the command runs (main thread only, and only
    when nobody else handles SIGTERM, e.g. when embedded)."""
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:  # pragma: no cover - not on this platform
        yield
        return
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error_line(message: str) -> None:
    """Print one error line."""
    error_line(message)


def _json_error(args: argparse.Namespace, kind: str, message: str) -> None:
    if getattr(args, "json", False):
        print_json({"error": {"type": kind, "message": message}})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if getattr(args, "no_color", False):
        # Every writer asks color_enabled(), which reads NO_COLOR; restored on the way out so an
        # embedding process (or a test calling main()) keeps its own environment.
        previous = os.environ.get("NO_COLOR")
        os.environ["NO_COLOR"] = "1"
        try:
            return _run(parser, args, debug)
        finally:
            if previous is None:
                os.environ.pop("NO_COLOR", None)
            else:
                os.environ["NO_COLOR"] = previous
    return _run(parser, args, debug)


_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format=_LOG_FORMAT)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, debug: bool) -> int:
    _configure_logging(debug)
    return _run_handler(parser, args, debug)


def _run_handler(parser: argparse.ArgumentParser, args: argparse.Namespace, debug: bool) -> int:
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with _sigterm_unwinds():
            return int(handler(args))
    except Terminated:
        print("wpprotect: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("wpprotect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`wpprotect ... | head`): not an error worth a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except (WPProtectError, OSError) as exc:  # usage and environment errors: one line, exit 2
        if debug:
            raise
        _error_line(str(exc))
        _json_error(args, type(exc).__name__, str(exc))
        return EXIT_USAGE
    except Exception as exc:
        if debug:
            raise
        _error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")
        _json_error(args, "InternalError", f"{type(exc).__name__}: {exc}")
        return EXIT_USAGE
