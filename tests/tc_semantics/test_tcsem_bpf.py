"""bpf(2) through ctypes against the real kernel: load, info, tags, test runs, tcx queries.

Root tests work inside throwaway ``wptc3-*`` namespaces made by the lab (no host device is
touched); the pure helpers (verdict names, test packet, capability parsing) run anywhere.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

import pytest

from wpprotect.errors import BPFError, CapabilityError, InvalidArgumentError
from wpprotect.tc import _bpf, _bpfsys
from wpprotect.tc._lab import Lab

root = pytest.mark.root


@pytest.fixture
def fds() -> Iterator[list[int]]:
    opened: list[int] = []
    try:
        yield opened
    finally:
        for fd in opened:
            os.close(fd)


# --- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "attach", "name"),
    [
        (-1, "clsact", "unspec"),
        (0, "clsact", "ok"),
        (2, "clsact", "shot"),
        (3, "clsact", "pipe"),
        (7, "clsact", "redirect"),
        (42, "clsact", "42"),
        (-1, "tcx", "next"),
        (0, "tcx", "pass"),
        (2, "netkit", "drop"),
        (7, "tcx", "redirect"),
        # Not NEXT: the tcx walk stops there; tcx_action_code() then treats it as NEXT (clsact
        # still runs), so it keeps its own name and does not stop the chain.
        (3, "tcx", "pipe"),
    ],
)
def test_verdict_name(code: int, attach: str, name: str) -> None:
    assert _bpf.verdict_name(code, attach) == name


def test_stops_chain() -> None:
    assert _bpf.stops_chain("ok")
    assert not _bpf.stops_chain("unspec")
    assert not _bpf.stops_chain("pipe")
    assert _bpf.stops_chain("pass", "tcx")
    assert not _bpf.stops_chain("next", "tcx")
    assert not _bpf.stops_chain("pipe", "tcx")


def _ones_complement_ok(data: bytes) -> bool:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_test_packet_is_a_well_formed_tcp_syn() -> None:
    pkt = _bpf.test_packet()
    assert len(pkt) == 54
    assert pkt[12:14] == b"\x08\x00"
    ip, tcp = pkt[14:34], pkt[34:]
    assert ip[0] == 0x45
    assert ip[9] == socket.IPPROTO_TCP
    assert struct.unpack("!H", ip[2:4])[0] == 40
    assert _ones_complement_ok(ip)
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    assert _ones_complement_ok(pseudo + tcp)
    assert tcp[13] == 0x02  # SYN only


STATUS = """Name:\tcat
CapInh:\t0000000000000000
CapPrm:\t000001ffffffffff
CapEff:\t{eff}
CapBnd:\t000001ffffffffff
"""


def test_capabilities_parsing() -> None:
    full = STATUS.format(eff="000001ffffffffff")
    assert _bpf.capabilities(full) == {"CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_PERFMON", "CAP_BPF"}
    only_net_admin = STATUS.format(eff=f"{1 << 12:016x}")
    assert _bpf.capabilities(only_net_admin) == {"CAP_NET_ADMIN"}
    assert _bpf.capabilities(STATUS.format(eff="0000000000000000")) == set()
    with pytest.raises(CapabilityError, match="no CapEff"):
        _bpf.capabilities("Name:\tx\n")
    with pytest.raises(CapabilityError, match="unreadable"):
        _bpf.capabilities(STATUS.format(eff="zz"))


def test_require_names_the_missing_capability() -> None:
    with pytest.raises(CapabilityError, match="CAP_NET_ADMIN is missing"):
        _bpf.require("CAP_BPF", "CAP_NET_ADMIN", held={"CAP_BPF"})
    _bpf.require("CAP_BPF", held={"CAP_SYS_ADMIN"})  # pre-5.8 kernels: SYS_ADMIN covers BPF
    with pytest.raises(InvalidArgumentError, match="unknown capability"):
        _bpf.require("CAP_FLY", held=set())


def test_bad_arguments_are_refused_before_any_syscall() -> None:
    with pytest.raises(InvalidArgumentError, match="15 characters"):
        _bpf.prog_load_return(0, "cil_from_container")
    with pytest.raises(InvalidArgumentError, match="15 characters"):
        _bpf.prog_load_return(0, "bad-name")
    with pytest.raises(InvalidArgumentError, match="32-bit"):
        _bpf.prog_load_return(2**31, "x")
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        _bpf.prog_info()
    with pytest.raises(InvalidArgumentError, match=">= 14"):
        _bpf.prog_test_run(0, bytes(13))


@root
def test_capabilities_of_root() -> None:
    assert {"CAP_NET_ADMIN", "CAP_SYS_ADMIN"} <= _bpf.capabilities()
    _bpf.require("CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_BPF")


# --- kernel -----------------------------------------------------------------------------------


@root
def test_load_info_and_deterministic_tags(fds: list[int]) -> None:
    fd0 = _bpf.prog_load_return(_bpf.TC_ACT_OK, "wptc3_ok")
    fds.append(fd0)
    fdm = _bpf.prog_load_return(_bpf.TC_ACT_UNSPEC, "wptc3_unspec")
    fds.append(fdm)
    info = _bpf.prog_info(fd=fd0)
    assert info.tag == "59f4a931744dcdc6"
    assert (info.type, info.name, info.xlated_prog_len) == (3, "wptc3_ok", 16)
    assert info.load_time_ns > 0
    assert info.id > 0
    by_id = _bpf.prog_info(info.id)
    assert by_id.tag == info.tag
    assert by_id.id == info.id
    assert _bpf.prog_info(fd=fdm).tag == "7c85c77581178cdb"
    assert info.to_dict()["tag"] == "59f4a931744dcdc6"


@root
def test_missing_program_is_enoent_and_the_reader_answers_none(fds: list[int]) -> None:
    fd = _bpf.prog_load_return(0, "wptc3_gone")
    prog_id = _bpf.prog_info(fd=fd).id
    fields = _bpfsys.prog_fields(prog_id)
    assert fields is not None
    assert _bpf.ProgInfo(*fields) == _bpf.prog_info(prog_id)
    os.close(fd)
    assert Lab.wait_programs_released([prog_id]) == []
    with pytest.raises(BPFError) as exc:
        _bpf.prog_info(prog_id)
    assert exc.value.errno == errno.ENOENT
    assert _bpfsys.prog_fields(prog_id) is None  # what a scan reports for a vanished program


@root
@pytest.mark.parametrize("code", [0, -1, 2, 7])
def test_test_run_returns_the_signed_code(fds: list[int], code: int) -> None:
    fd = _bpf.prog_load_return(code, "wptc3_run")
    fds.append(fd)
    assert _bpf.prog_test_run(fd, bytes(14)) == code
    assert _bpf.prog_test_run(fd, _bpf.test_packet(), repeat=3) == code
    assert _bpf.probe_verdict(_bpf.prog_info(fd=fd).id) == code


@root
def test_stats_count_runs_only_while_enabled(fds: list[int]) -> None:
    fd = _bpf.prog_load_return(0, "wptc3_stats")
    fds.append(fd)
    stats = _bpf.enable_stats()
    try:
        _bpf.prog_test_run(fd, _bpf.test_packet(), repeat=5)
    finally:
        os.close(stats)
    info = _bpf.prog_info(fd=fd)
    assert info.run_cnt == 5
    assert info.run_time_ns > 0
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        globally_on = f.read().strip() == "1"
    _bpf.prog_test_run(fd, _bpf.test_packet(), repeat=5)
    assert _bpf.prog_info(fd=fd).run_cnt == (10 if globally_on else 5)


@root
def test_prog_query_lists_tcx_links_in_order_with_revision() -> None:
    with Lab("wptc3") as lab:
        ns = lab.netns("query")
        ns.add_veth("w3q0", "w3q0p", clsact=False)
        empty = ns.prog_query("w3q0", "ingress")
        assert empty is not None
        assert (empty.prog_ids, empty.link_ids, empty.revision) == ((), (), 1)
        a = ns.add_tcx("w3q0", "ingress", _bpf.TCX_NEXT, prog_name="wptc3_a")
        b = ns.add_tcx("w3q0", "ingress", _bpf.TCX_PASS, prog_name="wptc3_b")
        c = ns.add_tcx("w3q0", "ingress", _bpf.TCX_NEXT, prog_name="wptc3_c", first=True)
        q = ns.prog_query("w3q0", "ingress")
        assert q is not None
        assert q.prog_ids == (c.program.id, a.program.id, b.program.id)
        assert q.link_ids == (c.id, a.id, b.id)
        assert q.revision == 4  # 1, then +1 per attach
        assert q.to_dict()["prog_ids"] == list(q.prog_ids)
        eg = ns.prog_query("w3q0", "egress")
        assert eg is not None
        assert eg.prog_ids == ()
        # The link's own info agrees with the query.
        info = _bpf.link_info(a.fd)
        assert (info.id, info.prog_id, info.attach_type) == (
            a.id,
            a.program.id,
            _bpf.BPF_TCX_INGRESS,
        )
        assert info.ifindex == ns.ifindex["w3q0"]


@root
def test_prog_query_on_a_missing_device_or_unsupported_type() -> None:
    with Lab("wptc3") as lab:
        ns = lab.netns("nodev")
        ns.add_veth("w3n0", "w3n0p", clsact=False)
        # netkit attach types on a veth: EINVAL, reported as "not supported here".
        assert ns.run(_bpf.prog_query, ns.ifindex["w3n0"], _bpf.BPF_NETKIT_PEER) is None
        with pytest.raises(BPFError) as exc:
            ns.run(_bpf.prog_query, 999, _bpf.BPF_TCX_INGRESS)
        assert exc.value.errno == errno.ENODEV


@root
def test_prog_attach_without_a_link_shows_link_id_zero(fds: list[int]) -> None:
    with Lab("wptc3") as lab:
        ns = lab.netns("attach")
        ns.add_veth("w3t0", "w3t0p", clsact=False)
        prog = lab.program(_bpf.TCX_NEXT, "wptc3_plain")
        idx = ns.ifindex["w3t0"]
        ns.run(_bpf.prog_attach, prog.fd, idx, _bpf.BPF_TCX_EGRESS)
        q = ns.run(_bpf.prog_query, idx, _bpf.BPF_TCX_EGRESS)
        assert q is not None
        assert q.prog_ids == (prog.id,)
        assert q.link_ids == (0,)
        ns.run(_bpf.prog_detach, prog.fd, idx, _bpf.BPF_TCX_EGRESS)
        q = ns.run(_bpf.prog_query, idx, _bpf.BPF_TCX_EGRESS)
        assert q is not None
        assert q.prog_ids == ()
