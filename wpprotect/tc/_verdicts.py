"""What a TC program's return code means to the hook it runs on (no ctypes, no attrs).

``TC_ACT_*`` for clsact filters (``include/uapi/linux/pkt_cls.h``), ``TCX_*`` for tcx and netkit
programs (``include/uapi/linux/bpf.h``). :mod:`wpprotect.tc._bpf` re-exports every name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final

__all__ = [
    "TCX_DROP",
    "TCX_NEXT",
    "TCX_PASS",
    "TCX_REDIRECT",
    "TC_ACT_OK",
    "TC_ACT_PIPE",
    "TC_ACT_QUEUED",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_REDIRECT",
    "TC_ACT_REPEAT",
    "TC_ACT_SHOT",
    "TC_ACT_STOLEN",
    "TC_ACT_TRAP",
    "TC_ACT_UNSPEC",
    "action_list_verdict",
    "action_name",
    "probe_summary",
    "stops_chain",
    "verdict_name",
]

TC_ACT_UNSPEC: Final = -1
"""Continue with the next classifier (clsact, direct-action)."""
TC_ACT_OK: Final = 0
"""Accept the packet and stop classification: later filters never run."""
TC_ACT_RECLASSIFY: Final = 1
"""Reclassify (direct-action cls_bpf turns it into UNSPEC)."""
TC_ACT_SHOT: Final = 2
"""Drop the packet."""
TC_ACT_PIPE: Final = 3
"""Pipe (direct-action cls_bpf turns it into UNSPEC)."""
TC_ACT_STOLEN: Final = 4
"""Consumed by the program."""
TC_ACT_QUEUED: Final = 5
"""Queued (direct-action cls_bpf turns it into UNSPEC)."""
TC_ACT_REPEAT: Final = 6
"""Repeat (direct-action cls_bpf turns it into UNSPEC)."""
TC_ACT_REDIRECT: Final = 7
"""Redirected to another device by the program."""
TC_ACT_TRAP: Final = 8
"""Trap, equivalent to STOLEN in the software path."""
TC_ACT_JUMP: Final = 1 << 28
"""Action control: skip the next N actions of the list (N in the low bits)."""
TC_ACT_GOTO_CHAIN: Final = 2 << 28
"""Action control: continue classification in chain N (N in the low bits)."""
_EXT_MASK: Final = 0x0FFFFFFF

TCX_NEXT: Final = -1
"""tcx/netkit: run the next program (and then the clsact filters)."""
TCX_PASS: Final = 0
"""tcx/netkit: accept; no later tcx program and no clsact filter runs."""
TCX_DROP: Final = 2
"""tcx/netkit: drop."""
TCX_REDIRECT: Final = 7
"""tcx/netkit: redirected by the program."""

_TC_NAMES: Final = {
    -1: "unspec",
    0: "ok",
    1: "reclassify",
    2: "shot",
    3: "pipe",
    4: "stolen",
    5: "queued",
    6: "repeat",
    7: "redirect",
    8: "trap",
    1 << 28: "jump",
    2 << 28: "goto_chain",
}
_TCX_NAMES: Final = {-1: "next", 0: "pass", 2: "drop", 7: "redirect"}
# net/sched/cls_bpf.c cls_bpf_exec_opcode: only these pass through in direct-action mode, every
# other value becomes TC_ACT_UNSPEC; and `if (ret == TC_ACT_UNSPEC) continue; break;`.
_TC_STOPPING: Final = frozenset({"ok", "shot", "stolen", "trap", "redirect"})
# include/net/tcx.h tcx_action_code: PASS, DROP and REDIRECT are kept, anything else is NEXT.
_TCX_STOPPING: Final = frozenset({"pass", "drop", "redirect"})


def verdict_name(code: int, attach: str = "clsact") -> str:
    """Name a program's return code the way the hook it is attached to reads it.

    :param code: the signed return value (e.g. from :func:`prog_test_run`).
    :param attach: ``"clsact"`` (``TC_ACT_*`` names: ``ok``, ``unspec``, ``shot``, ``redirect``...)
        or ``"tcx"`` / ``"netkit"`` (``pass``, ``next``, ``drop``, ``redirect``).
    :returns: the lower-case name; for tcx/netkit a code other than NEXT/PASS/DROP/REDIRECT keeps
        its ``TC_ACT_*`` name or decimal value (it ends the tcx walk, and then acts as NEXT: the
        clsact filters still run); for clsact an unknown code is its decimal value.
    """
    if attach in ("tcx", "netkit"):
        # Not NEXT, so the tcx walk stops here; not PASS/DROP/REDIRECT, so tcx_action_code()
        # turns it into NEXT and the clsact filters still run (include/net/tcx.h).
        found = _TCX_NAMES.get(code)
        return found if found is not None else _TC_NAMES.get(code, str(code))
    return _TC_NAMES.get(code, str(code))


def action_name(code: int | None) -> str | None:
    """Name an action's control verdict: ``unspec`` (tc's ``continue``), ``pipe``, ``ok``,
    ``goto_chain 1``, ``jump 2``... None stays None (not readable statically)."""
    if code is None:
        return None
    ext = code & ~_EXT_MASK
    if ext == TC_ACT_GOTO_CHAIN:
        return f"goto_chain {code & _EXT_MASK}"
    if ext == TC_ACT_JUMP:
        return f"jump {code & _EXT_MASK}"
    return _TC_NAMES.get(code, str(code))


def action_list_verdict(codes: tuple[int | None, ...] | list[int | None]) -> int | None:
    """What a filter's action list returns to the classification walk.

    ``tcf_action_exec`` (net/sched/act_api.c) runs the actions in order: PIPE goes on to the next
    action, JUMP skips some, anything else is returned at once; after the last action its value is
    returned. An empty list returns ``TC_ACT_OK`` (``tcf_exts_exec``).
    See docs/reference/kernel-tc.md#tc-walk.

    :param codes: each action's control verdict in order (None: not readable statically).
    :returns: the verdict, or None when an action that decides it cannot be read.
    """
    if not codes:
        return TC_ACT_OK
    ret: int | None = TC_ACT_PIPE
    i = 0
    while i < len(codes):
        ret = codes[i]
        if ret is None:
            return None
        if ret & ~_EXT_MASK == TC_ACT_JUMP:
            i += 1 + (ret & _EXT_MASK)
            ret = TC_ACT_PIPE
            continue
        if ret != TC_ACT_PIPE:
            return ret
        i += 1
    return ret


def stops_chain(verdict: str, attach: str = "clsact") -> bool:
    """Whether a verdict ends the hook's processing, so programs after it never see the packet.

    :param verdict: a name from :func:`verdict_name`.
    :param attach: ``"clsact"``, ``"tcx"`` or ``"netkit"``.
    :returns: True for ``ok``/``shot``/``stolen``/``trap``/``redirect`` on clsact (direct-action)
        and for ``pass``/``drop``/``redirect`` on tcx/netkit.
    """
    if attach in ("tcx", "netkit"):
        return verdict in _TCX_STOPPING
    return verdict in _TC_STOPPING


def probe_summary(
    codes: Mapping[str, int], attach: str = "clsact", direct_action: bool | None = None
) -> tuple[dict[str, str], str]:
    """Name a probe's return codes per traffic class, and pick the program's one verdict.

    :param codes: traffic class → the signed value a test run returned (not empty).
    :param attach: ``clsact``, ``tcx`` or ``netkit``.
    :param direct_action: False for a clsact filter not in direct-action mode (its 0 means "no
        match", anything else a match).
    :returns: ``(class → verdict name, verdict)``: the verdict all classes share, or, when they
        disagree, the first that ends the walk (a non-direct-action filter: the first match).
    """
    names = {cls: verdict_name(code, attach) for cls, code in codes.items()}
    values = list(names.values())
    if len(set(values)) == 1:
        return names, values[0]
    if attach != "clsact":
        ends = next((v for v in values if stops_chain(v, attach)), None)
        return names, ends or next(v for v in values if v != "next")
    if direct_action is False:
        return names, next(v for v in values if v != "ok")
    return names, next((v for v in values if stops_chain(v)), values[0])
