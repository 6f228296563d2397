"""``wpprotect doctor``: what is installed, where, and what is wrong (a view of
:func:`wpprotect.doctor.diagnose`).

Exit status: 0 nothing wrong, 1 a problem needs action, 2 a check could not be completed or the
command was misused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wpprotect.cli._output import (
    Styler,
    add_host_dir_options,
    add_json_option,
    add_timeout_option,
    print_json,
    safe_text,
)

if TYPE_CHECKING:
    from wpprotect.doctor import DoctorReport

__all__ = ["register", "render"]


def register(subparsers: Any) -> None:
    """Add ``doctor`` to the CLI.

    :param subparsers: the top-level parser's subparsers action.
    """
    p = subparsers.add_parser(
        "doctor",
        help="what is installed, where, and what is wrong (read-only)",
        description=(
            "Find the Datadog Agent (host install, Docker containers, Kubernetes pods), its "
            "version and running components, the effective Workload Protection settings and "
            "where each comes from, the traffic-control classifiers that blind network "
            "detection (as root), and optionally run the runtime self-test. Each problem comes "
            "with its fix. Nothing is changed. Exit status: 0 nothing wrong, 1 a problem needs "
            "action, 2 a check could not be completed or a usage error."
        ),
    )
    add_host_dir_options(p)
    p.add_argument("--no-docker", action="store_true", help="do not look for agent containers")
    p.add_argument(
        "--no-kubernetes", action="store_true", help="do not look for agent pods in a cluster"
    )
    p.add_argument("--no-tc", action="store_true", help="do not scan traffic-control classifiers")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="also run the runtime self-test on every agent found (it creates temporary files "
        "and rules in the agent)",
    )
    p.add_argument(
        "--container",
        action="append",
        default=[],
        metavar="NAME",
        help="an agent container to look at (repeatable; default: every container of an agent "
        "image, or named datadog-agent or dd-agent)",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)",
    )
    p.add_argument("--namespace", metavar="NS", help="Kubernetes namespace of the agent pods")
    add_timeout_option(p, 5.0, "each daemon or API probe", limit=3600)
    add_json_option(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from wpprotect.doctor import diagnose

    report = diagnose(
        install_dir=args.install_dir,
        config_dir=args.config_dir,
        docker=not args.no_docker,
        kubernetes=not args.no_kubernetes,
        tc=not args.no_tc,
        self_test=args.self_test,
        timeout=args.timeout,
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        containers=args.container,
    )
    if args.json:
        print_json(report)
    else:
        sys.stdout.write(render(report, Styler(stream=sys.stdout)) + "\n")
        sys.stdout.flush()
    return report.exit_status


def _wrap(text: str, width: int) -> list[str]:
    # Paths and commands must stay copyable: never break inside a word or at a hyphen.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def render(report: DoctorReport, style: Styler, *, width: int | None = None) -> str:
    """The report for people: one block per check (status, name, detail, fix), then a summary.

    :param report: a :class:`~wpprotect.doctor.DoctorReport`.
    :param style: colours (or none).
    :param width: the line width to wrap to (default: the terminal's, at most 120).
    """
    cols = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    names = [safe_text(c.name) for c in report.checks]  # e.g. self-test:docker:<container>
    name_w = max((len(n) for n in names), default=4)
    indent = 8 + 2 + name_w + 2
    body = max(cols - indent, 30)
    lines: list[str] = []
    for check, name in zip(report.checks, names, strict=True):
        head = style.status(check.status) + " " * (8 - len(check.status))
        # details and fixes quote what the checks found (container names, agent output)
        wrapped = _wrap(safe_text(check.detail), body) or [""]
        lines.append(f"{head}  {name.ljust(name_w)}  {wrapped[0]}")
        lines += [" " * indent + rest for rest in wrapped[1:]]
        if check.fix:
            fix = _wrap(safe_text(check.fix), body - 5) or [""]
            lines.append(" " * indent + style("fix: ", "code") + style(fix[0], "code"))
            lines += [" " * (indent + 5) + style(rest, "code") for rest in fix[1:]]
    lines.append("")
    lines.append(style(report.summary(), "heading"))
    return "\n".join(line.rstrip() for line in lines)
