"""Finding, labelling and entering network namespaces, and never creating one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.tc_scan._scene import Scene, run
from wpprotect.cli import main
from wpprotect.errors import InvalidArgumentError, NetnsNotFoundError
from wpprotect.tc import TCInspector, _bpf, _netns
from wpprotect.tc._model import NamespaceInfo

ROOT = Path(__file__).resolve().parents[2]


def _named_dirs() -> dict[str, list[str] | None]:
    """What exists under the named-namespace directories with "missing" in its name (other
    test runs may add namespaces meanwhile, so only this test's names are compared)."""
    return {
        d: sorted(n for n in os.listdir(d) if "missing" in n) if os.path.isdir(d) else None
        for d in _netns.NAMED_DIRS
    }


def _ino(path: str) -> int:
    return os.stat(path).st_ino


@pytest.mark.root
def test_list_finds_named_and_unnamed_once(scene: Scene) -> None:
    name = scene.netns("wptc4ns")
    hidden = scene.unnamed()
    pid = int(hidden.split("/")[2])
    refs = _netns.list_netns()
    keys = [(r.dev, r.ino) for r in refs]
    assert len(keys) == len(set(keys))
    assert refs[0].current
    assert sum(r.current for r in refs) == 1
    by_ino = {r.ino: r for r in refs}
    named = by_ino[_ino(f"/var/run/netns/{name}")]
    assert (named.label, named.path) == (name, f"/var/run/netns/{name}")
    unnamed = by_ino[_ino(hidden)]
    assert unnamed.label.startswith(f"pid {pid} (")
    assert "(sleep)" in unnamed.label or "(unshare)" in unnamed.label
    assert by_ino[_ino("/proc/self/ns/net")].label == "host"


@pytest.mark.root
def test_resolve_name_path_and_current(scene: Scene) -> None:
    name = scene.netns("wptc4ns")
    hidden = scene.unnamed()
    assert _netns.resolve_netns(name).ino == _ino(f"/var/run/netns/{name}")
    ref = _netns.resolve_netns(hidden)
    assert ref.ino == _ino(hidden)
    assert ref.label.startswith("pid ")
    assert not ref.current
    current = _netns.resolve_netns(None)
    assert current.current
    assert current.ino == _ino("/proc/self/ns/net")
    # Every spelling of the current namespace gets the label an "all" listing gives it.
    first = _netns.list_netns()[0]
    assert first.current
    assert current.label == first.label
    assert _netns.resolve_netns("/proc/self/ns/net").label == first.label


@pytest.mark.root
def test_unknown_name_creates_nothing() -> None:
    before = _named_dirs()
    with pytest.raises(NetnsNotFoundError, match="wptc4-missing"):
        _netns.resolve_netns("wptc4-missing")
    with pytest.raises(NetnsNotFoundError, match="does not exist"):
        _netns.resolve_netns("/var/run/netns/wptc4-missing")
    assert _named_dirs() == before


def test_paths_that_are_not_network_namespaces(tmp_path: Path) -> None:
    plain = tmp_path / "wptc4-file"
    plain.write_text("")
    with pytest.raises(NetnsNotFoundError, match="not a namespace file"):
        _netns.resolve_netns(str(plain))
    with pytest.raises(NetnsNotFoundError, match="not a network one"):
        _netns.resolve_netns("/proc/self/ns/uts")
    with pytest.raises(InvalidArgumentError, match="invalid network namespace name"):
        _netns.resolve_netns("..")
    with pytest.raises(InvalidArgumentError):
        _netns.resolve_netns("wptc4 bad")


@pytest.mark.root
def test_entered_moves_only_this_thread_and_comes_back(scene: Scene) -> None:
    ref = _netns.resolve_netns(scene.netns("wptc4ns"))
    home = _ino("/proc/thread-self/ns/net")
    seen: dict[str, int] = {}
    go, done = threading.Event(), threading.Event()

    def other_thread() -> None:  # started before the move: it must stay home
        go.wait(5)
        seen["other"] = _ino("/proc/thread-self/ns/net")
        done.set()

    t = threading.Thread(target=other_thread)
    t.start()
    with _netns.entered(ref):
        seen["inside"] = _ino("/proc/thread-self/ns/net")
        go.set()
        done.wait(5)
    t.join()
    assert seen == {"inside": ref.ino, "other": home}
    assert _ino("/proc/thread-self/ns/net") == home


@pytest.mark.root
def test_entered_a_deleted_namespace_is_gone(scene: Scene) -> None:
    name = scene.netns("wptc4gone")
    ref = _netns.resolve_netns(name)
    scene.close()  # `ip netns del`
    with pytest.raises(_netns.NetnsGoneError, match="vanished"), _netns.entered(ref):
        pass
    assert not os.path.exists(f"/var/run/netns/{name}")


# --- every namespace, and what holds it -----------------------------------------------------


def _holder_process(path: str, comm: str) -> subprocess.Popen[str]:
    """A process that holds ``path`` open (and nothing else of it), named ``comm``."""
    code = (
        "import os, sys, time\n"
        f"open('/proc/self/comm', 'w').write({comm!r})\n"
        f"fd = os.open({path!r}, os.O_RDONLY)\n"
        "print(fd, flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    int(proc.stdout.readline())
    return proc


def _orphan(scene: Scene) -> tuple[str, int]:
    """A namespace made by ``unshare -n sleep`` whose sleep is then killed by the caller:
    returns its /proc path and its inode."""
    path = scene.unnamed()
    return path, _ino(path)


def _kill_creator(scene: Scene) -> None:
    proc = scene.procs.pop()
    proc.kill()
    proc.wait()


def _by_ino(ino: int) -> _netns.NetnsRef:
    found = [r for r in _netns.discover().refs if r.ino == ino]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.root
def test_namespace_held_only_by_a_bind_mount_outside_run_netns(
    scene: Scene, tmp_path: Path
) -> None:
    """Found, labelled by its mount point, scanned; and the kernel agrees with the verdict on a
    device inside it (a vendor OK at priority 1 starves a Datadog-like filter at 10)."""
    path, ino = _orphan(scene)
    scene.veth(path, "w4m0", "w4m0p")
    scene._ip(path, "link", "set", "w4m0p", "up")
    scene.bpf_filter(path, "w4m0", "ingress", prio=1, handle=1, name="wptc4_vendor",
                     fd=scene.prog(_bpf.TC_ACT_OK, "wptc4_vendor"))  # fmt: skip
    dd = scene.bpf_filter(path, "w4m0", "ingress", prio=10, handle=2,
                          name="classifier_ingress_w4m0",
                          fd=scene.prog(_bpf.TC_ACT_UNSPEC, "wptc4_dd"))  # fmt: skip
    mount = tmp_path / "held-net"
    mount.write_text("")
    run("mount", "--bind", path, str(mount))
    try:
        _kill_creator(scene)  # now only the bind mount keeps it alive
        ref = _by_ino(ino)
        assert ref.label == str(mount)
        assert [str(h) for h in ref.holders] == [f"mount {mount}"]
        # The kernel: frames from the peer never reach the Datadog-like filter.
        stats = _bpf.enable_stats()
        try:
            before = _bpf.prog_info(dd).run_cnt

            def send() -> None:
                with _netns.entered(ref), socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
                    s.bind(("w4m0p", 0))
                    for _ in range(5):
                        s.send(_bpf.test_packet())

            _netns.run_in_thread(send)
            ran = _bpf.prog_info(dd).run_cnt - before
        finally:
            os.close(stats)
        assert ran == 0
        # wpprotect: the "all" scan reaches it, and its verdict agrees (blind => warning/error).
        report = TCInspector(netns="all").scan()
        ns = [n for n in report.namespaces if n.id == ref.id]
        assert ns
        assert ns[0].holders == (f"mount {mount}",)
        findings = [
            f for f in report.assess(10).findings
            if f.netns == ref.label and f.ifname == "w4m0" and f.needs_action
        ]  # fmt: skip
        assert findings, report.assess(10).findings
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.root
def test_namespace_held_only_by_a_descriptor(scene: Scene) -> None:
    path, ino = _orphan(scene)
    holder = _holder_process(path, "wptc4-holder")
    scene.procs.insert(0, holder)  # killed by the scene
    _kill_creator(scene)
    ref = _by_ino(ino)
    (h,) = ref.holders
    assert (h.kind, h.pid, h.comm, h.agent) == ("fd", holder.pid, "wptc4-holder", False)
    assert ref.label.startswith("fd ")
    assert f"pid {holder.pid}" in ref.label
    assert ref.path.startswith(f"/proc/{holder.pid}/fd/")
    # Readable through the descriptor's path: the scan enters it.
    report = TCInspector(netns="all").scan()
    info = next(n for n in report.namespaces if n.id == ref.id)
    assert info.holders == (str(h),)
    assert _netns.held_by_agent_findings([info]) == []  # not an agent


@pytest.mark.root
def test_netns_held_only_by_an_agent_descriptor_is_a_warning(scene: Scene) -> None:
    path, ino = _orphan(scene)
    holder = _holder_process(path, "system-probe")
    scene.procs.insert(0, holder)
    _kill_creator(scene)
    info = next(
        n for n in TCInspector(netns="all").scan().namespaces if n.id and n.id.endswith(f":{ino}")
    )
    (finding,) = _netns.held_by_agent_findings([info])
    assert (finding.code, finding.severity, finding.netns) == (
        "netns-held-by-agent", "warning", info.label,
    )  # fmt: skip
    assert f"pid {holder.pid} (system-probe)" in finding.message
    assert "41350" in finding.fix
    # The command reports it, and exits 1 for it.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["tc", "scan", "--json", "--classifier-priority", "10"])
    doc = json.loads(out.getvalue())
    assert status == 1
    assert [f["netns"] for f in doc["findings"] if f["code"] == "netns-held-by-agent"] == [
        info.label
    ]
    held = next(n for n in doc["namespaces"] if n["id"] == info.id)
    assert list(held) == ["label", "id", "path", "holders"]
    # A process running in it as well: not a leak.
    other = NamespaceInfo(label="x", holders=("pid 5 (sleep)", *info.holders))
    assert _netns.held_by_agent_findings([other]) == []


@pytest.mark.root
def test_thread_that_entered_a_namespace_holds_it(scene: Scene) -> None:
    path, ino = _orphan(scene)
    ref = _netns.resolve_netns(path)
    inside, done = threading.Event(), threading.Event()

    def stay() -> None:
        with _netns.entered(ref):
            inside.set()
            done.wait(10)

    t = threading.Thread(target=stay)
    t.start()
    try:
        inside.wait(5)
        _kill_creator(scene)
        found = _by_ino(ino)
        kinds = {(h.kind, h.pid) for h in found.holders}
        assert ("thread", os.getpid()) in kinds
    finally:
        done.set()
        t.join()


@pytest.mark.root
def test_unreadable_namespace_is_counted_in_warnings(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = scene.unnamed()
    real = os.stat

    def refuse(p: object, *a: object, **k: object) -> os.stat_result:
        if p == path:
            raise PermissionError(13, "Permission denied", p)
        return real(p, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(_netns.os, "stat", refuse)
    found = _netns.discover()
    pid = path.split("/")[2]
    assert any("could not be read" in w and f"pid {pid} " in w for w in found.warnings), (
        found.warnings
    )
    monkeypatch.undo()
    # And the scan carries the warning into the report.
    monkeypatch.setattr(_netns.os, "stat", refuse)
    report = TCInspector(netns="all").scan()
    assert any(f"pid {pid} " in w for w in report.warnings)


@pytest.mark.root
@pytest.mark.skipif(
    os.access("/proc/1/ns/net", os.R_OK), reason="PID 1's namespace is readable here"
)
def test_this_machines_unreadable_pid_1_is_not_skipped_silently() -> None:
    assert any("pid 1 " in w for w in _netns.discover().warnings)


@pytest.mark.root
def test_labels_inside_a_pid_and_net_namespace() -> None:
    """Inside `unshare -p -n -f --mount-proc`, PID 1 is that namespace's init: its network
    namespace is ours, and must not be called "host"."""
    code = (
        "import json\n"
        "from wpprotect.tc import _netns, TCInspector\n"
        "refs = _netns.discover().refs\n"
        "scan = TCInspector(netns=None).scan()\n"
        "print(json.dumps({'labels': [r.label for r in refs], 'current': refs[0].current,\n"
        "  'resolved': _netns.resolve_netns(None).label,\n"
        "  'scanned': [n.label for n in scan.namespaces]}))\n"
    )
    out = run(
        "unshare", "-p", "-n", "-f", "--mount-proc",
        "env", f"PYTHONPATH={ROOT}", sys.executable, "-c", code,
    )  # fmt: skip
    doc = json.loads(out)
    assert "host" not in doc["labels"]
    assert doc["current"] is True
    assert doc["resolved"] != "host"
    assert doc["resolved"].startswith("pid ")
    assert doc["labels"][0] == doc["resolved"]
    assert doc["scanned"] == [doc["resolved"]]


@pytest.mark.root
def test_the_scan_never_switches_the_calling_thread(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = scene.netns("wptc4ns")
    real = _netns._setns
    callers: list[bool] = []

    def spy(fd: int) -> None:
        callers.append(threading.current_thread() is threading.main_thread())
        real(fd)

    monkeypatch.setattr(_netns, "_setns", spy)
    TCInspector(netns=name).scan()
    TCInspector(netns="all").scan()
    assert callers
    assert not any(callers)
