"""``wpprotect tc scan``: which eBPF classifiers run before Datadog's, and what to do about it.

Exit status: 0 nothing needs action, 1 a finding needs action, 2 a usage or environment error
(not root, unknown ``--netns``), printed as one line on stderr.

Start-up is kept light: this module imports only argparse at registration; the scan path imports
``wpprotect.tc`` (socket, struct, ctypes, attrs) and never pyroute2, ruamel, docker or kubernetes.
The config package is imported only when the agent's effective classifier priority must be read
(no ``--classifier-priority``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]

_EXIT_OK = 0
_EXIT_ACTION = 1
_EXIT_USAGE = 2


def _priority(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {value}")
    return value


def register(subparsers: Any) -> None:
    """Add ``tc`` and its ``scan`` subcommand to the CLI.

    :param subparsers: the top-level parser's subparsers action.
    """
    tc = subparsers.add_parser(
        "tc",
        help="traffic-control (clsact/tcx/netkit) classifiers and Datadog's network detection",
        description="Inspect the eBPF traffic-control programs that run before Datadog's.",
    )
    sub = tc.add_subparsers(
        dest="tc_command", metavar="SUBCOMMAND", parser_class=type(tc), prog=tc.prog
    )
    scan = sub.add_parser(
        "scan",
        help="list clsact filters and tcx/netkit programs, and what blinds network detection",
        description=(
            "List every clsact filter and tcx/netkit program (read-only unless --probe), name "
            "its vendor and verdict, and report what keeps Datadog's classifier from seeing "
            "packets. Exit status: 0 nothing to do, 1 a finding needs action, 2 usage or "
            "environment error."
        ),
    )
    scan.add_argument(
        "--netns",
        default="all",
        metavar="all|NAME|PATH",
        help="'all' (default) for every namespace on the host, a name from `ip netns list` or "
        "/var/run/docker/netns, or a path such as /proc/PID/ns/net; never created",
    )
    scan.add_argument(
        "--classifier-priority",
        type=_priority,
        metavar="N",
        help="Datadog's classifier priority to judge against (default: the agent's effective "
        "runtime_security_config.network.classifier_priority, else 10)",
    )
    scan.add_argument(
        "--probe",
        action="store_true",
        help="run each program of unknown vendor once on a test packet (BPF_PROG_TEST_RUN) to "
        "learn its verdict; without it nothing is run",
    )
    scan.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of tables"
    )
    # Its modules log through wpprotect._log: logging is imported only if something is logged.
    scan.set_defaults(handler=_scan, defer_logging=True)
    tc.set_defaults(handler=lambda _args: _usage(tc))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("wpprotect: error: tc needs a subcommand: scan", file=sys.stderr)
    return _EXIT_USAGE


def _scan(args: argparse.Namespace) -> int:
    import gc

    # The scan and its JSON allocate tens of thousands of small objects and free none until
    # the end: the cyclic collector's passes over them are pure overhead in a one-shot command.
    # Paused only for this call, so a program embedding main() keeps its collector.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan_report(args)
    finally:
        if was_enabled:
            gc.enable()


def _scan_report(args: argparse.Namespace) -> int:
    from wpprotect.tc import _prefetch
    from wpprotect.tc._inspector import TCInspector

    inspector = TCInspector(
        netns=args.netns, probe=args.probe, classifier_priority=args.classifier_priority
    )
    # inspector.scan(), with the kernel read in a child process while this one imports the
    # model (the same report and errors; a WPProtectError is one line on stderr, exit 2).
    report = _prefetch.scan(inspector)
    # One assessment (it reads the agent's config at most once), for the output and the status.
    assessment = report.assess(args.classifier_priority)
    if args.json:
        # The same bytes as json.dumps(report.to_dict(...)), written row by row (TCReport).
        sys.stdout.write(report.json_with(assessment))
        sys.stdout.write("\n")
        sys.stdout.flush()
        return _EXIT_ACTION if not assessment.ok else _EXIT_OK
    sys.stdout.write(f"{report.table()}\n\n{assessment.table()}\n")
    sys.stdout.flush()
    return _EXIT_ACTION if not assessment.ok else _EXIT_OK
