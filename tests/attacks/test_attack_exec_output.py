"""Attacks on exec output: a command (an agent binary someone else replaced, a container someone
else runs) that writes without end, and flares copied out as files.

Each test performs the attack and asserts the typed error (``ExecOutputLimitError``) with the
memory used bounded, or the safe outcome, and that nothing outside the target changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.attacks.conftest import run_bounded, tree_digest
from tests.docker.conftest import unique
from tests.k8s.conftest import Cluster, cluster
from wpprotect.errors import ExecError, ExecOutputLimitError, InvalidArgumentError
from wpprotect.platforms.docker import DockerPlatform
from wpprotect.platforms.host import HostPlatform
from wpprotect.testing import FakePlatform

__all__ = ["cluster"]  # the fixture, re-exported for pytest

MiB = 1 << 20

#: Peak RSS a child may reach while the attack writes 300 MiB: the 64 MiB cap, the interpreter
#: and slack. The unbounded reader reached 618 MB.
RSS_BOUND = 220 * MiB

#: Peak resident memory of the running interpreter from here on (ru_maxrss would include the
#: forking parent's pages): the peak is reset through /proc/self/clear_refs.
_PEAK = """
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
"""

_MEASURE = (
    _PEAK
    + """
from wpprotect.errors import ExecOutputLimitError
from wpprotect.platforms.host import HostPlatform
host = HostPlatform(sudo=False)
try:
    {call}
    print("no-error")
except ExecOutputLimitError as exc:
    print("limited", "64" in str(exc) or "max_output" in str(exc))
print(peak())
"""
)


def test_host_exec_of_300mb_is_cut_at_the_default_cap(tmp_path: Path) -> None:
    before = tree_digest(tmp_path)
    out = run_bounded(
        _MEASURE.format(call='host.exec(["head", "-c", "300M", "/dev/zero"])'), limit=60
    ).split()
    assert out[:2] == ["limited", "True"]
    assert int(out[2]) < RSS_BOUND
    assert tree_digest(tmp_path) == before


def test_host_exec_limit_kills_the_writer(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    host = HostPlatform(sudo=False)
    script = f"yes; touch {marker}"  # reached only if `yes` is not killed with its group
    with pytest.raises(ExecOutputLimitError, match="1,000 bytes"):
        host.exec(["sh", "-c", script], max_output=1000, timeout=30)
    assert not marker.exists()
    res = host.exec(["sh", "-c", "head -c 5000 /dev/zero"], max_output=5000)
    assert len(res.stdout) == 5000  # exactly the cap is allowed
    unlimited = host.exec(["head", "-c", str(3 * MiB), "/dev/zero"], max_output=None)
    assert len(unlimited.stdout) == 3 * MiB


@pytest.mark.parametrize("bad", [0, -1, 1.5, "64M", True])
def test_max_output_is_checked_once_for_every_platform(bad: object) -> None:
    for platform in (HostPlatform(sudo=False), FakePlatform()):
        with pytest.raises(InvalidArgumentError, match="max_output"):
            platform.exec(["true"], max_output=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="argv"):
        FakePlatform().exec("rm -rf /")
    with pytest.raises(InvalidArgumentError, match="stdin"):
        FakePlatform().exec(["cat"], stdin="text")  # type: ignore[arg-type]


def test_fake_platform_applies_the_cap_as_real_ones_do() -> None:
    fake = FakePlatform()
    fake.respond(["agent", "status"], stdout="x" * 2000)
    with pytest.raises(ExecOutputLimitError):
        fake.exec(["agent", "status"], max_output=1000)
    assert fake.exec(["agent", "status"]).stdout == "x" * 2000


def test_host_copy_out_streams_a_large_flare_to_its_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    flare = src / "datadog-agent-flare.zip"
    with flare.open("wb") as fh:
        fh.truncate(256 * MiB)  # sparse: reads as zeros, costs no disk
        fh.seek(256 * MiB - 4)
        fh.write(b"tail")
    drop = tmp_path / "drop"
    drop.mkdir()
    before = tree_digest(src)
    code = _PEAK + (
        "from pathlib import Path\n"
        "from wpprotect.platforms.host import HostPlatform\n"
        f"out = HostPlatform(sudo=False).copy_out({str(flare)!r}, Path({str(drop)!r}))\n"
        "print(out.stat().st_size, oct(out.stat().st_mode & 0o777))\n"
        "print(peak())\n"
    )
    size, mode, rss = run_bounded(code, limit=120).split()
    assert (int(size), mode) == (256 * MiB, "0o600")
    assert int(rss) < 120 * MiB  # the former copy held the whole file in memory
    copied = drop / flare.name
    with copied.open("rb") as fh:
        fh.seek(-4, os.SEEK_END)
        assert fh.read() == b"tail"
    assert sorted(os.listdir(drop)) == [flare.name]  # no temp file or directory left
    assert tree_digest(src) == before


def test_host_copy_out_of_a_missing_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExecError, match="cannot read"):
        HostPlatform(sudo=False).copy_out(str(tmp_path / "absent.zip"), tmp_path / "out.zip")
    assert os.listdir(tmp_path) == []


# --- Docker: the same attack inside a container -----------------------------------------------


@pytest.fixture(scope="module")
def box() -> Any:
    pytest.importorskip("docker")
    try:
        image = images.busybox_image()
    except Exception as exc:  # pragma: no cover - no daemon in this environment
        pytest.skip(f"no Docker daemon: {exc}")
    with images.container(image, unique("flood")) as name:
        yield name


def test_docker_exec_flood_is_cut(box: str, tmp_path: Path) -> None:
    before = tree_digest(tmp_path)
    with DockerPlatform(container=box) as platform:
        with pytest.raises(ExecOutputLimitError):
            platform.exec(["head", "-c", "50m", "/dev/zero"], max_output=4 * MiB, timeout=60)
        # the container still answers: the flood was stopped, not the container
        assert platform.exec(["echo", "ok"]).stdout == "ok\n"
        out = platform.copy_out("/bin/busybox", tmp_path / "busybox")
        assert out.stat().st_mode & 0o777 == 0o600
        assert sorted(os.listdir(tmp_path)) == ["busybox"]
    assert set(tree_digest(tmp_path)) - set(before) == {"busybox"}


# --- Kubernetes: the same attack through the exec websocket -----------------------------------


def test_k8s_exec_flood_is_cut_and_copies_stream_to_files(cluster: Cluster, tmp_path: Path) -> None:
    from tests.k8s.test_k8s_exec import FakeFiles
    from tests.k8s_server import FakeExecBackend, seed_helm

    seed_helm(cluster.server, 1)
    blob = bytes(range(256)) * (12 * 1024)  # 3 MiB
    cluster.server.exec_backend = FakeExecBackend(FakeFiles({"/tmp/flare.zip": blob}))
    (agent,) = cluster.platform(namespace="datadog").agents()
    with pytest.raises(ExecOutputLimitError):
        agent.exec(["cat", "/tmp/flare.zip"], max_output=MiB)
    before = tree_digest(tmp_path)
    out = agent.copy_out("/tmp/flare.zip", tmp_path)  # a copy goes to its file, uncapped
    assert out.read_bytes() == blob
    assert out.stat().st_mode & 0o777 == 0o600
    assert set(tree_digest(tmp_path)) - set(before) == {"flare.zip"}
    assert sorted(os.listdir(tmp_path)) == ["flare.zip"]
