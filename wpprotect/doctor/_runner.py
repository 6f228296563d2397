"""The runner: build the context, run every check in order, gather the report."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from wpprotect.agent._layout import DEFAULT_CONFIG_DIR, DEFAULT_INSTALL_DIR
from wpprotect.doctor._context import Context, Options
from wpprotect.doctor._host import (
    add_host_agent,
    check_agents,
    check_components,
    check_cws_running,
    check_install,
    check_version,
    read_agent_env,
)
from wpprotect.doctor._platforms import check_docker, check_kubernetes
from wpprotect.doctor._procs import running_components
from wpprotect.doctor._report import Check, DoctorReport
from wpprotect.doctor._selftest import check_self_test
from wpprotect.doctor._settings import check_container_processes, check_settings
from wpprotect.doctor._tc import check_tc
from wpprotect.doctor._tc_cluster import check_tc_cluster

__all__ = ["CHECKS", "diagnose"]


def _node_priority(ctx: Context) -> list[Check]:
    """Not a check: with no host install, the TC scan (which sees this node's devices) is
    judged against the priority the node's containerised system-probe really uses."""
    priorities = set(ctx.container_priorities.values())
    if not ctx.host_present and len(priorities) == 1:
        label, value = next(iter(ctx.container_priorities.items()))
        ctx.classifier_priority = value
        ctx.classifier_priority_source = f"system-probe in {label}"
    return []


#: The checks in the order they run; each may use what the ones before it recorded in the
#: context. (``agents``, a summary of them all, is added in front at the end.)
CHECKS: tuple[Callable[[Context], list[Check]], ...] = (
    check_install,
    check_version,
    check_components,
    read_agent_env,
    check_settings,
    check_cws_running,
    add_host_agent,
    check_docker,
    check_kubernetes,
    check_container_processes,
    _node_priority,
    check_tc,
    check_tc_cluster,
    check_self_test,
)


def diagnose(
    *,
    install_dir: str | os.PathLike[str] = DEFAULT_INSTALL_DIR,
    config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR,
    docker: bool = True,
    kubernetes: bool = True,
    tc: bool = True,
    self_test: bool = False,
    timeout: float = 5.0,
    self_test_timeout: float = 120.0,
    kubeconfig: str | Path | None = None,
    namespace: str | None = None,
    containers: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    proc: str | Path = "/proc",
) -> DoctorReport:
    """Look at everything Workload Protection depends on here and report what is wrong.

    Nothing is changed; only ``self_test=True`` makes the agent create temporary files and rules.

    :param install_dir: the agent's install directory.
    :param config_dir: the agent's config directory (``system-probe.yaml``,
        ``security-agent.yaml``).
    :param docker: look for agent containers through the Docker daemon.
    :param kubernetes: look for agent pods through the current kubeconfig.
    :param tc: scan traffic control in every network namespace (needs root).
    :param self_test: run the runtime self-test on every agent found.
    :param timeout: seconds allowed to each daemon or API probe (Docker, Kubernetes, version).
    :param self_test_timeout: seconds allowed to each self-test.
    :param kubeconfig: the kubeconfig to use instead of ``$KUBECONFIG``/``~/.kube/config``.
    :param namespace: the Kubernetes namespace of the agent pods (default: the adapter's).
    :param containers: the agent containers to look at (default: every container the Docker
        adapter recognises as an agent, by name or image).
    :param env: the agent's environment for the settings (default: read from the running
        host system-probe's ``/proc/<pid>/environ`` when readable).
    :param proc: the procfs to read processes from.
    :returns: a :class:`DoctorReport`; its :attr:`~DoctorReport.exit_status` is what the CLI
        returns.
    """
    options = Options(
        install_dir=Path(install_dir),
        config_dir=Path(config_dir),
        proc=Path(proc),
        docker=docker,
        kubernetes=kubernetes,
        tc=tc,
        self_test=self_test,
        timeout=timeout,
        self_test_timeout=self_test_timeout,
        kubeconfig=None if kubeconfig is None else Path(kubeconfig),
        namespace=namespace,
        containers=tuple(containers),
        env=env,
    )
    ctx = Context(options, processes=tuple(running_components(options.proc)))
    checks: list[Check] = []
    for check in CHECKS:
        checks += check(ctx)
    return DoctorReport([check_agents(ctx, checks), *checks])
