"""``wpprotect demo``: the network-plugin conflict on a throwaway namespace, then cleaned up.

As root it builds a network namespace (``wpdemo-<random>-1-vendors``) with veth pairs and real
BPF classifiers that mimic Cilium, Calico, the AWS network-policy agent, an unknown vendor and a
tcx program, each next to Datadog's own classifiers at priority 10; scans it with
:class:`~wpprotect.TCInspector`, shows the findings and their fix, shows the plan that fixes a
sample ``system-probe.yaml`` (never applied), and removes everything.

Everything is removed on every path out: normal end, error, Ctrl-C (SIGINT) and SIGTERM. Signals
that arrive while the namespace is being built or removed are held until that step is done, so
they never leave half a namespace behind; then they end the command (exit 130 / 143).

Exit status: 0 the demo ran and found what the scene was built to show, 1 it did not (the
inspector disagrees with the scene), 2 not root or another environment error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from wpprotect.cli._output import Styler, add_json_option, format_table, print_json

__all__ = ["SignalGate", "register"]

# A host's system-probe.yaml as the docs' setup page leaves it (runtime_security_config block of
# pkg/config/config_template.yaml, CWS turned on): what the plans below are shown against.
_SAMPLE_SYSTEM_PROBE = """\
## Sample /etc/datadog-agent/system-probe.yaml (written by wpprotect demo)

runtime_security_config:
  ## @param enabled - boolean - optional - default: false
  ## Set to true to enable Cloud Workload Security (CWS).
  enabled: true

  ## @param network - custom object - optional
  network:
    ## @param enabled - boolean - optional - default: true
    enabled: true
"""

_NOT_ROOT = (
    "wpprotect demo needs root: it creates a network namespace, veth pairs and tc filters and "
    "loads BPF programs (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF); run `sudo wpprotect demo`"
)


def _prefix(text: str) -> str:
    if not 1 <= len(text) <= 20 or not set(text) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise argparse.ArgumentTypeError(f"{text!r}: 1-20 characters from [a-z0-9_-]")
    return text


def register(subparsers: Any) -> None:
    """Add ``demo`` to the CLI.

    :param subparsers: the top-level parser's subparsers action.
    """
    p = subparsers.add_parser(
        "demo",
        help="show a network-plugin conflict on a throwaway namespace (root), then clean up",
        description=(
            "Build a throwaway network namespace with real BPF classifiers that mimic Cilium, "
            "Calico, the AWS network-policy agent, an unknown vendor and a tcx program next to "
            "Datadog's; scan it, show the findings and their fix (and the plan that would apply "
            "it to a sample system-probe.yaml, never applied), and remove everything, also on "
            "Ctrl-C or SIGTERM. Needs root and the tc extra (pyroute2). Exit status: 0 the demo "
            "showed what it was built to show, 1 it did not, 2 not root, pyroute2 missing or an "
            "environment error."
        ),
    )
    p.add_argument(
        "--hold",
        action="store_true",
        help="keep the namespace after the report until Ctrl-C or SIGTERM, to explore it with "
        "`ip netns exec`, `tc` and `bpftool`",
    )
    p.add_argument(
        "--prefix",
        type=_prefix,
        default="wpdemo",
        help="start of the namespace's name (default: %(default)s)",
    )
    add_json_option(p)
    p.set_defaults(handler=_run)


class SignalGate:
    """SIGINT/SIGTERM handlers that raise, except inside :meth:`held` blocks where the signal is
    remembered and raised when the block ends.

    Building or removing kernel objects is never cut in the middle: an interrupted build would
    leave an object that nothing has recorded yet. Python runs signal handlers in the main thread
    only, so this works however many threads the work uses.
    """

    def __init__(self) -> None:
        self._holding = 0
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def _raise(self, signum: int) -> None:
        from wpprotect.cli import Terminated

        if signum == signal.SIGTERM:
            raise Terminated(f"signal {signum}")
        raise KeyboardInterrupt

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            self._pending = self._pending or signum
            return
        self._raise(signum)

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (main thread only)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold signals during the block; raise the first one that came, once it is done."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if not self._holding and self._pending is not None:
                signum, self._pending = self._pending, None
                self._raise(signum)


def _run(args: argparse.Namespace) -> int:
    from wpprotect.errors import PermissionDeniedError

    if os.geteuid() != 0:
        raise PermissionDeniedError(_NOT_ROOT)
    gate = SignalGate()
    gate.install()
    try:
        return _demo(args, gate)
    finally:
        gate.restore()


def _demo(args: argparse.Namespace, gate: SignalGate) -> int:
    from wpprotect.tc import TCInspector
    from wpprotect.tc._lab import Lab

    style = Styler(False) if args.json else Styler(stream=sys.stdout)
    out = sys.stdout
    human = not args.json
    lab: Lab | None = None
    try:
        with gate.held():
            lab = Lab(args.prefix, wait_released=True)
            # Devices up under --hold: traffic can then flow for `wpprotect tc watch`.
            scene = lab.scene_mimic_vendors(up=args.hold)
        prog_ids = sorted(set(lab.prog_ids))
        if human:
            out.write(
                style("wpprotect demo", "heading")
                + f": network namespace {scene.netns} with {len(scene.devices)} veth pairs;\n"
                "on each, a vendor's classifier next to Datadog's (priority 10):\n\n"
            )
            out.write(
                format_table(
                    ["device", "mimics"],
                    [(dev, _ROLE_TEXT.get(role, role)) for role, dev in scene.devices.items()],
                    styler=style,
                )
                + "\n\n"
            )
            out.flush()
        report = TCInspector(netns=scene.netns).scan()
        assessment = report.assess(10)
        found = {(f.code, f.ifname, f.direction) for f in assessment.findings if f.needs_action}
        expected = set(scene.expected)
        matches = found == expected and (
            assessment.recommended_classifier_priority == scene.recommended_classifier_priority
        )
        plans = _plans(assessment.recommended_classifier_priority)
        if human:
            out.write(style(f"$ wpprotect tc scan --netns {scene.netns}", "code") + "\n")
            out.write(report.table() + "\n\n")
            out.write(style("Assessment at Datadog's default priority 10", "heading") + "\n")
            out.write(assessment.table() + "\n\n")
            for title, plan in plans:
                out.write(style(title, "heading") + "\n")
                out.write((plan.get("diff") or "(no change)").rstrip("\n") + "\n\n")
            verdict = (
                style("the scan found exactly what the scene was built to show", "ok")
                if matches
                else style(
                    "the scan did not find what the scene was built to show: "
                    f"missing {sorted(expected - found)}, unexpected {sorted(found - expected)}",
                    "problem",
                )
            )
            out.write(verdict + "\n")
            out.flush()
        doc: dict[str, Any] = {
            "schema": 1,
            "netns": scene.netns,
            "devices": dict(scene.devices),
            "prog_ids": prog_ids,
            "scan": report.to_dict(classifier_priority=10),
            "expected": [list(e) for e in sorted(expected)],
            "matches_expected": matches,
            "plans": [{"title": t, **p} for t, p in plans],
            "cleanup": None,
        }
        if args.hold:
            if args.json:
                print_json(doc)
            _hold(scene.netns, prog_ids, scene.devices)
        with gate.held():
            lab.close()
            lab = None
        left = _left_behind(scene.netns, prog_ids)
        doc["cleanup"] = {"netns_removed": not left["netns"], "programs_left": left["programs"]}
        if args.json:
            print_json(doc)
        else:
            ok = not left["netns"] and not left["programs"]
            out.write(
                (
                    style(
                        f"removed namespace {scene.netns}, its devices and filters, and the "
                        f"{len(prog_ids)} BPF programs",
                        "ok",
                    )
                    if ok
                    else style(f"left behind: {left}", "error")
                )
                + "\n"
            )
        return 0 if matches and not left["netns"] and not left["programs"] else 1
    finally:
        if lab is not None:
            with gate.held():
                lab.close()


_ROLE_TEXT = {
    "cilium": "Cilium (legacy tc): priority 1, returns TC_ACT_OK",
    "calico": "Calico eBPF: automatic priority 49152, returns TC_ACT_UNSPEC",
    "aws": "AWS network-policy agent: priority 1, returns TC_ACT_OK",
    "unknown": "an unknown vendor: priority 5, returns TC_ACT_OK",
    "tcx": "tcx: netobserv (NEXT) then Cilium's cil_from_netdev (PASS)",
}


def _plans(recommended: int | None) -> list[tuple[str, dict[str, Any]]]:
    """The fixes as plans on a sample system-probe.yaml in a temp dir (shown, never applied)."""
    from wpprotect.config import plan_classifier_priority, plan_disable

    plans: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="wpprotect-demo-") as tmp:
        sample = Path(tmp) / "system-probe.yaml"
        sample.write_text(_SAMPLE_SYSTEM_PROBE)
        if recommended is not None:
            plan = plan_classifier_priority(sample, recommended)
            plans.append(
                (
                    f"Fix for the priority findings: wp.plan_classifier_priority(path, "
                    f"{recommended}).diff() on a sample system-probe.yaml",
                    _plan_doc(plan, sample),
                )
            )
        plan = plan_disable(sample, scope="network")
        plans.append(
            (
                "Fix where no priority helps (priority 1, tcx): wp.plan_disable(path, "
                'scope="network").diff()',
                _plan_doc(plan, sample),
            )
        )
    return plans


def _plan_doc(plan: Any, sample: Path) -> dict[str, Any]:
    # The temp dir is gone once shown: name the file as it would be on a host
    # (unified diff headers carry the path without its leading "/": a/tmp/... -> a/etc/...).
    shown = "etc/datadog-agent/system-probe.yaml"
    diff = str(plan.diff()).replace(str(sample).lstrip("/"), shown).replace(str(sample), shown)
    return {"diff": diff, "changes": len(plan.changes)}


def _hold(netns: str, prog_ids: list[int], devices: dict[str, str]) -> None:
    dev = next(iter(devices.values()))
    calico, cilium = devices.get("calico", dev), devices.get("cilium", dev)
    sys.stderr.write(
        f"lab is up: netns {netns}, programs {','.join(map(str, prog_ids))}\n"
        f"  explore: ip netns exec {netns} tc filter show dev {dev} ingress\n"
        f"           ip netns exec {netns} bpftool net\n"
        f"  scan:    wpprotect tc scan --netns {netns}\n"
        "  measure: send traffic into a few devices (each peer end <dev>p feeds <dev>), e.g.\n"
        "           (no ping installed? `busybox ping` does the same)\n"
        f"           ip netns exec {netns} ping -6 -c 100 -i 0.2 ff02::1%{cilium}p &\n"
        f"           ip netns exec {netns} ping -6 -c 100 -i 0.2 ff02::1%{calico}p &\n"
        f"           wpprotect tc watch --netns {netns} --seconds 5\n"
        f"           ({cilium}: blind, {calico}: seen, the devices without traffic: idle)\n"
        "  press Ctrl-C (or send SIGTERM) to remove it\n"
    )
    sys.stderr.flush()
    while True:  # a signal handler raises out of the sleep
        time.sleep(3600)


def _left_behind(netns: str, prog_ids: list[int]) -> dict[str, Any]:
    """What of the demo is still there (nothing, when cleanup worked)."""
    from wpprotect.tc._lab import Lab

    return {
        "netns": os.path.exists(os.path.join("/var/run/netns", netns)),
        "programs": Lab.wait_programs_released(prog_ids, timeout=0),
    }
