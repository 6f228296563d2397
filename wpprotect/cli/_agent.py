"""``wpprotect self-test``, ``wpprotect flare`` and ``wpprotect disable``: the agent operations on
one platform (host, Docker or Kubernetes), as tables for people or ``--json`` for machines.

Exit status: 0 nothing wrong; 1 a self-test failed on some agent, or a flare holds secrets the
agent's scrubber missed; 2 a usage or environment error (including: no agent could be reached).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wpprotect.cli._output import (
    Progress,
    Styler,
    add_dry_run_option,
    add_host_dir_options,
    add_json_option,
    add_timeout_option,
    error_line,
    format_table,
    int_type,
    print_json,
    safe_text,
)
from wpprotect.errors import PlanVerifyError

if TYPE_CHECKING:
    from wpprotect.plan import Plan
    from wpprotect.platforms import BasePlatform

__all__ = ["add_target_options", "make_platform", "register", "run_plan"]

EXIT_OK, EXIT_ACTION, EXIT_USAGE = 0, 1, 2


def add_target_options(
    p: argparse.ArgumentParser,
    *,
    host_dirs: bool = True,
    nodes: bool = False,
    json_option: bool = True,
    platform_help: str = "where the agent runs (default: %(default)s)",
    platform_metavar: str | None = None,
) -> None:
    """The options that name the agent(s) a command acts on, the same on every command.

    :param host_dirs: add ``--install-dir``/``--config-dir`` (the host platform's).
    :param nodes: add ``--node`` and ``--for-pod`` (Kubernetes: the agent on one node).
    :param json_option: add ``--json``.
    :param platform_help: the ``--platform`` help text.
    :param platform_metavar: its metavar (default: the choices in braces).
    """
    p.add_argument(
        "--platform",
        choices=("host", "docker", "kubernetes"),
        default="host",
        metavar=platform_metavar,
        help=platform_help,
    )
    if host_dirs:
        add_host_dir_options(p.add_argument_group("host"))
    docker = p.add_argument_group("docker")
    docker.add_argument(
        "--container", metavar="NAME", help="the agent container (default: found by name)"
    )
    k8s = p.add_argument_group("kubernetes")
    k8s.add_argument("--namespace", metavar="NS", help="namespace of the agent pods")
    k8s.add_argument("--pod", metavar="NAME", help="one agent pod (default: every agent pod)")
    k8s.add_argument("--selector", metavar="LABELS", help="label selector for the agent pods")
    k8s.add_argument("--context", metavar="NAME", help="kubeconfig context")
    k8s.add_argument("--kubeconfig", type=Path, metavar="FILE", help="kubeconfig file")
    if nodes:
        k8s.add_argument("--node", metavar="NODE", help="only the agent pod on this node")
        k8s.add_argument(
            "--for-pod",
            metavar="NS/POD",
            help="only the agent serving this application pod (the agent pod on its node)",
        )
    if json_option:
        add_json_option(p)


def make_platform(args: argparse.Namespace) -> BasePlatform:
    """The platform the target options name (Docker and Kubernetes adapters load lazily).

    The caller closes it (``with make_platform(args) as platform: ...``).

    :param args: parsed options (``platform`` and the target options).
    :returns: a :class:`~wpprotect.platforms.BasePlatform`.
    """
    from wpprotect import platforms

    if args.platform == "host":
        dirs = {k: getattr(args, k, None) for k in ("install_dir", "config_dir")}
        return platforms.HostPlatform(**{k: v for k, v in dirs.items() if v is not None})
    if args.platform == "docker":
        return platforms.DockerPlatform(container=args.container)
    options = {
        "namespace": args.namespace,
        "pod": args.pod,
        "label_selector": args.selector,
        "context": args.context,
        "kubeconfig": args.kubeconfig,
        "node": getattr(args, "node", None),
        "for_pod": getattr(args, "for_pod", None),
    }
    return platforms.KubernetesPlatform(**{k: v for k, v in options.items() if v is not None})


def run_plan(args: argparse.Namespace, platform: BasePlatform, plan: Plan, *, nothing: str) -> int:
    """Show ``plan``; unless ``--dry-run``, apply it, then prove it with ``verify()`` (also when
    there was nothing to do: a host plan reads the kernel).

    :param nothing: what to say when the target is already in the planned state.
    :returns: 0, or 1 when ``verify()`` disagrees (the plan stays applied).
    """
    satisfied = plan.is_satisfied()
    applied = False
    verify_error: PlanVerifyError | None = None
    if not args.dry_run:
        if not satisfied:
            plan.apply()
            applied = True
        try:
            plan.verify()
        except PlanVerifyError as exc:
            verify_error = exc
    code = EXIT_OK if verify_error is None else EXIT_ACTION
    if args.json:
        doc = plan.to_dict()
        doc.update(
            {
                "dry_run": bool(args.dry_run),
                "applied": applied,
                "verified": None if args.dry_run else verify_error is None,
                "verify_error": None if verify_error is None else str(verify_error),
            }
        )
        print_json(doc)
        return code
    diff = plan.diff()
    if diff:
        sys.stdout.write(safe_text(diff, multiline=True))
    for note in plan.notes:
        print(f"note: {safe_text(note)}")
    if satisfied:
        print(f"nothing to do: {safe_text(nothing)}")
    elif args.dry_run:
        print("dry run: nothing was changed")
    else:
        print(f"applied: {safe_text(plan.title)}")
    if verify_error is not None:
        error_line(f"not verified: {verify_error}")
    return code


def register(subparsers: Any) -> None:
    """Add ``self-test``, ``flare`` and ``disable`` to the CLI.

    :param subparsers: the top-level parser's subparsers action.
    """
    p = subparsers.add_parser(
        "self-test",
        help="run the runtime self-test on every agent of a platform",
        description=(
            "Run the Workload Protection runtime self-test with the command the agent version "
            "needs (system-probe from 7.56, security-agent before), on every agent found, and "
            "confirm it with the agent's status. Exit status: 0 all passed, 1 some agent failed, "
            "2 usage or environment error."
        ),
    )
    add_target_options(p)
    add_timeout_option(p, 120.0, "each self-test")
    p.add_argument(
        "--max-workers",
        type=int_type(1, 1024),
        default=16,
        metavar="N",
        help="agents tested at once (default: %(default)s)",
    )
    p.set_defaults(handler=_self_test)

    p = subparsers.add_parser(
        "flare",
        help="collect a flare, copy it out and review it (send only with --send)",
        description=(
            "Collect a Security Agent flare without a terminal, copy the archive out and list "
            "what it holds and any secret the agent's scrubber missed. Nothing is uploaded "
            "unless --send is given (the agent then uploads with its own API key). Exit status: "
            "0 done, 1 the archive holds secrets, 2 usage or environment error."
        ),
    )
    add_target_options(p)
    p.add_argument("--case-id", metavar="ID", help="support case ID (digits)")
    p.add_argument("--email", metavar="EMAIL", help="email address tied to the case")
    p.add_argument("--send", action="store_true", help="let the agent upload the flare (no review)")
    p.add_argument(
        "--dest", type=Path, metavar="DIR", help="where to copy the archive (default: a temp dir)"
    )
    add_timeout_option(p, 600.0, "the flare command")
    p.set_defaults(handler=_flare)

    p = subparsers.add_parser(
        "disable",
        help="turn Workload Protection (or its network detection) off",
        description=(
            "Plan and apply the change that turns off Workload Protection, or only its network "
            "detection, on the platform (config files and a restart on a host; the container or "
            "DaemonSet env elsewhere). --dry-run shows the diff and changes nothing."
        ),
    )
    add_target_options(p)
    p.add_argument(
        "--scope",
        required=True,
        choices=("workload-protection", "network"),
        help="what to turn off",
    )
    add_dry_run_option(p)
    p.set_defaults(handler=_disable)


def _self_test(args: argparse.Namespace) -> int:
    from wpprotect.fleet import run_fleet

    timeout = args.timeout
    with make_platform(args) as platform:
        agents = platform.agents()
        with Progress(len(agents), "self-test", enabled=None if not args.json else False) as bar:
            result = run_fleet(
                agents,
                lambda agent: agent.self_test(timeout=timeout),
                max_workers=args.max_workers,
                progress=bar,
            )
    if args.json:
        doc = result.to_dict()
        doc["results"] = doc.pop("items")
        print_json(doc)
    else:
        style = Styler(stream=sys.stdout)
        rows = []
        for item in result.items:
            value: Any = item.value
            if item.error is not None:
                rows.append([item.target, None, None, style.status("error"), item.error_message])
                continue
            rows.append(
                [
                    item.target,
                    str(value.version) if value.version else None,
                    value.component,
                    style.status(_result_word(item.ok, value)),
                    value.error or _confirmation(value),
                ]
            )
        print(format_table(["AGENT", "VERSION", "VIA", "RESULT", "DETAIL"], rows, styler=style))
        c = result.counts()
        print(f"\n{c['ok']}/{c['total']} agents passed the self-test")
        unconfirmed = [
            i.target
            for i in result.items
            if i.ok and getattr(i.value, "confirmed", "confirmed") == "unconfirmed"
        ]
        if unconfirmed:
            print(
                f"{len(unconfirmed)} of them unconfirmed: the agent's status could not show "
                "the tests' results"
            )
    return _self_test_status(result)


def _self_test_status(result: Any) -> int:
    from wpprotect.errors import ExecTimeoutError, PlatformError

    # Nothing could be tested at all (no container, no API, no permission): an environment
    # error. A hang is the agent's problem, so it counts as a failed test.
    unreachable = [
        i
        for i in result.items
        if isinstance(i.error, PlatformError) and not isinstance(i.error, ExecTimeoutError)
    ]
    if result.items and len(unreachable) == len(result.items):
        return EXIT_USAGE
    return EXIT_OK if result.ok else EXIT_ACTION


def _result_word(ok: bool, value: Any) -> str:
    if not ok:
        return "problem"
    return "ok" if value.confirmed == "confirmed" else "ok, unconfirmed"


def _confirmation(value: Any) -> str:
    if value.confirmed == "confirmed":
        return f"confirmed: status shows {len(value.succeeded_tests)} tests passed"
    if value.confirmed == "contradicted":
        return f"contradicted: {value.confirmed_reason}"
    return f"unconfirmed ({value.confirmed_reason}): OK only as printed by the agent"


def _flare(args: argparse.Namespace) -> int:
    from wpprotect.agent import validate_case_id, validate_email
    from wpprotect.errors import InvalidArgumentError

    case_id = validate_case_id(args.case_id)  # before anything is contacted
    email = validate_email(args.email)

    with make_platform(args) as platform:
        agents = platform.agents()  # raises AgentNotFoundError when there is none
        if len(agents) != 1:
            names = ", ".join(a.target for a in agents[:5])
            raise InvalidArgumentError(
                f"{len(agents)} agents found ({names}); choose one with --pod or --container"
            )
        flare = agents[0].flare(
            case_id=case_id, email=email, send=args.send, dest=args.dest, timeout=args.timeout
        )
    findings = flare.scan_secrets() if flare.archive is not None else []
    if args.json:
        doc = flare.to_dict()
        doc["secrets"] = [f.to_dict() for f in findings]
        print_json(doc)
    else:
        style = Styler(stream=sys.stdout)
        # every string here comes from the agent or its archive: escaped before it is shown
        print(f"flare from {safe_text(flare.target)} ({safe_text(flare.component)} flare)")
        where = safe_text(flare.archive or flare.remote_path)
        print(f"archive: {where} ({len(flare.files)} files)")
        for name in flare.files:
            print(f"  {safe_text(name)}")
        if findings:
            print(style(f"{len(findings)} secret(s) the agent's scrubber missed:", "problem"))
            for f in findings:
                print(f"  {safe_text(f)}")
        else:
            print(style("no secrets found by the scan", "ok"))
        if flare.sent:
            print(f"sent: case id {safe_text(flare.case_id)}")
        else:
            print("not sent: review it, then upload with Flare.send() or rerun with --send")
    return EXIT_ACTION if findings else EXIT_OK


def _disable(args: argparse.Namespace) -> int:
    with make_platform(args) as platform:
        plan = platform.disable(args.scope)
        nothing = f"{args.scope} is already off on {platform.target}"
        return run_plan(args, platform, plan, nothing=nothing)
