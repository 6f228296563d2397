"""Finding, labelling and entering network namespaces, and never creating one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.tc_scan._scene import Scene
from wpprotect.errors import InvalidArgumentError, NetnsNotFoundError
from wpprotect.tc import _netns


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
