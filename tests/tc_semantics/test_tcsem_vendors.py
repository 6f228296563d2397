"""Vendor identification: real filter and program names from the reference, and user rows."""

from __future__ import annotations

import pytest

from wpprotect.errors import InvalidArgumentError
from wpprotect.tc import _bpf
from wpprotect.tc._vendors import (
    UNKNOWN,
    VendorSignature,
    identify,
    register,
    resolve_verdict,
    signatures,
    unregister,
)


@pytest.mark.parametrize(
    ("filter_name", "prog_name", "vendor"),
    [
        # docs/reference/kernel-tc.md#tc-vendors, names as they appear in the wild
        ("cil_from_container-lxc461b2341ecd6", "cil_from_contai", "cilium"),
        ("bpf_lxc.o:[from-container]", None, "cilium"),
        ("bpf_host.o:[to-host]", None, "cilium"),
        (None, "cil_from_netdev", "cilium"),  # tcx: only the program name
        ("cali_tc_preambl:[61]", "cali_tc_preambl", "calico"),
        ("calico_from_hos:[61]", "calico_from_hos", "calico"),
        ("to_hep_no_log.o:[calico_to_host_ep]", None, "calico"),
        ("handle_ingress", "handle_ingress", "aws-network-policy"),
        ("handle_egress", None, "aws-network-policy"),
        ("default-pod-ns_handle_egress", None, "aws-network-policy"),
        ("classifier_ingress_security380_4026531992_2115", "classifier_ingr", "datadog-cws"),
        ("classifier_egress_security_1_2", None, "datadog-cws"),
        ("classifier_raw_packet_ingress_x_1", None, "datadog-cws"),
        (None, "classifier_raw_", "datadog-cws"),
        (None, "endpoint_ingres", "retina"),
        ("tcx_ingress_flow_parse", "tcx_ingress_flo", "netobserv"),
        (None, "tcx_egress_flow", "netobserv"),
        (None, "beyla_app_ingre", "beyla"),
        ("mystery_fw", "mystery_fw", "unknown"),
        ("", "", "unknown"),
        (None, None, "unknown"),
    ],
)
def test_identify(filter_name: str | None, prog_name: str | None, vendor: str) -> None:
    assert identify(filter_name, prog_name).name == vendor


@pytest.mark.parametrize(
    ("vendor", "attach", "verdict"),
    [
        ("cilium", "clsact", "ok"),
        ("cilium", "tcx", "pass"),  # CTX_ACT_OK = 0 = TCX_PASS
        ("calico", "clsact", "unspec"),
        ("aws-network-policy", "clsact", "ok"),
        ("datadog-cws", "clsact", "unspec"),
        ("netobserv", "tcx", "next"),
        ("retina", "clsact", "unspec"),
    ],
)
def test_documented_verdicts(vendor: str, attach: str, verdict: str) -> None:
    sig = next(s for s in signatures() if s.name == vendor)
    assert sig.verdict(attach) == verdict
    assert sig.source
    assert resolve_verdict(sig, attach) == (verdict, "documented")


def test_probe_beats_documentation_and_unknown_is_assumed() -> None:
    cilium = identify("cil_from_container-lxc1", None)
    assert resolve_verdict(cilium, "clsact", probed=_bpf.TC_ACT_UNSPEC) == ("unspec", "probed")
    assert resolve_verdict(UNKNOWN, "clsact") == (None, "assumed")
    assert resolve_verdict(UNKNOWN, "tcx", probed=42) == ("42", "probed")


def test_registered_rows_win_over_builtins_and_can_be_removed() -> None:
    mine = VendorSignature(
        "acme-fw", filter_name=r"^cil_from_container-acme", documented_verdict=0, source="acme"
    )
    register(mine)
    try:
        assert identify("cil_from_container-acme1", None).name == "acme-fw"
        assert identify("cil_from_container-lxc1", None).name == "cilium"
        assert signatures()[0] is mine
    finally:
        unregister(mine)
    assert identify("cil_from_container-acme1", None).name == "cilium"
    unregister(mine)  # a second removal is harmless


def test_bad_rows_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="needs a filter_name or prog_name"):
        register(VendorSignature("empty"))
    with pytest.raises(InvalidArgumentError, match="invalid vendor signature regex"):
        VendorSignature("bad", filter_name="(")


def test_to_dict_is_plain() -> None:
    d = identify("handle_ingress").to_dict()
    assert d["name"] == "aws-network-policy"
    assert d["documented_verdict"] == 0
    assert isinstance(d["filter_name"], str)
