"""netkit against recorded kernel answers (this VM has no netkit driver, so no netkit device can
be built): the scan reads a lab namespace whose veth pair is presented as a netkit pair, and
``BPF_PROG_QUERY`` answers as drivers/net/netkit.c does: ``EACCES`` for the netkit attach types on
the peer, the attached programs on the primary. The programs themselves are real (loaded, so their
details are read), their placement is what is judged.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest

from wpprotect.errors import BPFError
from wpprotect.tc import _bpf, _bpfsys, _netlink
from wpprotect.tc._inspector import TCInspector
from wpprotect.tc._lab import Lab, LabNetns

pytestmark = pytest.mark.root


@pytest.fixture
def netkit(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Lab, LabNetns, dict[int, int]]]:
    with Lab("wpwalknk") as lab:
        ns = lab.netns("nk")
        ns.add_veth("nkp0", "nkq0", up=True)  # primary, peer
        for direction in ("ingress", "egress"):
            name = f"classifier_{direction}"
            ns.add_filter("nkp0", direction, _bpf.TC_ACT_UNSPEC, prog_name=name[:15],
                          priority=10, handle=2, name=f"{name}_security_1_2")  # fmt: skip
        primary, peer = ns.ifindex["nkp0"], ns.ifindex["nkq0"]
        attached: dict[int, int] = {}  # attach type -> program id
        real_links = _netlink.RtnlReader.links
        real_query = _bpfsys.query

        def links(self: _netlink.RtnlReader) -> list[_netlink.LinkRecord]:
            out = real_links(self)
            for link in out:
                link.netkit = link.ifindex in (primary, peer)
            return out

        def query(ifindex: int, attach_type: int) -> _bpfsys.QueryTuple | None:
            if attach_type in (_bpf.BPF_NETKIT_PRIMARY, _bpf.BPF_NETKIT_PEER):
                if ifindex == peer:
                    raise BPFError("BPF_PROG_QUERY failed: Permission denied", errno=errno.EACCES)
                if ifindex == primary:
                    pid = attached.get(attach_type)
                    return ((pid,), (0,), 0, 2) if pid else ((), (), 0, 1)
            return real_query(ifindex, attach_type)

        monkeypatch.setattr(_netlink.RtnlReader, "links", links)
        monkeypatch.setattr(_bpfsys, "query", query)
        yield lab, ns, attached


def test_peer_eacces_never_drops_the_namespace(
    netkit: tuple[Lab, LabNetns, dict[int, int]],
) -> None:
    _lab, ns, _attached = netkit
    report = TCInspector(netns=ns.path).scan()
    assert [n.label for n in report.namespaces] == [ns.path]
    assert report.warnings == ()
    assert report.assess(10).ok


def test_peer_program_redirecting_runs_before_the_primary_ingress(
    netkit: tuple[Lab, LabNetns, dict[int, int]],
) -> None:
    lab, ns, attached = netkit
    attached[_bpf.BPF_NETKIT_PEER] = lab.program(_bpf.TCX_REDIRECT, "nk_redirect").id
    a = TCInspector(netns=ns.path, probe=True).scan().assess(10)
    assert [(f.code, f.ifname, f.direction) for f in a.findings if f.needs_action] == [
        ("tcx-bypass", "nkp0", "ingress")
    ]


def test_primary_program_runs_after_the_primary_egress_hooks(
    netkit: tuple[Lab, LabNetns, dict[int, int]],
) -> None:
    # A PRIMARY program runs when the primary transmits: after its clsact egress filters, so
    # Datadog's egress classifier there still sees every packet (no finding).
    lab, ns, attached = netkit
    attached[_bpf.BPF_NETKIT_PRIMARY] = lab.program(_bpf.TCX_REDIRECT, "nk_redirect").id
    report = TCInspector(netns=ns.path, probe=True).scan()
    progs = [p for p in report.programs if p.attach == "netkit"]
    assert [(p.ifname, p.direction, p.verdict) for p in progs] == [("nkp0", "egress", "redirect")]
    assert report.assess(10).ok
