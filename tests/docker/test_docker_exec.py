"""DockerPlatform against the real dockerd: discovery, exec, copy_out, error translation."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import images
from tests.docker.conftest import PREFIX, unique
from wpprotect.errors import (
    AgentNotFoundError,
    BackendUnavailableError,
    ExecError,
    ExecTimeoutError,
    InvalidArgumentError,
    PlatformError,
    WPProtectError,
)
from wpprotect.platforms._base import Platform
from wpprotect.platforms.docker import DockerPlatform, is_agent_image

pytestmark = pytest.mark.docker


# -- pure helpers (no daemon) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("registry.datadoghq.com/agent:7", True),
        ("gcr.io/datadoghq/agent:7.50.3", True),
        ("datadog/agent:latest", True),
        ("datadog/agent@sha256:" + "a" * 64, True),
        ("localhost:5000/mirror/agent:7", True),
        ("datadog/cluster-agent:7", False),
        ("registry.datadoghq.com/agent-dev:7", False),
        ("busybox", False),
        ("localhost:5000/agent-x", False),
    ],
)
def test_agent_image_names(image: str, expected: bool) -> None:
    assert is_agent_image(image) is expected


def test_bad_container_name_is_refused_before_any_call() -> None:
    with pytest.raises(InvalidArgumentError, match="invalid container name"):
        DockerPlatform(container="a b; rm -rf /")


def test_no_daemon_contact_until_used() -> None:
    box = DockerPlatform(container="wpdk-nothing", base_url="unix:///nonexistent.sock")
    assert repr(box) == "<DockerPlatform docker:wpdk-nothing>"


# -- daemon unreachable ---------------------------------------------------------------------------


def test_unreachable_daemon_is_backend_unavailable() -> None:
    import docker

    client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    box = DockerPlatform(client=client)
    with pytest.raises(BackendUnavailableError, match="cannot reach the Docker daemon") as err:
        box.exec(["true"])
    assert err.value.__cause__ is not None  # chained, not swallowed
    with pytest.raises(BackendUnavailableError):
        box.agents()
    named = DockerPlatform(container="datadog-agent", client=client)
    with pytest.raises(BackendUnavailableError):
        named.exec(["true"])
    with pytest.raises(BackendUnavailableError):
        named.copy_out("/etc/hostname", Path("/tmp/wpdk-never"))


def test_unreachable_base_url_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailableError):
        DockerPlatform(base_url="unix:///nonexistent.sock").agents()


# -- discovery ------------------------------------------------------------------------------------


def test_find_by_name_in_order(make_container: Any, busybox: str) -> None:
    second = make_container(busybox, "dd-agent")
    box = DockerPlatform(names=[unique("absent"), second])
    assert box.target == f"docker:{second}"
    first = make_container(busybox, "datadog-agent")
    box = DockerPlatform(names=[first, second])
    assert box.container == first
    assert [a.target for a in box.agents()][:2] == [f"docker:{first}", f"docker:{second}"]
    assert isinstance(box, Platform)


def test_find_by_image(make_container: Any, client: Any, agent_image: str) -> None:
    # A repository ending in /agent, as registry.datadoghq.com/agent does (no registry contacted);
    # the tag is this process's, so a concurrent session is not disturbed.
    ref = f"{PREFIX}-registry.local/agent:{os.getpid()}"
    client.images.get(agent_image).tag(ref)
    try:
        name = make_container(ref, "custom-name")
        stopped = make_container(ref, "stopped", start=False)
        box = DockerPlatform(names=[unique("absent")])
        found = [a.target for a in box.agents()]
        assert f"docker:{name}" in found
        assert f"docker:{stopped}" not in found  # only running containers are found by image
        if len(found) == 1:  # nothing else on this daemon looks like an agent
            assert box.target == f"docker:{name}"
            assert box.self_test().ok
        other = make_container(ref, "custom-other")
        found = [a.target for a in box.agents()]
        assert {f"docker:{name}", f"docker:{other}"} <= set(found)
        with pytest.raises(InvalidArgumentError, match="agent containers found"):
            _ = DockerPlatform(names=[unique("absent")]).target
    finally:
        client.images.remove(ref)


def test_not_found_lists_what_was_looked_for() -> None:
    names = [unique("nope-a"), unique("nope-b")]
    box = DockerPlatform(names=names)
    # Other suites may run agent-image containers on this daemon; then discovery finds them.
    try:
        box.agents()
    except AgentNotFoundError as exc:
        from_agents = exc
    else:
        pytest.skip("another suite runs an agent-image container on this daemon")
    with pytest.raises(AgentNotFoundError) as err:
        box.exec(["true"])
    for message in (str(err.value), str(from_agents)):
        for n in names:
            assert n in message
        assert "registry.datadoghq.com/agent" in message


def test_missing_named_container() -> None:
    box = DockerPlatform(container=unique("missing"))
    with pytest.raises(AgentNotFoundError):
        box.exec(["true"])
    with pytest.raises(AgentNotFoundError):
        box.copy_out("/etc/hostname", Path("/tmp/wpdk-never"))


# -- exec -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box(busybox: str) -> Iterator[DockerPlatform]:
    """One container shared by the tests that leave it running."""
    with images.container(busybox, unique("exec")) as name:
        yield DockerPlatform(container=name)


@pytest.fixture
def own_box(make_container: Any, busybox: str) -> DockerPlatform:
    """A container for a test that stops or removes it."""
    return DockerPlatform(container=make_container(busybox, "exec-own"))


def test_exec_separates_stdout_and_stderr(box: DockerPlatform) -> None:
    res = box.exec(["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3"])
    assert res.exit_code == 3
    assert res.stdout == "out1\nout2\n"
    assert res.stderr == "err1\nerr2\n"
    assert res.argv == ("sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3")
    assert res.target == box.target
    assert not res.ok


def test_own_client_with_api_timeout(box: DockerPlatform) -> None:
    own = DockerPlatform(container=box.container, timeout=5, base_url="unix:///var/run/docker.sock")
    assert own.exec(["echo", "ok"]).stdout == "ok\n"


@pytest.mark.parametrize("code", [0, 1, 255])
def test_exec_exit_codes(box: DockerPlatform, code: int) -> None:
    assert box.exec(["sh", "-c", f"exit {code}"]).exit_code == code


def test_exec_large_interleaved_output(box: DockerPlatform) -> None:
    # ~1.5 MB on each stream, many frames split across reads.
    script = (
        "i=0; while [ $i -lt 3000 ]; do echo o$i-$(printf '%0500d' 0); echo e$i >&2; "
        "i=$((i+1)); done"
    )
    res = box.exec(["sh", "-c", script])
    out = res.stdout.splitlines()
    assert len(out) == 3000
    assert out[0].startswith("o0-")
    assert out[-1].startswith("o2999-")
    assert res.stderr.splitlines() == [f"e{i}" for i in range(3000)]


def test_exec_stdin(box: DockerPlatform) -> None:
    data = os.urandom(3 << 20)
    res = box.exec(["sh", "-c", "md5sum; echo done >&2"], stdin=data)
    import hashlib

    assert res.stdout.split()[0] == hashlib.md5(data).hexdigest()  # noqa: S324 - a checksum
    assert res.stderr == "done\n"
    assert box.exec(["cat"], stdin=b"").stdout == ""  # empty stdin is closed at once
    assert box.exec(["head", "-c", "3"], stdin=b"y\n" * (1 << 20)).stdout == "y\ny"


def test_exec_stdin_not_read(box: DockerPlatform) -> None:
    # The process exits without reading: no hang, no error.
    res = box.exec(["true"], stdin=b"x" * (4 << 20), timeout=30)
    assert res.exit_code == 0


def test_exec_answers_prompts(box: DockerPlatform) -> None:
    res = box.exec(["sh", "-c", 'read a; read b; echo "$b $a"'], stdin=b"first\nsecond\n")
    assert res.stdout == "second first\n"


def test_exec_timeout_kills_the_process(box: DockerPlatform) -> None:
    with pytest.raises(ExecTimeoutError, match="timeout") as err:
        box.exec(["sleep", "987"], timeout=0.5)
    assert err.value.target == box.target
    for _ in range(50):
        if "sleep 987" not in box.exec(["ps"]).stdout:
            break
        time.sleep(0.1)
    assert "sleep 987" not in box.exec(["ps"]).stdout


def test_exec_timeout_kills_descendants(box: DockerPlatform) -> None:
    with pytest.raises(ExecTimeoutError):
        box.exec(["sh", "-c", "sleep 986 & sleep 985; wait"], timeout=0.5)
    for _ in range(50):
        ps = box.exec(["ps"]).stdout
        if "sleep 986" not in ps and "sleep 985" not in ps:
            break
        time.sleep(0.1)
    assert "sleep 986" not in ps
    assert "sleep 985" not in ps


def test_exec_missing_binary(box: DockerPlatform) -> None:
    res = box.exec(["/no/such/binary"])
    assert res.exit_code in (126, 127)


@pytest.mark.parametrize("argv", ["echo hi", b"echo", [], ["echo", 3], ["a\x00b"]])
def test_exec_argv_must_be_a_list(box: DockerPlatform, argv: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        box.exec(argv)


def test_exec_in_stopped_container(own_box: DockerPlatform, client: Any) -> None:
    client.containers.get(own_box.container).stop(timeout=1)
    with pytest.raises(ExecError, match="not running") as err:
        own_box.exec(["true"])
    assert not isinstance(err.value, ExecTimeoutError)


def test_container_stopped_mid_exec(own_box: DockerPlatform, client: Any) -> None:
    stopper = threading.Timer(0.5, lambda: client.containers.get(own_box.container).stop(timeout=1))
    stopper.start()
    try:
        with pytest.raises(ExecError, match="stopped") as err:
            own_box.exec(["sleep", "30"], timeout=20)
    finally:
        stopper.cancel()
    assert not isinstance(err.value, ExecTimeoutError)


# -- copy_out -------------------------------------------------------------------------------------


def test_copy_out_file(box: DockerPlatform, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    box.exec(["sh", "-c", "cat > /tmp/blob.zip"], stdin=data)
    dest = box.copy_out("/tmp/blob.zip", tmp_path / "out.zip")
    assert dest == tmp_path / "out.zip"
    assert dest.read_bytes() == data
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]  # no temporary left
    into_dir = box.copy_out("/tmp/blob.zip", tmp_path)
    assert into_dir == tmp_path / "blob.zip"
    assert into_dir.read_bytes() == data


def test_copy_out_setuid_file(box: DockerPlatform, tmp_path: Path) -> None:
    box.exec(["sh", "-c", "echo suid > /tmp/suid; chmod 4755 /tmp/suid"])
    assert box.copy_out("/tmp/suid", tmp_path / "suid").read_text() == "suid\n"


def test_copy_out_follows_symlink(box: DockerPlatform, tmp_path: Path) -> None:
    box.exec(["sh", "-c", "echo real > /tmp/real.txt; ln -s real.txt /tmp/link.txt"])
    assert box.copy_out("/tmp/link.txt", tmp_path / "x").read_text() == "real\n"


def test_copy_out_refuses_non_files(box: DockerPlatform, tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="not a regular file"):
        box.copy_out("/tmp", tmp_path / "x")
    box.exec(["sh", "-c", "rm -f /tmp/fifo; mkfifo /tmp/fifo"])
    with pytest.raises(PlatformError, match="not a regular file"):
        box.copy_out("/tmp/fifo", tmp_path / "x")
    with pytest.raises(PlatformError) as err:
        box.copy_out("/tmp/absent.zip", tmp_path / "x")
    assert not isinstance(err.value, AgentNotFoundError)
    assert "/tmp/absent.zip" in str(err.value)
    with pytest.raises(InvalidArgumentError):
        box.copy_out("relative/path", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_copy_out_keeps_existing_dest_on_failure(box: DockerPlatform, tmp_path: Path) -> None:
    dest = tmp_path / "keep.zip"
    dest.write_text("previous")
    with pytest.raises(PlatformError):
        box.copy_out("/tmp/absent.zip", dest)
    assert dest.read_text() == "previous"


def test_every_error_is_a_wpprotect_error(own_box: DockerPlatform, client: Any) -> None:
    client.containers.get(own_box.container).remove(force=True)
    for call in (
        lambda: own_box.exec(["true"]),
        lambda: own_box.copy_out("/etc/passwd", Path("/tmp/wpdk-x")),
        own_box.inspect,
    ):
        with pytest.raises(WPProtectError):
            call()


def test_images_helper_removes_renamed_leftovers(client: Any, busybox: str) -> None:
    name = unique("leftover")
    with images.container(busybox, name):
        client.containers.get(name).rename(name + ".wpprotect-old-x")
    assert client.containers.list(all=True, filters={"name": name}) == []
