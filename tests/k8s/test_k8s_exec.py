"""Exec and copy_out through the real client's websocket (in-memory pods)."""

from __future__ import annotations

import base64
import os
import random
import threading
from pathlib import Path

import pytest

from tests.k8s.conftest import Cluster, needs_v5
from tests.k8s_server import FakeExecBackend, FakeExecRequest, helm_daemonset, pod_for, seed_helm
from wpprotect.errors import (
    AgentNotFoundError,
    ExecError,
    ExecTimeoutError,
    InvalidArgumentError,
    PermissionDeniedError,
    PlatformError,
)
from wpprotect.platforms.kubernetes import KubernetesPlatform


class FakeFiles:
    """A responder with a few files: ``cat``, ``stat -c %s``, ``echo-stdin``, ``fail``."""

    def __init__(self, files: dict[str, bytes], *, lie_about_size: int = 0) -> None:
        self.files = files
        self.lie = lie_about_size

    def __call__(self, req: FakeExecRequest) -> tuple[int, bytes, bytes]:
        argv = req.argv
        if argv[0] == "cat":
            data = self.files.get(argv[-1])
            if data is None:
                return 1, b"", f"cat: can't open '{argv[-1]}': No such file or directory\n".encode()
            return 0, data, b""
        if argv[:3] == ["stat", "-c", "%s"]:
            return 0, f"{len(self.files[argv[-1]]) + self.lie}\n".encode(), b""
        if argv[0] == "base64":
            data = self.files.get(argv[-1])
            if data is None:
                return 1, b"", f"base64: {argv[-1]}: No such file or directory\n".encode()
            return 0, base64.encodebytes(data), b""
        if argv[0] == "echo-arg":
            return 0, argv[1].encode(), b""
        if argv[0] == "echo-stdin":
            return 0, req.stdin, f"{req.container}\n".encode()
        if argv[0] == "fail":
            return int(argv[1]), b"partial\n", b"Error: boom\n"
        return 127, b"", f"{argv[0]}: not found\n".encode()


@pytest.fixture
def agent(cluster: Cluster) -> KubernetesPlatform:
    seed_helm(cluster.server, 1)
    cluster.server.exec_backend = FakeExecBackend(FakeFiles({"/tmp/a.txt": b"hello\n"}))
    (one,) = cluster.platform(namespace="datadog").agents()
    assert isinstance(one, KubernetesPlatform)
    return one


def test_exec_separates_streams_and_reports_the_exit_code(agent: KubernetesPlatform) -> None:
    res = agent.exec(["fail", "255"], component="system-probe")
    assert (res.exit_code, res.stdout, res.stderr) == (255, "partial\n", "Error: boom\n")
    assert res.argv == ("fail", "255")
    assert res.target == agent.target
    assert not res.ok
    ok = agent.exec(["cat", "/tmp/a.txt"])
    assert ok.ok
    assert ok.stdout == "hello\n"


@needs_v5
def test_stdin_reaches_the_named_container(cluster: Cluster, agent: KubernetesPlatform) -> None:
    res = agent.exec(["echo-stdin"], component="agent", stdin=b"y\n")
    assert (res.stdout, res.stderr) == ("y\n", "agent\n")
    exec_paths = [p for m, p, _ in cluster.server.requests if p.endswith("/exec")]
    assert exec_paths == [f"/api/v1/namespaces/datadog/pods/{agent.pod}/exec"]


def test_v4_only_server(cluster: Cluster, agent: KubernetesPlatform) -> None:
    cluster.server.channel_protocols = ("v4.channel.k8s.io",)
    res = agent.exec(["fail", "3"])
    assert res.exit_code == 3


def test_missing_container(cluster: Cluster) -> None:
    # directSendFromSystemProbe: the chart renders no security-agent container
    ds = helm_daemonset()
    containers = ds["spec"]["template"]["spec"]["containers"]
    ds["spec"]["template"]["spec"]["containers"] = [
        c for c in containers if c["name"] != "security-agent"
    ]
    ds = cluster.server.put(ds)
    cluster.server.put(pod_for(ds, "node-1"))
    (one,) = cluster.platform().agents()
    with pytest.raises(AgentNotFoundError, match="no security-agent container"):
        one.exec(["security-agent", "version"])


def test_pod_gone_and_exec_forbidden(cluster: Cluster, agent: KubernetesPlatform) -> None:
    cluster.server.faults.fail_next(1, 403, path="/exec")
    with pytest.raises(PermissionDeniedError, match="HTTP 403"):
        agent.exec(["cat", "/tmp/a.txt"])
    cluster.server.delete("pods", "datadog", str(agent.pod))
    with pytest.raises(AgentNotFoundError, match="HTTP 404"):
        agent.exec(["cat", "/tmp/a.txt"])


def test_command_that_cannot_start_is_an_exec_error(
    cluster: Cluster, agent: KubernetesPlatform
) -> None:
    def broken(req: FakeExecRequest) -> tuple[int, bytes, bytes]:
        raise RuntimeError('exec: "security-agent": executable file not found in $PATH')

    cluster.server.exec_backend = FakeExecBackend(broken)
    with pytest.raises(ExecError, match="executable file not found"):
        agent.exec(["security-agent", "version"])


def test_dropped_websocket_is_an_exec_error(cluster: Cluster, agent: KubernetesPlatform) -> None:
    cluster.server.faults.drop_exec_next(1, after_bytes=3)
    with pytest.raises(ExecError) as info:
        agent.exec(["cat", "/tmp/a.txt"])
    assert not isinstance(info.value, ExecTimeoutError)
    assert agent.exec(["cat", "/tmp/a.txt"]).stdout == "hello\n"  # the next one works


def test_reset_after_the_exit_status_is_not_an_error(
    cluster: Cluster, agent: KubernetesPlatform
) -> None:
    cluster.server.faults.abrupt_end_next(1)
    res = agent.exec(["fail", "4"])
    assert (res.exit_code, res.stdout) == (4, "partial\n")


def test_hung_exec_times_out(cluster: Cluster, agent: KubernetesPlatform) -> None:
    cluster.server.faults.hang_exec_next(1)
    with pytest.raises(ExecTimeoutError, match="timeout"):
        agent.exec(["security-agent", "runtime", "self-test"], timeout=0.5)
    assert agent.exec(["cat", "/tmp/a.txt"], timeout=5).ok


@pytest.mark.parametrize(
    ("argv", "component"),
    [("cat /etc/passwd", "agent"), ([], "agent"), (["a\x00b"], "agent"), (["x"], "trace-agent")],
)
def test_bad_arguments(agent: KubernetesPlatform, argv: object, component: str) -> None:
    with pytest.raises(InvalidArgumentError):
        agent.exec(argv, component=component)  # type: ignore[arg-type]


def test_copy_out_is_binary_safe(
    cluster: Cluster, agent: KubernetesPlatform, tmp_path: Path
) -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible test bytes, not a secret
    blob = bytes(range(256)) * 64 + rng.randbytes(300_000) + b"\r\n\x00\xff"
    cluster.server.exec_backend = FakeExecBackend(FakeFiles({"/tmp/flare.zip": blob}))
    out = agent.copy_out("/tmp/flare.zip", tmp_path)
    assert out == tmp_path / "flare.zip"
    assert out.read_bytes() == blob
    assert out.stat().st_mode & 0o777 == 0o600
    named = agent.copy_out("/tmp/flare.zip", tmp_path / "copy.zip")
    assert named.read_bytes() == blob


def test_copy_out_errors_leave_nothing(
    cluster: Cluster, agent: KubernetesPlatform, tmp_path: Path
) -> None:
    with pytest.raises(PlatformError, match="No such file"):
        agent.copy_out("/tmp/absent.zip", tmp_path)
    cluster.server.exec_backend = FakeExecBackend(
        FakeFiles({"/tmp/f.zip": b"abc"}, lie_about_size=10)
    )
    with pytest.raises(PlatformError, match="truncated: 3 of 13 bytes"):
        agent.copy_out("/tmp/f.zip", tmp_path)
    with pytest.raises(InvalidArgumentError):
        agent.copy_out("relative/path", tmp_path)
    assert os.listdir(tmp_path) == []


def test_concurrent_execs_and_rest_calls_share_one_client(cluster: Cluster) -> None:
    """``kubernetes.stream.stream`` swaps ``call_api`` on the client it is given; the
    platform gives each exec its own client, so parallel execs and REST calls stay apart."""
    seed_helm(cluster.server, 6)
    cluster.server.exec_backend = FakeExecBackend(FakeFiles({}), delay=0.05)
    platform = cluster.platform(namespace="datadog")
    agents = platform.agents()
    errors: list[BaseException] = []
    outputs: list[str] = []

    def work(p: KubernetesPlatform, i: int) -> None:
        try:
            outputs.append(p.exec(["echo-arg", f"{i}"]).stdout)
            assert len(platform.agents()) == 6
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(agents[i % 6], i)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(outputs, key=int) == [str(i) for i in range(30)]


def test_exec_handshake_that_never_answers_times_out(
    cluster: Cluster, agent: KubernetesPlatform
) -> None:
    cluster.server.faults.hang_next(1, path="/exec")
    with pytest.raises(ExecTimeoutError, match="did not open the exec stream"):
        agent.exec(["cat", "/tmp/a.txt"], timeout=0.5)
    assert agent.exec(["cat", "/tmp/a.txt"], timeout=5).stdout == "hello\n"
