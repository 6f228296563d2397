"""``wpprotect tc scan --platform docker|kubernetes``: the TC scan of every agent's node at once,
and ``wpprotect set-priority``: apply the one classifier priority such a scan recommends.

The scan runs wpprotect's read-only kernel reader inside each agent's ``system-probe`` container
(``BasePlatform.tc_scan``), at most ``--max-workers`` at a time, with a progress bar on a
terminal; one node that fails is a row with its error, never the end of the run.

Exit status (scan): 0 every node clean, 1 a node has a finding that needs action or failed, 2 a
usage or environment error (no agent found, cluster unreachable).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from wpprotect.cli._agent import add_target_options, make_platform, run_plan
from wpprotect.cli._output import (
    Progress,
    add_dry_run_option,
    add_timeout_option,
    int_type,
    print_json,
)

if TYPE_CHECKING:
    from wpprotect.platforms import BasePlatform
    from wpprotect.tc import TCFleetReport

__all__ = ["add_fleet_options", "register", "scan_fleet"]

EXIT_OK, EXIT_ACTION, EXIT_USAGE = 0, 1, 2


def add_fleet_options(p: argparse.ArgumentParser) -> None:
    """The target options of ``tc scan`` beyond the host: platform, container, pods, nodes."""
    add_target_options(
        p,
        host_dirs=False,
        nodes=True,
        json_option=False,
        platform_metavar="PLATFORM",
        platform_help="host (default: this host's kernel, in-process), docker or kubernetes "
        "(every agent container's / agent pod's node, through the agent itself)",
    )
    fleet = p.add_argument_group("fleet")
    add_timeout_option(fleet, 60.0, "each node's read", limit=3600)
    fleet.add_argument(
        "--fallback-pod",
        action="store_true",
        help="kubernetes: where an agent's container cannot run the reader (no embedded "
        "Python, a missing capability), read through a short-lived privileged pod pinned to "
        "that node, from the agent's own image, deleted afterwards",
    )
    fleet.add_argument(
        "--max-workers",
        type=int_type(1, 1024),
        default=64,
        metavar="N",
        help="nodes read at once (default: %(default)s)",
    )


def _target_options(args: argparse.Namespace) -> list[str]:
    """The options that chose the cluster or container, for a command printed to run next
    (``set-priority`` acts on the whole DaemonSet: ``--node``/``--pod`` are not repeated)."""
    out: list[str] = []
    names = ("container",) if args.platform == "docker" else ("kubeconfig", "context", "namespace")
    for name in names:
        value = getattr(args, name, None)
        if value:
            out += [f"--{name}", str(value)]
    return out


def scan_fleet(
    agents: list[BasePlatform],
    *,
    platform: str,
    classifier_priority: int | None,
    timeout: float | None,
    max_workers: int,
    progress: Any = None,
    fallback_pod: bool = False,
) -> TCFleetReport:
    """Every agent's ``tc_scan()`` and version, bounded, joined into one
    :class:`TCFleetReport`."""
    from wpprotect.errors import WPProtectError
    from wpprotect.fleet import run_fleet
    from wpprotect.tc import TCFleetReport

    nodes = {a.target: a.node for a in agents}

    def one(agent: BasePlatform) -> tuple[Any, str | None]:
        report = agent.tc_scan(
            classifier_priority=classifier_priority, timeout=timeout, fallback_pod=fallback_pod
        )
        try:  # the agent's own version on that node, for the known Cilium race
            version: str | None = str(agent.version())
        except WPProtectError:
            version = None
        return report, version

    result = run_fleet(agents, one, max_workers=max_workers, progress=progress)
    triples: list[tuple[str, str | None, Any]] = []
    versions: dict[str, str | None] = {}
    for item in result.items:
        if item.error is not None or item.value is None:
            triples.append((item.target, nodes.get(item.target), item.error))
            continue
        report, versions[item.target] = item.value
        triples.append((item.target, nodes.get(item.target), report))
    return TCFleetReport.from_results(
        triples, classifier_priority=classifier_priority, platform=platform, versions=versions
    )


def run_scan(args: argparse.Namespace) -> int:
    """``tc scan`` for ``--platform docker|kubernetes``."""
    if args.probe:
        print(
            "wpprotect: error: --probe runs programs and is done with --platform host only",
            file=sys.stderr,
        )
        return EXIT_USAGE
    with make_platform(args) as platform:
        agents = platform.agents()
        with Progress(len(agents), "tc scan", enabled=False if args.json else None) as bar:
            fleet = scan_fleet(
                agents,
                platform=args.platform,
                classifier_priority=args.classifier_priority,
                timeout=args.timeout,
                max_workers=args.max_workers,
                progress=bar,
                fallback_pod=args.fallback_pod,
            )
    import attrs

    fleet = attrs.evolve(fleet, cli_options=_target_options(args))
    if args.json:
        print_json(fleet.to_dict())
    else:
        sys.stdout.write(fleet.table() + "\n")
        sys.stdout.flush()
    return EXIT_OK if fleet.ok else EXIT_ACTION


def register(subparsers: Any) -> None:
    """Add ``set-priority``: apply a classifier priority (the one a fleet scan recommends)."""
    p = subparsers.add_parser(
        "set-priority",
        help="set Datadog's TC classifier priority on the agent(s) (a plan; --dry-run shows it)",
        description=(
            "Set runtime_security_config.network.classifier_priority where the agent runs "
            "(host files, the agent container, or the agent DaemonSet), as the plan "
            "`tc scan` recommends. Exit status: 0 applied or nothing to do, 2 usage or "
            "environment error."
        ),
    )
    p.add_argument("priority", type=int_type(1, 65535), metavar="N", help="the priority (1..65535)")
    add_target_options(p)
    add_dry_run_option(p)
    p.set_defaults(handler=_set_priority)


def _set_priority(args: argparse.Namespace) -> int:
    with make_platform(args) as platform:
        plan = platform.set_classifier_priority(args.priority)
        nothing = f"classifier_priority is already {args.priority} on {platform.target}"
        return run_plan(args, platform, plan, nothing=nothing)
