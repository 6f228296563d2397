"""``wpprotect tc scan``: which eBPF classifiers run before Datadog's, and what to do about it;
``wpprotect tc watch``: whether Datadog's classifiers really ran for the traffic, measured.

``--platform docker|kubernetes`` scans every agent's node through the agent itself
(:mod:`wpprotect.cli._tc_fleet`).

Exit status: 0 nothing needs action (``watch``: nothing blind), 1 a finding needs action, 2 a
usage or environment error (not root, unknown ``--netns``), printed as one line on stderr.

Without ``--classifier-priority`` the scan is judged against the agent's effective
``runtime_security_config.network.classifier_priority`` read from ``/etc/datadog-agent`` (else the
default 10); where those files turn network detection or Workload Protection off, Datadog's
classifiers still attached are reported as leftovers. The TC package itself never reads the
agent's files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from wpprotect.cli._output import int_type, print_json, seconds_type
from wpprotect.cli._tc_fleet import add_fleet_options
from wpprotect.errors import WPProtectError

__all__ = ["register"]

log = logging.getLogger(__name__)

_EXIT_OK = 0
_EXIT_ACTION = 1
_EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add ``tc`` and its ``scan`` and ``watch`` subcommands to the CLI.

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
        type=int_type(1, 65535),
        metavar="N",
        help="Datadog's classifier priority to judge against (default: the agent's effective "
        "runtime_security_config.network.classifier_priority, else 10; without this option "
        "the agent's files are also read for network detection or Workload Protection turned "
        "off, which makes classifiers still attached leftovers)",
    )
    scan.add_argument(
        "--probe",
        action="store_true",
        help="test-run every program but Datadog's (BPF_PROG_TEST_RUN) on one packet per "
        "traffic class (IPv4 TCP/UDP 53/ICMP, IPv6 TCP/UDP 53, ARP) in its hook's direction, "
        "to learn its verdict per class; a probe wins over a documented verdict. Without it "
        "nothing is run",
    )
    scan.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of tables"
    )
    add_fleet_options(scan)
    scan.set_defaults(handler=_scan)
    watch = sub.add_parser(
        "watch",
        help="measure whether Datadog's classifiers ran for the traffic each device carried",
        description=(
            "Turn BPF run-time statistics on for a window and compare, per device and direction "
            "carrying Datadog's classifier, how often it ran with how many packets the device "
            "carried. Read-only: nothing is attached or sent. Exit status: 0 nothing blind, "
            "1 a device carried traffic Datadog's classifier never saw, 2 usage or environment "
            "error."
        ),
    )
    watch.add_argument(
        "--netns",
        default="all",
        metavar="all|NAME|PATH",
        help="'all' (default), a name from `ip netns list` or /var/run/docker/netns, or a path "
        "such as /proc/PID/ns/net; never created",
    )
    watch.add_argument(
        "--seconds",
        type=seconds_type(86400),
        default=10.0,
        metavar="N",
        help="how long to measure (default 10)",
    )
    watch.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of tables"
    )
    watch.set_defaults(handler=_watch)
    tc.set_defaults(handler=lambda _args: _usage(tc))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("wpprotect: error: tc needs a subcommand: scan or watch", file=sys.stderr)
    return _EXIT_USAGE


def _scan(args: argparse.Namespace) -> int:
    from wpprotect.tc import TCInspector

    if args.platform != "host":
        from wpprotect.cli._tc_fleet import run_scan

        return run_scan(args)
    # With --classifier-priority the caller speaks for the agent: no file of its is read.
    priority, source = args.classifier_priority, "caller"
    detection: dict[str, Any] = {}
    if priority is None:
        priority, source = _configured_priority()
        detection = _configured_detection()
    report = TCInspector(netns=args.netns, probe=args.probe).scan()
    assessment = report.assess(priority, source=source, **detection)
    if args.json:
        print_json(report.to_dict(assessment=assessment))
    else:
        sys.stdout.write(f"{report.table()}\n\n{assessment.table()}\n")
        sys.stdout.flush()
    return _EXIT_ACTION if not assessment.ok else _EXIT_OK


def _watch(args: argparse.Namespace) -> int:
    from wpprotect.tc import TCInspector

    if not args.json:
        print(
            f"measuring for {args.seconds:g} s (Ctrl-C stops; statistics are turned off on exit)",
            file=sys.stderr,
        )
    measurement = TCInspector(netns=args.netns).measure(args.seconds)
    if args.json:
        print_json(measurement.to_dict())
    else:
        sys.stdout.write(measurement.table() + "\n")
        sys.stdout.flush()
    return _EXIT_OK if measurement.ok else _EXIT_ACTION


def _configured_detection() -> dict[str, Any]:
    """What the agent's files on this host say about network detection and Workload
    Protection, as :meth:`TCReport.assess` takes it: only a value turned off explicitly (in a
    file) is passed, so a host without an agent config raises no ``datadog-classifier-leftover``.
    """
    from wpprotect import config

    out: dict[str, Any] = {}
    sources: list[str] = []
    for name, setting in (
        ("network_detection", config.NETWORK_ENABLED),
        ("workload_protection", config.CWS_ENABLED),
    ):
        try:
            found = config.effective_value(setting)
        except (WPProtectError, OSError) as exc:
            log.debug("cannot read the agent's %s: %s", setting.name, exc)
            continue
        if found.source != "default" and found.value is False:
            out[name] = False
            sources.append(f"{found.source} {found.key or ''}".strip())
    if sources:
        out["detection_source"] = "; ".join(sources)
    return out


def _configured_priority() -> tuple[int | None, str]:
    """The agent's effective classifier priority on this host and where it comes from; None
    (the default applies) when its files cannot be read."""
    from wpprotect import config

    try:
        found = config.effective_value(config.CLASSIFIER_PRIORITY)
    except (WPProtectError, OSError) as exc:
        log.debug("cannot read the agent's classifier priority, using the default: %s", exc)
        return None, "default"
    if found.source == "default":
        return None, "default"
    value: object = found.value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 0xFFFF:
        log.debug(
            "the agent's classifier priority %r is not a priority in 1..65535; default used", value
        )
        return None, "default"
    return value, found.source
