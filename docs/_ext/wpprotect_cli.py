"""``.. wpprotect-cli::``: the CLI reference, generated from ``wpprotect.cli.build_parser()``.

Walks the argparse tree (every subcommand, nested ones included) and renders, per command, its
description, its usage line and one entry per option. The page can never disagree with the code.
"""

from __future__ import annotations

import argparse
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from wpprotect.cli import build_parser


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.extend(action.choices.items())
    return out


def _option_lines(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            metavar = ""
            if action.nargs != 0:
                metavar = " " + (
                    action.metavar if isinstance(action.metavar, str) else action.dest.upper()
                )
            names = ", ".join(f"{o}{metavar}" for o in action.option_strings)
        else:
            names = action.metavar if isinstance(action.metavar, str) else action.dest
        text = (action.help or "").replace("%(default)s", str(action.default))
        text = text.replace("%(prog)s", "wpprotect")
        lines += [f"``{names}``", f"   {_escape(text) or '(no description)'}", ""]
    return lines


def _escape(text: str) -> str:
    return text.replace("*", r"\*").replace("|", r"\|")


_UNDERLINES = '=-~^"'


def _render(parser: argparse.ArgumentParser, title: str, depth: int, out: list[str]) -> None:
    out += [title, _UNDERLINES[depth] * len(title), ""]
    if parser.description:
        out += [_escape(parser.description), ""]
    usage = parser.format_usage().strip().removeprefix("usage: ")
    out += [".. code-block:: text", "", f"   {usage}", ""]
    options = _option_lines(parser)
    if options:
        out += options
    if parser.epilog and depth == 0:
        out += [".. code-block:: text", ""]
        out += [f"   {line}" if line else "" for line in parser.epilog.splitlines()]
        out += [""]
    for name, child in _subcommands(parser):
        _render(child, f"wpprotect {name}" if depth == 0 else f"{title} {name}", depth + 1, out)


class WPProtectCLI(SphinxDirective):
    """The directive; no arguments or options."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        lines: list[str] = []
        _render(build_parser(), "wpprotect", 0, lines)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="wpprotect.cli"), node)
        return list(node.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("wpprotect-cli", WPProtectCLI)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
