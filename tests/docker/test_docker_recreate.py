"""The Docker disable / reconfigure plan against the real dockerd: recreate, roll back, undo."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.docker.conftest import API_KEY, PREFIX, unique
from wpprotect.errors import InvalidArgumentError, PlanApplyError, PlanUndoError, WPProtectError
from wpprotect.platforms._docker_recreate import env_dict, merge_env
from wpprotect.platforms.docker import DockerPlatform

pytestmark = pytest.mark.docker

CWS_ON = "DD_RUNTIME_SECURITY_CONFIG_ENABLED"

# The main process refuses to start when WPDK_FAIL=1 is in its environment: a twin given that
# variable fails exactly as an agent refusing its new configuration would.
FAILING_CMD = [
    "/bin/sh",
    "-c",
    '[ "$WPDK_FAIL" = 1 ] && exit 7; [ "$WPDK_FAIL" = late ] && { sleep 0.3; exit 9; }; '
    "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
]


# -- pure helpers ---------------------------------------------------------------------------------


def test_merge_env_updates_in_place_and_appends() -> None:
    env = ["PATH=/bin", f"{CWS_ON}=true", "A=1", f"{CWS_ON}=true", "EMPTY"]
    out = merge_env(env, {CWS_ON: "false", "B": "x=y"})
    assert out == ["PATH=/bin", f"{CWS_ON}=false", "A=1", "EMPTY", "B=x=y"]
    assert env_dict(out) == {"PATH": "/bin", CWS_ON: "false", "A": "1", "EMPTY": "", "B": "x=y"}


def test_env_plan_validates_names_and_values() -> None:
    box = DockerPlatform(container="wpdk-never", base_url="unix:///nonexistent.sock")
    for bad in ({"": "x"}, {"A B": "x"}, {"A": object()}, {"A": "a\x00b"}, {}):
        with pytest.raises(InvalidArgumentError):
            box.env_plan(bad)  # type: ignore[arg-type]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def network(client: Any) -> Iterator[str]:
    name = unique("net")
    net = client.networks.create(name, driver="bridge", labels={"wpprotect.test": PREFIX})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            net.reload()
            for c in net.containers:
                net.disconnect(c, force=True)
        net.remove()


@pytest.fixture
def volume(client: Any) -> Iterator[str]:
    name = unique("vol")
    client.volumes.create(name, labels={"wpprotect.test": PREFIX})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            client.volumes.get(name).remove(force=True)


@pytest.fixture
def cws_container(client: Any, agent_image: str, network: str, volume: str) -> Iterator[str]:
    """A container shaped like the documented CWS ``docker run``
    (docs/reference/deployments.md#deploy-docker), plus the
    other settings a recreate must carry over: user network with an alias, named and anonymous
    volumes, tmpfs, labels, hostname, user, workdir, restart policy, log config, extra hosts,
    healthcheck, devices, dns, ulimits, stop signal/timeout."""
    api = client.api
    name = unique("cws")
    host = api.create_host_config(
        binds=[
            "/proc/:/host/proc/:ro",
            "/sys/fs/cgroup/:/host/sys/fs/cgroup:ro",
            "/etc/os-release:/etc/os-release",
            f"{volume}:/opt/datadog-agent/run",
        ],
        # The documented list minus SYS_RESOURCE, which this test VM's bounding set lacks.
        cap_add=[
            "SYS_ADMIN",
            "SYS_PTRACE",
            "NET_ADMIN",
            "NET_BROADCAST",
            "NET_RAW",
            "IPC_LOCK",
            "CHOWN",
        ],
        security_opt=["apparmor:unconfined"],
        pid_mode="host",
        cgroupns="host",
        restart_policy={"Name": "unless-stopped"},
        log_config={"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
        extra_hosts={"intake.example": "192.0.2.10"},
        devices=["/dev/null:/dev/wpdk-null:rwm"],
        tmpfs={"/run/wpdk": "size=1m"},
        dns=["192.0.2.53"],
        ulimits=[{"Name": "nofile", "Soft": 4096, "Hard": 8192}],
        shm_size="8m",
        network_mode=network,
    )
    created = api.create_container(
        agent_image,
        name=name,
        command=FAILING_CMD,
        environment={
            "DD_API_KEY": API_KEY,
            "DD_COMPLIANCE_CONFIG_ENABLED": "true",
            CWS_ON: "true",
            "DD_RUNTIME_SECURITY_CONFIG_REMOTE_CONFIGURATION_ENABLED": "true",
            "HOST_ROOT": "/host/root",
        },
        volumes=["/host/proc", "/var/lib/wpdk-anon"],
        labels={"wpprotect.test": PREFIX, "com.example.team": "sec"},
        hostname="agent-host",
        user="0:0",
        working_dir="/tmp",
        stop_signal="SIGTERM",
        stop_timeout=5,
        healthcheck={"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 3},
        host_config=host,
        networking_config=api.create_networking_config(
            {network: api.create_endpoint_config(aliases=["datadog", "dd-agent-alias"])}
        ),
    )
    api.start(created["Id"])
    try:
        # State kept in the anonymous volume must survive the recreate.
        api.exec_start(
            api.exec_create(name, ["sh", "-c", "echo kept > /var/lib/wpdk-anon/state"])["Id"]
        )
        yield name
    finally:
        for c in client.containers.list(all=True, filters={"name": name}):
            if c.name == name or c.name.startswith(name + "."):
                with contextlib.suppress(Exception):
                    c.remove(force=True, v=True)


# Fields that differ between any two containers, whatever their configuration.
_VOLATILE_TOP = {"Id", "Created", "State", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath"}
_VOLATILE_TOP |= {"RestartCount", "NetworkSettings", "GraphDriver", "ExecIDs", "SizeRw"}
_VOLATILE_TOP |= {"SizeRootFs", "Mounts", "Config", "HostConfig"}


def _compare(old: dict[str, Any], new: dict[str, Any], changed: dict[str, str]) -> None:
    """Assert ``new`` is ``old`` field by field, except ids/timestamps/state and the env."""
    for key in sorted(set(old) | set(new)):
        if key not in _VOLATILE_TOP:
            assert new.get(key) == old.get(key), key
    for key in sorted(set(old["Config"]) | set(new["Config"])):
        if key != "Env":
            assert new["Config"].get(key) == old["Config"].get(key), f"Config.{key}"
    assert env_dict(new["Config"]["Env"]) == {**env_dict(old["Config"]["Env"]), **changed}
    for key in sorted(set(old["HostConfig"]) | set(new["HostConfig"])):
        if key != "Binds":
            assert new["HostConfig"].get(key) == old["HostConfig"].get(key), f"HostConfig.{key}"
    old_binds, new_binds = old["HostConfig"]["Binds"], new["HostConfig"]["Binds"]
    assert new_binds[: len(old_binds)] == old_binds
    # The only addition: the anonymous volumes, mounted by name so their content is kept.
    anon = {
        m["Destination"]: m["Name"]
        for m in old["Mounts"]
        if m["Type"] == "volume" and m["Destination"] in old["Config"]["Volumes"]
    }
    assert set(anon) == {"/var/lib/wpdk-anon"}  # /host/proc is bound, not anonymous
    assert sorted(new_binds[len(old_binds) :]) == sorted(f"{n}:{d}" for d, n in anon.items())

    def mounts(info: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted(
            (m["Type"], m.get("Name") or m.get("Source"), m["Destination"], m["RW"])
            for m in info["Mounts"]
        )

    assert mounts(new) == mounts(old)
    old_nets, new_nets = old["NetworkSettings"]["Networks"], new["NetworkSettings"]["Networks"]
    assert set(new_nets) == set(old_nets)
    for net in old_nets:

        def aliases(ep: dict[str, Any], cid: str) -> list[str]:
            return sorted(a for a in ep.get("Aliases") or [] if a != cid[:12])

        assert aliases(new_nets[net], new["Id"]) == aliases(old_nets[net], old["Id"]), net


def _names(client: Any, name: str) -> dict[str, str]:
    return {
        c.name: c.status
        for c in client.containers.list(all=True, filters={"name": name})
        if c.name == name or c.name.startswith(name + ".")
    }


# -- apply / undo ---------------------------------------------------------------------------------


def test_disable_recreates_identically_and_undo_restores(client: Any, cws_container: str) -> None:
    api = client.api
    box = DockerPlatform(container=cws_container, settle=0.5)
    old = api.inspect_container(cws_container)
    changes = {CWS_ON: "false", "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED": "false"}
    plan = box.env_plan(changes)
    assert not plan.is_satisfied()
    diff = plan.diff()
    assert f"-{CWS_ON}=true\n+{CWS_ON}=false\n" in diff
    assert "+DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED=false\n" in diff
    assert "DD_API_KEY" not in diff  # unchanged variables are not shown

    plan.apply()
    assert plan.state == "applied"
    new = api.inspect_container(cws_container)
    assert new["Id"] != old["Id"]
    assert new["State"]["Running"]
    _compare(old, new, changes)
    assert box.exec(["cat", "/var/lib/wpdk-anon/state"]).stdout == "kept\n"
    assert box.exec(["sh", "-c", f"echo ${CWS_ON}"]).stdout == "false\n"
    names = _names(client, cws_container)
    assert names.pop(cws_container) == "running"
    [(kept, status)] = names.items()
    assert kept.startswith(f"{cws_container}.wpprotect-old-")
    assert status == "exited"
    kept_info = api.inspect_container(kept)
    assert kept_info["Id"] == old["Id"]
    # Kept stopped: a daemon restart must not bring it back next to its replacement.
    assert kept_info["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert plan.is_satisfied()
    plan.verify()
    # The diff is the one planned, as for files and cluster objects: it still shows what was
    # done, and reading it asks the daemon nothing.
    assert plan.diff() == diff
    assert [c["satisfied"] for c in plan.to_dict()["changes"]] == [True]

    plan.undo()
    assert plan.state == "undone"
    back = api.inspect_container(cws_container)
    assert back["Id"] == old["Id"]
    assert back["Name"] == old["Name"]
    assert back["State"]["Running"]
    assert back["Config"]["Env"] == old["Config"]["Env"]
    assert back["HostConfig"] == old["HostConfig"]
    assert _names(client, cws_container) == {cws_container: "running"}  # replacement removed
    with pytest.raises(PlanUndoError):
        plan.undo()


def test_disable_through_settings(client: Any, make_container: Any, agent_image: str) -> None:
    pytest.importorskip("wpprotect.config._surfaces")
    name = make_container(agent_image, "settings", env={CWS_ON: "true"})
    box = DockerPlatform(container=name, settle=0.3)
    plan = box.disable("workload-protection")
    assert f"+{CWS_ON}=false" in plan.diff()
    # the settings that would keep it on go in as env vars too: they beat any YAML in the image
    fim, dump = (
        "DD_RUNTIME_SECURITY_CONFIG_FIM_ENABLED",
        "DD_RUNTIME_SECURITY_CONFIG_SECURITY_PROFILE_V2_HOST_DUMP_ENABLED",
    )
    assert f"+{fim}=false" in plan.diff()
    assert f"+{dump}=false" in plan.diff()
    plan.apply()
    env = env_dict(client.api.inspect_container(name)["Config"]["Env"])
    assert (env[CWS_ON], env[fim], env[dump]) == ("false", "false", "false")
    again = box.disable("workload-protection")
    assert again.is_satisfied()  # applying again would change nothing
    plan.undo()
    assert env_dict(client.api.inspect_container(name)["Config"]["Env"])[CWS_ON] == "true"


def test_stopped_container_stays_stopped(client: Any, make_container: Any, busybox: str) -> None:
    name = make_container(busybox, "stopped", start=False)
    old_id = client.api.inspect_container(name)["Id"]
    plan = DockerPlatform(container=name, settle=0.2).env_plan({CWS_ON: "false"}).apply()
    info = client.api.inspect_container(name)
    assert info["Id"] != old_id
    assert info["State"]["Status"] == "created"
    plan.undo()
    info = client.api.inspect_container(name)
    assert info["Id"] == old_id
    assert not info["State"]["Running"]


# -- failures leave the original untouched --------------------------------------------------------


@pytest.mark.parametrize("mode", ["1", "late"])
def test_failed_start_rolls_back(client: Any, cws_container: str, mode: str) -> None:
    api = client.api
    before = api.inspect_container(cws_container)
    # "late" exits 0.3 s after starting: the settle window must catch it.
    box = DockerPlatform(container=cws_container, settle=1.5 if mode == "late" else 0.3)
    plan = box.env_plan({"WPDK_FAIL": mode, CWS_ON: "false"})
    with pytest.raises(PlanApplyError, match="did not stay up") as err:
        plan.apply()
    assert plan.state == "rolled-back"
    after = api.inspect_container(cws_container)
    assert after["Id"] == before["Id"]
    assert after["State"]["Running"]
    assert after["Config"]["Env"] == before["Config"]["Env"]
    assert after["HostConfig"] == before["HostConfig"]  # restart policy restored too
    assert _names(client, cws_container) == {cws_container: "running"}  # no twin left behind
    assert API_KEY not in str(err.value)
    assert API_KEY[-8:] not in repr(err.value.__cause__)


def test_rm_container_is_refused(client: Any, make_container: Any, busybox: str) -> None:
    name = make_container(busybox, "autorm", auto_remove=True)
    old_id = client.api.inspect_container(name)["Id"]
    with pytest.raises(PlanApplyError, match="--rm"):
        DockerPlatform(container=name).env_plan({CWS_ON: "false"}).apply()
    info = client.api.inspect_container(name)
    assert info["Id"] == old_id
    assert info["State"]["Running"]


def test_undo_refuses_a_container_replaced_since(
    client: Any, make_container: Any, busybox: str
) -> None:
    name = make_container(busybox, "replaced")
    plan = DockerPlatform(container=name, settle=0.2).env_plan({CWS_ON: "false"}).apply()
    twin = client.containers.get(name)
    twin.rename(name + ".elsewhere")
    impostor = client.containers.run(busybox, name=name, detach=True)
    with pytest.raises(PlanUndoError, match="replaced"):
        plan.undo()
    assert client.containers.get(name).id == impostor.id


# -- secrets --------------------------------------------------------------------------------------


def test_api_key_never_shown(
    client: Any, cws_container: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    new_key = os.urandom(16).hex()
    box = DockerPlatform(container=cws_container, settle=0.3)
    plan = box.env_plan({"DD_API_KEY": new_key, CWS_ON: "false"})
    shown = [plan.diff(), repr(plan), repr(plan.changes[0]), json.dumps(plan.to_dict())]
    shown.append(plan._repr_html_())
    assert "-DD_API_KEY=********" in shown[0]
    assert "+DD_API_KEY=********" in shown[0]
    plan.apply()
    shown += [repr(plan), plan.diff()]
    plan.undo()
    failing = box.env_plan({"DD_API_KEY": new_key, "WPDK_FAIL": "1"})
    with pytest.raises(WPProtectError) as err:
        failing.apply()
    shown += [str(err.value), repr(err.value), caplog.text]
    for text in shown:
        for secret in (API_KEY, new_key):
            assert secret not in text
            assert secret[:16] not in text


@pytest.mark.parametrize("mode", ["host", "none", "container", "bridge+network"])
def test_network_modes_are_kept(
    client: Any, make_container: Any, busybox: str, network: str, mode: str
) -> None:
    api = client.api
    kwargs: dict[str, Any] = {}
    if mode == "container":
        kwargs["network_mode"] = "container:" + make_container(busybox, "netowner")
    elif mode in ("host", "none"):
        kwargs["network_mode"] = mode
    name = make_container(busybox, f"net-{mode.replace('+', '-')}", **kwargs)
    if mode == "bridge+network":
        client.networks.get(network).connect(name, aliases=["extra-alias"])
    old = api.inspect_container(name)
    plan = DockerPlatform(container=name, settle=0.2).env_plan({CWS_ON: "false"}).apply()
    new = api.inspect_container(name)
    assert new["State"]["Running"]
    assert new["HostConfig"]["NetworkMode"] == old["HostConfig"]["NetworkMode"]
    assert set(new["NetworkSettings"]["Networks"]) == set(old["NetworkSettings"]["Networks"])
    if mode == "bridge+network":
        assert "extra-alias" in new["NetworkSettings"]["Networks"][network]["Aliases"]
    if mode != "container":
        assert new["Config"]["Hostname"] == old["Config"]["Hostname"]
    plan.undo()
    assert api.inspect_container(name)["Id"] == old["Id"]


def test_network_scope_and_classifier_priority(
    client: Any, make_container: Any, agent_image: str
) -> None:
    pytest.importorskip("wpprotect.config._surfaces")
    # The event-monitoring spelling is already set: it is the one updated (both names bind the
    # same key, docs/reference/agent-cli.md#cli-config-keys), not shadowed by a second variable.
    name = make_container(
        agent_image,
        "priority",
        env={"DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "10"},
    )
    box = DockerPlatform(container=name, settle=0.2)
    plan = box.set_classifier_priority(4)
    assert "-DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY=10" in plan.diff()
    plan.apply()
    env = env_dict(client.api.inspect_container(name)["Config"]["Env"])
    assert env["DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY"] == "4"
    assert "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY" not in env
    net = box.disable("network").apply()
    env = env_dict(client.api.inspect_container(name)["Config"]["Env"])
    assert env["DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED"] == "false"
    assert env["DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY"] == "4"
    net.undo()
    plan.undo()
    env = env_dict(client.api.inspect_container(name)["Config"]["Env"])
    assert env["DD_EVENT_MONITORING_CONFIG_NETWORK_CLASSIFIER_PRIORITY"] == "10"
    assert "DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED" not in env
    with pytest.raises(InvalidArgumentError):
        box.set_classifier_priority(0)


def test_moved_tag_keeps_the_running_image(
    client: Any, make_container: Any, busybox: str, agent_image: str
) -> None:
    # The tag now names another image (a newer agent was pulled): the recreated container must
    # run the image the original ran, not whatever the tag points at today.
    ref = f"{PREFIX}-moving:{os.getpid()}"
    client.images.get(busybox).tag(ref)
    try:
        name = make_container(ref, "moving")
        old = client.api.inspect_container(name)
        client.images.get(agent_image).tag(ref)
        plan = DockerPlatform(container=name, settle=0.2).env_plan({CWS_ON: "false"}).apply()
        new = client.api.inspect_container(name)
        assert new["Image"] == old["Image"]
        assert new["Image"] != client.images.get(ref).id
        plan.undo()
    finally:
        client.images.remove(ref)


def test_mount_anonymous_volume_is_kept(client: Any, busybox: str) -> None:
    from docker.types import Mount

    name = unique("mount-anon")
    c = client.containers.run(
        busybox, name=name, detach=True, mounts=[Mount(target="/state", source=None, type="volume")]
    )
    try:
        c.exec_run(["sh", "-c", "echo kept > /state/file"])
        plan = DockerPlatform(container=name, settle=0.2).env_plan({CWS_ON: "false"}).apply()
        assert DockerPlatform(container=name).exec(["cat", "/state/file"]).stdout == "kept\n"
        plan.undo()
    finally:
        for left in client.containers.list(all=True, filters={"name": name}):
            left.remove(force=True, v=True)


def test_compose_container_gets_a_note(make_container: Any, busybox: str) -> None:
    name = make_container(busybox, "compose", labels={"com.docker.compose.project": "wpdk"})
    notes = DockerPlatform(container=name).env_plan({CWS_ON: "false"}).notes
    assert any("Compose project 'wpdk'" in n for n in notes)
