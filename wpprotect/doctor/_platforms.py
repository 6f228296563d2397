"""Checks of the agents reachable through an API: containers (Docker daemon) and pods
(Kubernetes), each with its version and settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from wpprotect._jsonable import jsonable
from wpprotect.doctor._context import Context
from wpprotect.doctor._host import exists
from wpprotect.doctor._report import Check
from wpprotect.doctor._settings import agent_settings
from wpprotect.errors import (
    AgentNotFoundError,
    BackendUnavailableError,
    ExecTimeoutError,
    WPProtectError,
)
from wpprotect.platforms import BasePlatform
from wpprotect.platforms.docker import DockerPlatform
from wpprotect.platforms.kubernetes import KubernetesPlatform

__all__ = ["check_docker", "check_kubernetes"]

log = logging.getLogger(__name__)

_DOCKER_SOCKET = Path("/var/run/docker.sock")


def check_docker(ctx: Context) -> list[Check]:
    """``docker``: agent containers through the Docker daemon, then each one's version and
    settings."""
    if not ctx.options.docker:
        return [Check("docker", "skipped", "not checked (--no-docker)")]
    docker_host = os.environ.get("DOCKER_HOST", "")
    sock = _DOCKER_SOCKET
    if not docker_host and not exists(sock):
        return [Check("docker", "skipped", f"no Docker daemon here: {sock} does not exist")]
    if not docker_host and not os.access(sock, os.R_OK | os.W_OK):
        return [
            Check(
                "docker",
                "skipped",
                f"no permission on {sock} (run as root or as a member of the docker group)",
            )
        ]
    timeout = ctx.options.timeout
    named = ctx.options.containers

    def discover() -> list[BasePlatform]:
        if named:
            return [DockerPlatform(container=name, timeout=timeout) for name in named]
        return DockerPlatform(timeout=timeout).agents()

    return _found_agents(ctx, "docker", discover, "agent containers")


def _kubeconfig(path: Path | None) -> Path | None:
    if path is not None:
        return path
    for part in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if part and exists(Path(part)):
            return Path(part)
    default = Path.home() / ".kube" / "config"
    return default if exists(default) else None


def check_kubernetes(ctx: Context) -> list[Check]:
    """``kubernetes``: agent pods through the current kubeconfig (or in-cluster config), then
    each one's version and settings."""
    if not ctx.options.kubernetes:
        return [Check("kubernetes", "skipped", "not checked (--no-kubernetes)")]
    config = _kubeconfig(ctx.options.kubeconfig)
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if config is None and not in_cluster:
        return [
            Check(
                "kubernetes",
                "skipped",
                "no cluster configured: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not "
                "running in a pod",
            )
        ]
    if config is not None and not exists(config):
        return [Check("kubernetes", "error", f"kubeconfig {config} does not exist")]
    timeout = ctx.options.timeout

    def discover() -> list[BasePlatform]:
        platform = KubernetesPlatform(
            namespace=ctx.options.namespace,
            kubeconfig=config,
            timeout=timeout,
        )
        return platform.agents()

    return _found_agents(ctx, "kubernetes", discover, "agent pods")


def _found_agents(
    ctx: Context, name: str, discover: Callable[[], list[BasePlatform]], what: str
) -> list[Check]:
    """The ``name`` check for the agents ``discover`` finds, then a version and settings
    check per agent (each agent joins ``ctx.agents``)."""
    try:
        agents = ctx.within(discover, name)
    except ExecTimeoutError as exc:
        return [Check(name, "error", str(exc))]
    except AgentNotFoundError as exc:
        return [Check(name, "ok", f"reachable; no {what} found ({exc})")]
    except BackendUnavailableError as exc:  # the extra is not installed, or no daemon/API
        return [Check(name, "skipped", str(exc))]
    except WPProtectError as exc:
        return [Check(name, "error", str(exc))]
    except Exception as exc:  # an adapter bug must not stop the other checks
        log.debug("%s discovery failed", name, exc_info=True)
        return [Check(name, "error", f"{type(exc).__name__}: {exc}")]
    ctx.agents.extend(agents)
    targets = [a.target for a in agents]
    checks = [
        Check(
            name,
            "ok",
            f"{len(agents)} {what}: {', '.join(targets)}",
            data={"targets": targets},
        )
    ]
    for agent in agents:
        checks.append(_version_check(ctx, agent))
        checks += agent_settings(ctx, agent)
    return checks


def _version_check(ctx: Context, agent: BasePlatform) -> Check:
    """``version:<target>``: the agent's own ``version`` command."""
    name = f"version:{agent.target}"
    try:
        version = ctx.within(agent.version, f"version on {agent.target}")
    except ExecTimeoutError as exc:
        return Check(name, "error", str(exc))
    except Exception as exc:  # reported, other agents still checked
        return Check(name, "error", f"could not read the agent version: {exc}")
    return Check(name, "ok", f"Datadog Agent {version}", data={"version": jsonable(version)})
