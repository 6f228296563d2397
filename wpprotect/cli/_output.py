"""The CLI's shared output layer: tables and colour for people, JSON for machines, progress bars.

Every subcommand prints through this module so that the whole CLI behaves the same way:

- colour only on a terminal, never when ``NO_COLOR`` is set (https://no-color.org) or
  ``TERM=dumb``, and never in ``--json`` output;
- ``--json`` prints exactly one JSON document on stdout (:func:`print_json`), with stable keys;
- human output goes to stdout, diagnostics and progress to stderr, so ``wpprotect ... | jq`` and
  ``wpprotect ... > report.txt`` stay clean;
- a usage or environment error is one line on stderr (:func:`error_line`), exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path as _Path
from typing import Any, Literal, TextIO

from wpprotect._closing import Closing

__all__ = [
    "JSON_SCHEMA_VERSION",
    "Progress",
    "Role",
    "Styler",
    "add_dry_run_option",
    "add_host_dir_options",
    "add_json_option",
    "color_enabled",
    "error_line",
    "format_table",
    "print_json",
    "safe_text",
    "strip_ansi",
    "to_jsonable",
]

#: Bumped only when a key of the JSON documents is renamed or removed (additions keep it).
JSON_SCHEMA_VERSION = 1

Role = Literal["ok", "problem", "skipped", "error", "heading", "dim", "code", "warn"]

# SGR codes per role; kept to the 8 basic colours so every terminal renders them.
_SGR: dict[str, str] = {
    "ok": "32",  # green
    "problem": "33;1",  # bold yellow: needs action, not a crash
    "warn": "33",
    "error": "31;1",  # bold red
    "skipped": "2",  # dim
    "dim": "2",
    "heading": "1",
    "code": "36",  # cyan: a command to copy
}

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


# C0 controls but tab and newline, DEL, C1 controls (\x9b is a one-byte CSI), and the Unicode
# bidirectional overrides that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SGR_SEQ = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_text(value: object, *, multiline: bool = False) -> str:
    """``value`` as text safe to print to a terminal: every control character (``ESC``
    included, so no escape sequence can clear the screen, move the cursor or retitle the
    window) is shown escaped, e.g. ``\\x1b``.

    Every human printer passes remote strings (flare member names, container and pod names,
    agent output, file contents) through it; JSON output needs no such step.

    >>> safe_text("flare\x1b[2J.log")
    'flare\\x1b[2J.log'

    :param value: anything; ``str()`` of it is used.
    :param multiline: keep newlines and tabs (for diffs and command output).
    :returns: the text with control characters escaped.
    """
    pattern = _UNSAFE if multiline else _UNSAFE_LINE
    return pattern.sub(lambda m: repr(m.group(0))[1:-1], str(value))


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (used to measure and to test output)."""
    return _ANSI_RE.sub("", text)


def color_enabled(stream: TextIO, *, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what is written to ``stream``.

    No colour when ``NO_COLOR`` is set to any non-empty value, when ``TERM`` is ``dumb``, or when
    ``stream`` is not a terminal (a pipe, a file, a notebook). ``FORCE_COLOR`` (non-empty)
    turns it on anyway, except that ``NO_COLOR`` always wins.

    :param stream: where the text goes.
    :param environ: the environment to read (defaults to ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):  # a closed or detached stream
        return False


class Styler:
    """Applies colour roles to text, or leaves it plain when colour is off.

    :param enabled: colour on or off; ``None`` decides with :func:`color_enabled` on ``stream``.
    :param stream: the stream the text is for (default stdout).
    """

    def __init__(self, enabled: bool | None = None, *, stream: TextIO | None = None) -> None:
        self.enabled = (
            color_enabled(stream if stream is not None else sys.stdout)
            if enabled is None
            else enabled
        )

    def __call__(self, text: str, role: Role) -> str:
        """``text`` wrapped in the SGR codes for ``role`` (unchanged when colour is off)."""
        if not self.enabled or not text:
            return text
        return f"\x1b[{_SGR[role]}m{text}\x1b[0m"

    def status(self, status: str) -> str:
        """A check or result status word (``ok``, ``problem``, ``skipped``, ``error``) coloured."""
        role: Role = status if status in ("ok", "problem", "skipped", "error") else "dim"  # type: ignore[assignment]
        return self(status, role)

    def __repr__(self) -> str:
        return f"<Styler {'colour' if self.enabled else 'plain'}>"


def format_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    styler: Styler | None = None,
    max_width: int | None = None,
) -> str:
    """A left-aligned text table, one line per row, columns separated by two spaces.

    Cells may already contain colour codes; widths are measured without them. ``None`` renders
    as ``-``. When ``max_width`` is given, the last column is cut (with ``…``) to fit.

    >>> print(format_table(["name", "status"], [["tc", "ok"], ["docker", None]]))
    name    status
    tc      ok
    docker  -

    :param headers: column titles.
    :param rows: the cells, converted with ``str()``.
    :param styler: used to make the header line bold.
    :param max_width: the terminal width to fit into, if any.
    :returns: the table, without a trailing newline.
    """
    cells = [[_cell(c) for c in row] for row in rows]
    ncols = len(headers)
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row[:ncols]):
            widths[i] = max(widths[i], len(strip_ansi(cell)))
    style = styler or Styler(False)
    lines = [_join([style(h, "heading") for h in headers], widths, headers)]
    for row in cells:
        padded = list(row[:ncols]) + [""] * (ncols - len(row))
        lines.append(_join(padded, widths, padded))
    if max_width:
        lines = [_fit(line, max_width) for line in lines]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    # colours (SGR, e.g. from Styler) stay; every other control character is escaped, so a
    # remote name cannot clear the screen or move the cursor
    parts = _SGR_SEQ.split(str(value).replace("\n", " "))
    sgrs = _SGR_SEQ.findall(str(value).replace("\n", " "))
    return "".join(safe_text(p) + (sgrs[i] if i < len(sgrs) else "") for i, p in enumerate(parts))


def _join(cells: Sequence[str], widths: Sequence[int], plain: Sequence[str]) -> str:
    out = []
    for cell, width, raw in zip(cells, widths, plain, strict=True):
        out.append(cell + " " * (width - len(strip_ansi(raw))))
    return "  ".join(out)


def _fit(line: str, width: int) -> str:
    if len(strip_ansi(line)) <= width or "\x1b" in line:
        return line  # never cut through an escape sequence; coloured lines stay whole
    return line[: max(width - 1, 0)] + "…"


def to_jsonable(value: Any) -> Any:
    """``value`` converted to plain JSON types.

    Objects with a ``to_dict()`` (every wpprotect result) are converted through it; paths become
    strings, enums their value, sets and tuples lists; anything else (bytes included) is refused,
    never dumped raw.
    """
    from wpprotect._jsonable import jsonable

    return jsonable(value, fallback=None)


def print_json(value: Any, *, stream: TextIO | None = None) -> None:
    """Print ``value`` as one indented JSON document (keys in their given order) and a newline.

    :param value: a mapping, a list, or any wpprotect result (through ``to_dict()``).
    :param stream: where to print (default stdout).
    """
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")
    out.flush()


def error_line(message: str, *, stream: TextIO | None = None) -> None:
    """Print ``wpprotect: error: <message>`` as one line on stderr."""
    out = stream if stream is not None else sys.stderr
    text = safe_text(" ".join(str(message).split()))  # one line, whatever the message held
    out.write(f"wpprotect: error: {text}\n")
    out.flush()


def seconds_type(limit: float) -> Callable[[str], float]:
    """An argparse ``type`` for a duration: a number of seconds in ``(0, limit]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not 0 < value <= limit:
            raise argparse.ArgumentTypeError(f"must be in (0, {limit:g}] seconds, got {text}")
        return value

    return parse


def int_type(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}, got {text}")
        return value

    return parse


def add_timeout_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    default: float,
    what: str,
    *,
    limit: float = 86400.0,
) -> None:
    """Add ``--timeout SECONDS``: the deadline for ``what``."""
    parser.add_argument(
        "--timeout",
        type=seconds_type(limit),
        default=default,
        metavar="SECONDS",
        help=f"deadline for {what} (default: %(default)s)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add the CLI-wide ``--json`` option: one JSON document on stdout instead of tables."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout instead of tables (stable keys)",
    )


def add_dry_run_option(parser: argparse.ArgumentParser) -> None:
    """Add the CLI-wide ``--dry-run`` option: show the plan's diff, write nothing."""
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would change (the plan's diff) and write nothing",
    )


def add_host_dir_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--install-dir`` and ``--config-dir``: where a host install lives."""
    # Only the commands that act on a host install load the agent package for its layout.
    from wpprotect.agent._layout import DEFAULT_CONFIG_DIR, DEFAULT_INSTALL_DIR

    parser.add_argument(
        "--install-dir",
        type=_Path,
        default=DEFAULT_INSTALL_DIR,
        metavar="DIR",
        help="the agent's install directory (default: %(default)s)",
    )
    parser.add_argument(
        "--config-dir",
        type=_Path,
        default=DEFAULT_CONFIG_DIR,
        metavar="DIR",
        help="the agent's config directory, with system-probe.yaml and security-agent.yaml "
        "(default: %(default)s)",
    )


class Progress(Closing):
    """A progress bar on stderr for fleet operations; silent when stderr is not a terminal.

    Use it as a context manager and call :meth:`advance` once per finished item (it is also a
    plain callable, so it can be handed to code that reports ``(done, total, label)``)::

        with Progress(len(agents), "self-test") as bar:
            for agent in agents:
                result = agent.self_test()
                bar.advance(label=agent.target)

    :param total: the number of items (0 or unknown: a counter without a bar).
    :param label: what is being done, shown before the bar.
    :param stream: where to draw (default stderr).
    :param enabled: draw or not; ``None`` draws only on a terminal.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._tty() if enabled is None else enabled
        self._width = width
        self._clock = clock
        self._started = clock()
        self._last = ""

    def _tty(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        try:
            return bool(isatty()) if isatty is not None else False
        except (OSError, ValueError):
            return False

    def render(self, note: str = "") -> str:
        """The current bar as text, e.g. ``self-test [#######-------] 3/7 node-a (2.1 s)``."""
        elapsed = self._clock() - self._started
        if self.total:
            filled = round(self._width * min(self.done, self.total) / self.total)
            bar = "[" + "#" * filled + "-" * (self._width - filled) + "]"
            count = f"{self.done}/{self.total}"
        else:
            bar, count = "", str(self.done)
        parts = [p for p in (self.label, bar, count, note, f"({elapsed:.1f} s)") if p]
        return " ".join(parts)

    def advance(self, n: int = 1, *, label: str = "") -> None:
        """Count ``n`` more items done and redraw; ``label`` names the last one."""
        self.done += n
        self._draw(label)

    def __call__(self, done: int, total: int, label: str = "") -> None:
        """Callback form: set the count to ``done`` of ``total`` and redraw."""
        self.done, self.total = done, max(total, 0)
        self._draw(label)

    def _draw(self, note: str) -> None:
        if not self.enabled:
            return
        line = self.render(note)
        pad = " " * max(len(self._last) - len(line), 0)
        self._stream.write("\r" + line + pad)
        self._stream.flush()
        self._last = line

    def close(self) -> None:
        """Erase the bar so that what is printed next starts on a clean line."""
        if self.enabled and self._last:
            self._stream.write("\r" + " " * len(self._last) + "\r")
            self._stream.flush()
            self._last = ""

    def __enter__(self) -> Progress:
        self._draw("")
        return self

    def __repr__(self) -> str:
        return f"<Progress {self.label!r} {self.done}/{self.total}>"
