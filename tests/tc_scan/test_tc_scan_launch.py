"""The ``wpprotect`` entry point (wpprotect._launch): a plain ``tc scan`` command line starts its
kernel read before the CLI loads; what it read is used only if it is what the parsed arguments
ask for, and no reader outlives the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.tc_scan._scene import Scene
from wpprotect import _launch
from wpprotect.tc import TCInspector, _bpf, _prefetch


@pytest.mark.parametrize(
    ("argv", "netns"),
    [
        (["tc", "scan"], "all"),
        (["tc", "scan", "--json"], "all"),
        (["tc", "scan", "--netns", "ns1", "--json"], "ns1"),
        (["tc", "scan", "--netns=/proc/1/ns/net"], "/proc/1/ns/net"),
        (["--debug", "tc", "scan", "--classifier-priority", "5", "--netns", "x", "--probe"], "x"),
        (["--no-color", "tc", "scan", "--classifier-priority=5", "--no-color"], "all"),
        (["tc", "scan", "--help"], None),
        (["tc", "scan", "-h"], None),
        (["tc", "scan", "--net", "x"], None),  # argparse would take the abbreviation: no guess
        (["tc", "scan", "--netns"], None),  # a usage error for the CLI to report
        (["tc", "scan", "extra"], None),
        (["tc"], None),
        (["doctor"], None),
        ([], None),
        (["--version"], None),
    ],
)
def test_only_a_plain_tc_scan_is_read_ahead(argv: list[str], netns: str | None) -> None:
    assert _launch.scan_netns(argv) == netns


@pytest.fixture(scope="module")
def spaces() -> Iterator[dict[str, str]]:
    sc = Scene()
    try:
        a = sc.netns("wptc4la")
        b = sc.netns("wptc4lb")
        sc.veth(a, "w4l0", "w4l1")
        sc.veth(b, "w4m0", "w4m1")
        ok = sc.prog(_bpf.TC_ACT_OK, "cil_from_contai")
        cali = sc.prog(_bpf.TC_ACT_UNSPEC, "cali_tc_preambl")
        sc.bpf_filter(a, "w4l0", "ingress", prio=1, handle=1, name="cil_from_container-w4l0",
                      fd=ok)  # fmt: skip
        sc.bpf_filter(b, "w4m0", "ingress", prio=2, handle=1, name="cali_tc_preambl:[1]",
                      fd=cali)  # fmt: skip
        yield {"a": a, "b": b}
    finally:
        sc.close()


# Runs the entry point in a fresh process and says whether the scan forked its own reader
# (it does not when the one forked at launch was used) and whether a child was left behind.
_PROBE = """\
import io, json, os, sys, contextlib
from wpprotect import _launch
from wpprotect.tc import _prefetch
late = []
start = _prefetch._Child.start.__func__
def counting(cls, *a):
    late.append(1)
    return start(cls, *a)
_prefetch._Child.start = classmethod(counting)
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        rc = _launch.main(json.loads(sys.argv[1]))
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
try:
    left = os.waitpid(-1, os.WNOHANG)
except ChildProcessError:
    left = None
print(json.dumps({"rc": rc, "late": len(late), "left": left, "out": out.getvalue(),
                  "err": err.getvalue()}))
"""


def _launch_run(*argv: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _programs(doc: dict[str, Any]) -> list[tuple[object, ...]]:
    return [(p["netns"], p["ifname"], p["priority"], p["vendor"]) for p in doc["programs"]]


@pytest.mark.root
@pytest.mark.parametrize("which", ["a", "b"])
def test_the_launch_reader_is_used_and_gives_the_same_report(
    spaces: dict[str, str], which: str
) -> None:
    got = _launch_run("tc", "scan", "--json", "--netns", spaces[which])
    assert got["late"] == 0  # read by the reader forked at launch
    assert got["left"] is None  # and it was reaped
    report = TCInspector(netns=spaces[which]).scan()
    expected = json.loads(report.to_json())
    assert _programs(json.loads(got["out"])) == _programs(expected)
    assert got["rc"] == (1 if which == "a" else 0)


@pytest.mark.root
def test_all_namespaces_are_read_at_launch_too(spaces: dict[str, str]) -> None:
    got = _launch_run("tc", "scan", "--json", "--classifier-priority", "10")
    assert got["late"] == 0
    doc = json.loads(got["out"])
    labels = {n["label"] for n in doc["namespaces"]}
    assert {spaces["a"], spaces["b"]} <= labels


@pytest.mark.root
def test_an_abbreviated_option_is_not_guessed_but_works(spaces: dict[str, str]) -> None:
    got = _launch_run("tc", "scan", "--json", "--net", spaces["b"])
    assert got["late"] == 1  # nothing read at launch: the scan forked its reader itself
    assert [p[3] for p in _programs(json.loads(got["out"]))] == ["calico"]


@pytest.mark.root
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tc", "scan", "--netns", "wptc4-no-such-ns"], "no network namespace named"),
        (["tc", "scan", "--classifier-priority", "0"], "--classifier-priority"),
    ],
)
def test_errors_are_the_clis_and_no_reader_is_left(argv: list[str], message: str) -> None:
    got = _launch_run(*argv)
    assert got["rc"] == 2
    assert message in got["err"]
    assert got["left"] is None


@pytest.mark.root
def test_a_launch_reader_for_another_namespace_is_discarded(spaces: dict[str, str]) -> None:
    early = _launch._fork_reader(spaces["a"])
    assert early is not None
    _launch._early = early
    try:
        report = _prefetch.scan(TCInspector(netns=spaces["b"], classifier_priority=10))
    finally:
        assert _launch.take_early() is None  # handed over, then closed
    assert [p.vendor for p in report.programs] == ["calico"]
    with pytest.raises(ChildProcessError):
        os.waitpid(early.pid if early.pid > 0 else -1, os.WNOHANG)
