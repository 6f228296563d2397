"""``wpprotect tc scan`` as a separate process: JSON contract, table, exit statuses 0/1/2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.tc_scan._scene import Scene
from wpprotect.tc import _bpf

# docs/reference/contract.md#contract-scan-json: the documented keys, in this order, with these
# JSON types (extra keys follow).
PROGRAM_KEYS = {
    "netns": str, "ifname": str, "ifindex": int, "direction": str, "attach": str,
    "priority": (int, type(None)), "handle": (int, type(None)), "protocol": str, "name": str,
    "prog_id": int, "prog_name": str, "prog_tag": str, "direct_action": (bool, type(None)),
    "vendor": str,
}  # fmt: skip
FINDING_KEYS = {
    "code": str, "severity": str, "netns": str, "ifname": str, "direction": str, "vendor": str,
    "vendor_priority": (int, type(None)), "classifier_priority": int,
    "recommended_classifier_priority": (int, type(None)), "message": str,
}  # fmt: skip


def wpprotect(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [*prefix, sys.executable, "-m", "wpprotect", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` with this tree on the path; it must succeed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )


@pytest.fixture(scope="module")
def scenes() -> Iterator[dict[str, str]]:
    """``bad``: Cilium at prio 1 ahead of Datadog; ``good``: Calico (UNSPEC) only."""
    sc = Scene()
    try:
        bad = sc.netns("wptc4bad")
        good = sc.netns("wptc4good")
        sc.veth(bad, "w4f0", "w4f1")
        sc.veth(good, "w4g0", "w4g1")
        ok = sc.prog(_bpf.TC_ACT_OK, "cil_from_contai")
        dd = sc.prog(_bpf.TC_ACT_UNSPEC, "classifier_ingr")
        cali = sc.prog(_bpf.TC_ACT_UNSPEC, "cali_tc_preambl")
        sc.bpf_filter(bad, "w4f0", "ingress", prio=1, handle=1, name="cil_from_container-w4f0",
                      fd=ok)  # fmt: skip
        sc.bpf_filter(bad, "w4f0", "ingress", prio=10, handle=2, name="classifier_ingress_1_2",
                      fd=dd)  # fmt: skip
        sc.bpf_filter(good, "w4g0", "ingress", prio=2, handle=1, name="cali_tc_preambl:[1]",
                      fd=cali)  # fmt: skip
        yield {"bad": bad, "good": good}
    finally:
        sc.close()


def _listdir(directory: str) -> list[str]:
    return os.listdir(directory) if os.path.isdir(directory) else []


def _check_types(obj: dict[str, object], spec: dict[str, object]) -> None:
    assert list(obj)[: len(spec)] == list(spec)  # documented keys first, in order
    for key, types in spec.items():
        assert isinstance(obj[key], types), (key, obj[key])  # type: ignore[arg-type]


@pytest.mark.root
def test_json_contract_and_exit_1_when_action_needed(scenes: dict[str, str]) -> None:
    bad = scenes["bad"]
    proc = wpprotect("tc", "scan", "--json", "--netns", bad, "--classifier-priority", "10")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert list(doc)[:3] == ["programs", "findings", "classifier_priority"]
    assert doc["classifier_priority"] == 10
    assert len(doc["programs"]) == 2
    for prog in doc["programs"]:
        _check_types(prog, PROGRAM_KEYS)
        assert prog["attach"] == "clsact"
        assert prog["netns"] == bad
    cil = doc["programs"][0]
    assert (cil["vendor"], cil["priority"], cil["handle"], cil["prog_tag"]) == (
        "cilium", 1, 1, "59f4a931744dcdc6",
    )  # fmt: skip
    (finding,) = [f for f in doc["findings"] if f["code"] == "network-blind"]
    _check_types(finding, FINDING_KEYS)
    assert (finding["vendor"], finding["vendor_priority"], finding["ifname"]) == (
        "cilium", 1, "w4f0",
    )  # fmt: skip


@pytest.mark.root
def test_probe_shows_each_programs_verdict_per_traffic_class(scenes: dict[str, str]) -> None:
    proc = wpprotect("tc", "scan", "--json", "--probe", "--netns", scenes["bad"])
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["probe"] is True
    cil, dd = doc["programs"]
    assert cil["probes"] == {
        "tcp/ipv4": "ok", "udp/ipv4": "ok", "icmp/ipv4": "ok", "tcp/ipv6": "ok",
        "udp/ipv6": "ok", "arp": "ok",
    }  # fmt: skip
    assert (cil["verdict"], cil["verdict_source"]) == ("ok", "probed")
    assert (dd["vendor"], dd["probes"], dd["verdict_source"]) == (
        "datadog-cws",
        None,
        "documented",
    )
    (finding,) = [f for f in doc["findings"] if f["code"] == "network-blind"]
    assert (finding["basis"], finding["protocols"]) == ("probed", None)
    without = json.loads(wpprotect("tc", "scan", "--json", "--netns", scenes["bad"]).stdout)
    assert [p["probes"] for p in without["programs"]] == [None, None]


@pytest.mark.root
def test_exit_0_and_table_when_nothing_to_do(scenes: dict[str, str]) -> None:
    proc = wpprotect("tc", "scan", "--netns", scenes["good"], "--classifier-priority", "10")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0].split()
    assert first[:4] == ["netns", "ifname", "dir", "attach"]
    assert "cali_tc_preambl:[1]" in proc.stdout
    assert "calico" in proc.stdout


@pytest.mark.root
def test_unknown_netns_exit_2_one_line_nothing_created() -> None:
    proc = wpprotect("tc", "scan", "--netns", "wptc4-nosuch")
    assert proc.returncode == 2
    assert "programs" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "wptc4-nosuch" in lines[0]
    assert "Traceback" not in proc.stderr
    # Only this name is checked: other test runs may add namespaces meanwhile.
    for directory in ("/var/run/netns", "/var/run/docker/netns"):
        assert not any("nosuch" in n for n in _listdir(directory))
    assert not os.path.exists("/var/run/netns/wptc4-nosuch")


@pytest.mark.root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
@pytest.mark.parametrize(
    ("drop", "named"),
    [("-all", "CAP_NET_ADMIN"), ("-sys_admin", "CAP_SYS_ADMIN")],
)
def test_missing_capability_exit_2_names_it(drop: str, named: str) -> None:
    # Root without capabilities: the bounding set caps what exec grants (what a non-root user
    # or a container without NET_ADMIN gets).
    proc = wpprotect(
        "tc", "scan", "--json", prefix=("setpriv", f"--bounding-set={drop}", "--inh-caps=-all")
    )
    message = f"{named} is missing (run as root or grant {named})"
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"wpprotect: error: {message}"]
    if proc.stdout:  # with --json the CLI may also say it as a JSON document
        assert json.loads(proc.stdout)["error"]["message"] == message


@pytest.mark.parametrize("value", ["0", "65536", "ten"])
def test_bad_classifier_priority_is_a_usage_error(value: str) -> None:
    proc = wpprotect("tc", "scan", "--classifier-priority", value)
    assert proc.returncode == 2
    assert "--classifier-priority" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tc_without_subcommand_is_a_usage_error() -> None:
    proc = wpprotect("tc")
    assert proc.returncode == 2
    assert "scan" in proc.stderr


@pytest.mark.root
def test_scan_path_imports_no_heavy_backend(scenes: dict[str, str]) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from wpprotect.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['tc', 'scan', '--json', '--netns', {scenes['bad']!r},"
        " '--classifier-priority', '10'])\n"
        "heavy = ('pyroute2', 'ruamel', 'docker', 'kubernetes', 'wpprotect.config')\n"
        "print(rc, sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = _python(code).stdout
    assert out.strip() == "1 []"


@pytest.mark.root
@pytest.mark.parametrize("debug", [False, True])
def test_a_warning_during_a_scan_has_the_cli_format(scenes: dict[str, str], debug: bool) -> None:
    # The same logging set-up as for every other command; --debug at DEBUG level.
    code = (
        "import io, contextlib\n"
        "from wpprotect.cli import main\n"
        "from wpprotect.tc import _inspector\n"
        "read = _inspector.read_netns\n"
        "def noisy(ref, **kw):\n"
        "    _inspector.log.warning('odd device %s', 7)\n"
        "    _inspector.log.debug('detail %s', 8)\n"
        "    return read(ref, **kw)\n"
        "_inspector.read_netns = noisy\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['tc', 'scan', '--json', '--netns', {scenes['bad']!r}]"
        f" + {['--debug'] if debug else []!r})\n"
        "print(rc)\n"
    )
    proc = _python(code)
    assert proc.stdout.strip() == "1"
    assert proc.stderr.count("WARNING wpprotect.tc._inspector: odd device 7\n") == 1
    assert ("DEBUG wpprotect.tc._inspector: detail 8" in proc.stderr) is debug
