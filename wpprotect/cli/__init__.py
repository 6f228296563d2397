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
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from wpprotect.errors import WPProtectError

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
    "wpprotect.cli._agent",
    "wpprotect.cli._demo",
)

# The command word each module registers, so that `wpprotect tc scan` imports only
# wpprotect.cli._tc (start-up time is most of a whole-process scan).
_COMMAND_MODULES = {
    "doctor": "wpprotect.cli._doctor",
    "tc": "wpprotect.cli._tc",
    "self-test": "wpprotect.cli._agent",
    "flare": "wpprotect.cli._agent",
    "disable": "wpprotect.cli._agent",
    "demo": "wpprotect.cli._demo",
}

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


def _terminal_width() -> int:
    """shutil.get_terminal_size().columns, without importing shutil (and its bz2/lzma) at every
    start: $COLUMNS, else the terminal on stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _WidthMixin:
    """Gives argparse's formatters the terminal width argparse itself would (minus 2), computed
    on demand: ``add_argument`` builds a formatter for every argument it checks."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_width() - 2
        super().__init__(prog, indent_increment, max_help_position, width)  # type: ignore[call-arg]


class _Formatter(_WidthMixin, argparse.HelpFormatter):
    pass


class _RawDescriptionFormatter(_WidthMixin, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors: one line, exit 2, as for every other usage error.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full argument parser (used by :func:`main` and by the docs' CLI reference).

    Every subcommand also accepts ``--debug`` and ``--no-color`` after its name.

    :param modules: register only these subcommand modules (default: all of them).
    """
    from wpprotect import __version__

    parser = _Parser(
        prog="wpprotect",
        description="Operate Datadog Workload Protection (CWS): doctor, TC conflicts, "
        "self-test, flare and disable.",
        epilog=_EPILOG,
        formatter_class=_RawDescriptionFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wpprotect {__version__}")
    _add_common(parser, default=False)
    # prog given: argparse would otherwise build a help formatter (and import shutil for the
    # terminal width) only to print "wpprotect" into the subcommands' usage.
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, prog=parser.prog
    )
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
    import logging

    logging.getLogger(__name__).debug("cannot load %s", name, exc_info=True)
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
    """Print one error line (imported on the error path only: the output layer costs start-up)."""
    from wpprotect.cli._output import error_line as write

    write(message)


def _json_error(args: argparse.Namespace, kind: str, message: str) -> None:
    if getattr(args, "json", False):
        from wpprotect.cli._output import print_json

        print_json({"error": {"type": kind, "message": message}})


def _command_module(argv: Sequence[str]) -> str | None:
    """The module of the command word in ``argv`` (global options take no values), if known."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return _COMMAND_MODULES.get(arg)
    return None


_exit_freeze_registered = False


def _freeze_at_exit() -> None:
    """At interpreter exit, move every object to the collector's permanent generation.

    Shutdown runs one full cyclic collection over everything still alive (every module's
    functions, classes and constants: attrs, typing, argparse...), whatever ``gc.isenabled()``
    says: ~5 ms of a ~100 ms `tc scan`. Frozen objects are skipped by it; modules are still
    cleared and their objects freed by reference counting. Registered with atexit, so nothing
    changes while the process (or a program embedding :func:`main`) runs.
    """
    global _exit_freeze_registered  # noqa: PLW0603 - registered once per process
    if not _exit_freeze_registered:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _exit_freeze_registered = True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    _freeze_at_exit()
    argv = list(sys.argv[1:] if argv is None else argv)
    module = _command_module(argv)
    parser = build_parser(None if module is None else [module])
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


def _configure_logging(debug: bool, *, defer: bool = False) -> None:
    if defer and not debug:
        # A command that usually logs nothing (it says so with set_defaults(defer_logging=True))
        # does not import logging just to configure it: done when its first logger is got.
        from wpprotect import _log

        _log.defer_config(30, _LOG_FORMAT)  # logging.WARNING
        return
    import logging

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format=_LOG_FORMAT)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, debug: bool) -> int:
    defer = bool(getattr(args, "defer_logging", False))
    _configure_logging(debug, defer=defer)
    try:
        return _run_handler(parser, args, debug)
    finally:
        if defer:
            from wpprotect import _log

            _log.defer_config(None)  # an embedding program's own set-up is left alone


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
