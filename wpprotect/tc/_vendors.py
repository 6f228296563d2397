"""Who attached a TC program, and what it returns for traffic it lets through.

A table of :class:`VendorSignature` rows, tried in order; the first whose pattern matches the
clsact filter name (``TCA_BPF_NAME``) or the program name (``bpf_prog_info.name``, at most 15
characters) wins. :func:`register` adds rows ahead of the built-in ones, so users can name their
own programs. Every built-in row cites where its names and verdict come from
(``docs/reference/kernel-tc.md#tc-vendors``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Final

import attrs

from wpprotect.errors import InvalidArgumentError
from wpprotect.tc._model import VerdictSource
from wpprotect.tc._verdicts import TC_ACT_OK, TC_ACT_UNSPEC, verdict_name

__all__ = [
    "DATADOG",
    "UNKNOWN",
    "VendorSignature",
    "identify",
    "register",
    "resolve_verdict",
    "signatures",
    "unregister",
]


def _compile(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidArgumentError(f"invalid vendor signature regex {pattern!r}: {exc}") from exc


@attrs.frozen
class VendorSignature:
    """How to recognise one vendor's TC programs, and what they return.

    Patterns are regular expressions matched with ``re.search`` (anchor them with ``^`` for a
    prefix). A row matches when its ``filter_name`` pattern matches the clsact filter name, or its
    ``prog_name`` pattern matches the program name (either is enough).

    :ivar name: the vendor label used in reports (``cilium``, ``calico``...).
    :ivar filter_name: pattern for the clsact filter name, or None.
    :ivar prog_name: pattern for the program name, or None.
    :ivar documented_verdict: the return code (``TC_ACT_*``; read as ``TCX_*`` under tcx) the
        vendor's source uses for traffic it lets through, or None when not known.
    :ivar source: where the names and the verdict come from (a repository path, an issue).
    :ivar note: a caveat shown with findings about this vendor.
    :ivar fix: how to move this vendor's classifier out of the way, when it can be.
    """

    name: str
    filter_name: re.Pattern[str] | None = attrs.field(default=None, converter=_compile)
    prog_name: re.Pattern[str] | None = attrs.field(default=None, converter=_compile)
    documented_verdict: int | None = None
    source: str = ""
    note: str = ""
    fix: str = ""

    def matches(self, filter_name: str | None, prog_name: str | None) -> bool:
        """:param filter_name: the clsact filter name (or the tcx program name).
        :param prog_name: the program name.
        :returns: whether this row recognises the program.
        """
        if self.filter_name is not None and filter_name and self.filter_name.search(filter_name):
            return True
        return bool(self.prog_name is not None and prog_name and self.prog_name.search(prog_name))

    def verdict(self, attach: str = "clsact") -> str | None:
        """:param attach: ``clsact``, ``tcx`` or ``netkit``.
        :returns: the documented verdict named for that hook, or None when not documented.
        """
        if self.documented_verdict is None:
            return None
        return verdict_name(self.documented_verdict, attach)

    def to_dict(self) -> dict[str, object]:
        """:returns: the row as a JSON-ready dict (patterns as strings)."""
        return {
            "name": self.name,
            "filter_name": None if self.filter_name is None else self.filter_name.pattern,
            "prog_name": None if self.prog_name is None else self.prog_name.pattern,
            "documented_verdict": self.documented_verdict,
            "source": self.source,
        }


DATADOG: Final = VendorSignature(
    "datadog-cws",
    # ebpf-manager names filters <section>_<UID>_<pid> with non-alphanumerics as "_", e.g.
    # classifier_ingress_security380_4026531992_2115 (DataDog/ebpf-manager@tc.go, cilium#21345).
    filter_name=r"^classifier_(ingress|egress|raw_packet)",
    prog_name=r"^classifier_(ingr|egre|raw_)",  # names are cut at 15 characters
    # #define ACT_OK TC_ACT_UNSPEC (datadog-agent pkg/security/ebpf/c constants).
    documented_verdict=TC_ACT_UNSPEC,
    source="DataDog/datadog-agent@pkg/security/ebpf/c/include/hooks/network/tc.h",
)
"""Datadog's own CWS / Workload Protection classifiers."""

UNKNOWN: Final = VendorSignature("unknown", source="no signature matched")
"""What :func:`identify` returns when no row matches."""

_BUILTIN: Final[tuple[VendorSignature, ...]] = (
    DATADOG,
    VendorSignature(
        "cilium",
        # Cilium recognises its own filters by the cil_ prefix (hasCiliumTCFilters); legacy
        # names are "<prog>-<device>"; Cilium <= 1.11 used "bpf_lxc.o:[from-container]".
        filter_name=r"^cil_|^bpf_(lxc|host|netdev|overlay|network|wireguard|xdp)\.o:\[",
        prog_name=r"^cil_",
        # CTX_ACT_OK = TC_ACT_OK (bpf/include/bpf/ctx/skb.h); under tcx 0 is TCX_PASS.
        documented_verdict=TC_ACT_OK,
        source="cilium/cilium@pkg/datapath/loader/tc.go, bpf/include/bpf/ctx/skb.h",
        note="Cilium's programs return TC_ACT_OK (or REDIRECT) and never hand packets on "
        "(cilium/cilium#36775).",
        fix="run Cilium with a higher filter priority (agent flag --bpf-filter-priority, e.g. 50; "
        "on Cilium >= 1.16 with tcx, enable-tcx=false keeps legacy tc)",
    ),
    VendorSignature(
        "calico",
        # felix/bpf/tc/attach.go finds its filters by "cali_tc_preambl" or "calico".
        filter_name=r"cali_tc_preambl|calico",
        prog_name=r"^cali_|^calico",
        # allow_no_fib: ctx->fwd.res = TC_ACT_UNSPEC (felix/bpf-gpl tc.c).
        documented_verdict=TC_ACT_UNSPEC,
        source="projectcalico/calico@felix/bpf/tc/attach.go, felix/bpf-gpl/tc.c",
        note="Calico returns TC_ACT_UNSPEC on allow, but TC_ACT_REDIRECT when it FIB-forwards.",
    ),
    VendorSignature(
        "aws-network-policy",
        # aws-ebpf-sdk-go pkg/tc/tc.go: prio 1, handle 1, Name: funcName (handle_ingress/egress).
        filter_name=r"^handle_(ingress|egress)$|_handle_(ingress|egress)$",
        prog_name=r"^handle_(ingress|egress)$",
        # BPF_OK (= 0 = TC_ACT_OK) in tc.v4ingress.bpf.c.
        documented_verdict=TC_ACT_OK,
        source="aws/aws-ebpf-sdk-go@pkg/tc/tc.go, aws/aws-network-policy-agent@pkg/ebpf/c",
        fix="the AWS network policy agent always attaches at priority 1; it cannot be moved",
    ),
    VendorSignature(
        "retina",
        filter_name=r"^endpoint_(ingress|egress)",
        prog_name=r"^endpoint_(ingres|egress)",
        documented_verdict=TC_ACT_UNSPEC,
        source="microsoft/retina#276",
    ),
    VendorSignature(
        "netobserv",
        # tcx programs tcx_ingress_flow_parse / tcx_egress_flow_parse (15-char truncated).
        filter_name=r"^(tcx|tc)_(ingress|egress)_flow",
        prog_name=r"^(tcx|tc)_(ingress|egress)_flo",
        documented_verdict=TC_ACT_UNSPEC,
        source="netobserv/netobserv-ebpf-agent#262, #822",
    ),
    VendorSignature(
        "beyla",
        # Program names not pinned in the reference: only the beyla_ prefix is matched.
        filter_name=r"^beyla_",
        prog_name=r"^beyla_",
        documented_verdict=TC_ACT_UNSPEC,
        source="grafana/beyla#1533, #1541",
    ),
)

_lock = threading.Lock()
_user: list[VendorSignature] = []


def signatures() -> tuple[VendorSignature, ...]:
    """:returns: every row in match order: the registered ones (newest first), then built-ins."""
    with _lock:
        return (*reversed(_user), *_BUILTIN)


def register(signature: VendorSignature) -> None:
    """Add a signature, tried before the built-in ones (and before earlier registrations).

    :param signature: the row to add.
    :raises InvalidArgumentError: it has neither a ``filter_name`` nor a ``prog_name`` pattern.
    """
    if signature.filter_name is None and signature.prog_name is None:
        raise InvalidArgumentError(
            f"vendor signature {signature.name!r} needs a filter_name or prog_name pattern"
        )
    with _lock:
        _user.append(signature)


def unregister(signature: VendorSignature) -> None:
    """Remove a signature added with :func:`register` (no error if it is not there).

    :param signature: the row to remove.
    """
    with _lock:
        if signature in _user:
            _user.remove(signature)


def identify(
    filter_name: str | None,
    prog_name: str | None = None,
    *,
    table: Sequence[VendorSignature] | None = None,
) -> VendorSignature:
    """Find the vendor of a program.

    :param filter_name: the clsact filter name (``TCA_BPF_NAME``), or the program name for tcx.
    :param prog_name: the program name from ``bpf_prog_info``.
    :param table: the rows to try (default: :func:`signatures`; pass it once for many lookups).
    :returns: the first matching row, or :data:`UNKNOWN`.
    """
    for sig in signatures() if table is None else table:
        if sig.matches(filter_name, prog_name):
            return sig
    return UNKNOWN


def resolve_verdict(
    signature: VendorSignature, attach: str, probed: int | None = None
) -> tuple[str | None, VerdictSource]:
    """Decide a program's verdict and where it comes from.

    A test-run result wins (it is what this program does); else the vendor's documented verdict;
    else the verdict is unknown and *assumed* to stop the chain.

    :param signature: the vendor row from :func:`identify`.
    :param attach: ``clsact``, ``tcx`` or ``netkit``.
    :param probed: the return code from :func:`~wpprotect.tc._bpf.probe_verdict`, if run.
    :returns: ``(verdict, source)``; source is ``probed``, ``documented`` or ``assumed``
        (verdict None).
    """
    if probed is not None:
        return verdict_name(probed, attach), "probed"
    documented = signature.verdict(attach)
    if documented is not None:
        return documented, "documented"
    return None, "assumed"
