"""The Kubernetes adapter: agent pods found by label, exec over the API server's websocket.

``kubernetes`` (the official client) is imported only here and in the private ``_k8s_*``
modules beside it, on first use. Agent pods are found with the label both the Helm chart and the
Operator put on them, ``agent.datadoghq.com/component=agent``
(``docs/reference/deployments.md#deploy-helm-daemonset``, ``#deploy-operator-daemonset``; the
``kubectl datadog`` plugin's ``AgentLabel``), then ``app.kubernetes.io/component=agent``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from wpprotect._contract import Component, ExecResult
from wpprotect.errors import (
    AgentNotFoundError,
    ExecError,
    ExecTimeoutError,
    InvalidArgumentError,
    PlatformError,
)
from wpprotect.platforms._base import (
    DEFAULT_MAX_OUTPUT,
    BasePlatform,
    ExecCall,
    OutputBudget,
    check_argv,
    check_timeout,
)
from wpprotect.platforms._k8s_api import K8sAPI, stream_errors
from wpprotect.platforms._k8s_nodes import application_pod_hint
from wpprotect.platforms._thirdparty import ExecStream, K8sApiClient

if TYPE_CHECKING:
    from wpprotect.config import Setting
    from wpprotect.config._settings import SettingValue
    from wpprotect.plan import Change, Plan

__all__ = ["AGENT_SELECTORS", "KubernetesPlatform"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Label selectors tried in order when the caller gives none.
AGENT_SELECTORS = ("agent.datadoghq.com/component=agent", "app.kubernetes.io/component=agent")
_COMPONENTS: tuple[Component, ...] = ("agent", "system-probe", "security-agent")
_MANAGED_BY = "app.kubernetes.io/managed-by"
_OPERATOR_OWNERS = ("DatadogAgent", "DatadogAgentInternal")
# A DNS-1123 subdomain (pod and namespace names), so a name cannot smuggle a path or a query.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _check_name(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 253 or not set(value) <= _NAME_CHARS:
        raise InvalidArgumentError(f"invalid {what} name {value!r} (lower-case DNS name expected)")
    return value


class _TextFrames(Exception):
    """The exec frames arrived as text: a binary copy must move as base64."""


def _check_for_pod(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.count("/") != 1:
        raise InvalidArgumentError(f"for_pod must be 'namespace/pod', not {value!r}")
    ns, name = value.split("/")
    _check_name(ns, "namespace")
    _check_name(name, "pod")
    return value


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _pod_containers(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    return [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]


def _ready_score(pod: dict[str, Any]) -> tuple[int, str]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready"))
    return ready, str(_meta(pod).get("creationTimestamp") or "")


def _to_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    return str(data or "").encode("utf-8", "surrogateescape")


class KubernetesPlatform(BasePlatform):
    """Datadog Agent pods in a cluster.

    >>> k8s = KubernetesPlatform(namespace="datadog")           # doctest: +SKIP
    >>> [a.target for a in k8s.agents()]                        # doctest: +SKIP
    ['pod datadog/datadog-agent-7xk2p (node-1)', 'pod datadog/datadog-agent-q9w4d (node-2)']

    :param namespace: where to look; ``None`` looks in every namespace.
    :param pod: one pod by name (then this platform is that agent).
    :param label_selector: a selector that replaces the default agent labels.
    :param client: a ``kubernetes.client.ApiClient`` (never closed by the platform); ``None``
        loads one from kubeconfig (``kubeconfig``, ``context``) or, failing that, the in-cluster
        config.
    :param context: kubeconfig context.
    :param kubeconfig: kubeconfig path.
    :param timeout: seconds any one API call (or opening an exec stream) may take before
        :class:`~wpprotect.BackendUnavailableError` (for exec:
        :class:`~wpprotect.ExecTimeoutError`); the client's own retries come on top. ``None``:
        no limit.
    :param node: only the agent pod on this node (:meth:`agents` then returns that one).
    :param for_pod: ``namespace/pod`` of an application pod: the agent serving it, i.e. the
        agent pod on that pod's node.
    :param api_client: deprecated spelling of ``client``.
    :param request_timeout: deprecated spelling of ``timeout``.
    :raises InvalidArgumentError: a malformed namespace, pod name or timeout, or both spellings
        of one option.

    Nothing is contacted until first use; then a missing client package or configuration is a
    :class:`~wpprotect.BackendUnavailableError`. Pods are looked up again on each call of
    :meth:`agents`; a single-pod platform keeps the pod it was made for.

    A platform that loads its client closes it in :meth:`close` (or at the end of a ``with``
    block); one garbage-collected unclosed warns with ``ResourceWarning``. The platforms
    :meth:`agents` returns share the client and close nothing.

    .. versionchanged:: 0.1.0
       ``client`` and ``timeout`` replace ``api_client`` and ``request_timeout``, which still
       work and warn with ``DeprecationWarning``.
    """

    kind = "kubernetes"

    def __init__(
        self,
        namespace: str | None = None,
        pod: str | None = None,
        label_selector: str | None = None,
        *,
        client: K8sApiClient | None = None,
        context: str | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        timeout: float | None = 60.0,
        api_client: K8sApiClient | None = None,
        request_timeout: float | None = None,
        node: str | None = None,
        for_pod: str | None = None,
    ) -> None:
        self.namespace = _check_name(namespace, "namespace")
        self.node_filter = _check_name(node, "node")
        self.for_pod = _check_for_pod(for_pod)
        self.pod = _check_name(pod, "pod")
        selector: object = label_selector
        if selector is not None and (not isinstance(selector, str) or "\x00" in selector):
            raise InvalidArgumentError(f"invalid label selector {label_selector!r}")
        self.label_selector = label_selector
        if api_client is not None:
            if client is not None:
                raise InvalidArgumentError("give client= only (api_client= is its old name)")
            _deprecated("api_client", "client")
            client = api_client
        if request_timeout is not None:
            if timeout != 60.0:
                raise InvalidArgumentError("give timeout= only (request_timeout= is its old name)")
            _deprecated("request_timeout", "timeout")
            timeout = request_timeout
        self._api = K8sAPI(
            client,
            context=context,
            kubeconfig=None if kubeconfig is None else os.fspath(kubeconfig),
            timeout=check_timeout(timeout),
        )
        self._owner = True
        self._pod_obj: dict[str, Any] | None = None

    @classmethod
    def _for_pod(cls, api: K8sAPI, pod: dict[str, Any]) -> KubernetesPlatform:
        meta = _meta(pod)
        platform = cls.__new__(cls)
        platform.namespace = str(meta.get("namespace"))
        platform.pod = str(meta.get("name"))
        platform.label_selector = None
        platform._api = api
        platform._owner = False
        platform._pod_obj = pod
        platform.node_filter = None
        platform.for_pod = None
        return platform

    @property
    def timeout(self) -> float | None:
        """Seconds each API call may take (``None``: no limit)."""
        return self._api.timeout

    def close(self) -> None:
        """Close the Kubernetes client this platform loaded; a ``client`` passed in is left
        open, and a platform returned by :meth:`agents` closes nothing. After it, this platform
        (and those its :meth:`agents` returned) raise :class:`~wpprotect.PlatformError` when
        used."""
        if self._owner:
            self._api.close()

    # -- identity ----------------------------------------------------------------------------
    @property
    def target(self) -> str:
        """``pod <namespace>/<name> (<node>)`` for one pod, else what is searched."""
        if self._pod_obj is not None:
            meta = _meta(self._pod_obj)
            node = (self._pod_obj.get("spec") or {}).get("nodeName") or "unscheduled"
            return f"pod {meta.get('namespace')}/{meta.get('name')} ({node})"
        where = self.namespace or "all namespaces"
        if self.pod is not None:
            return f"pod {self.namespace or '*'}/{self.pod}"
        return f"agent pods in {where}"

    # -- discovery ---------------------------------------------------------------------------
    @property
    def node(self) -> str | None:
        """The node of this agent pod (a single-pod platform), or the node asked for."""
        if self._pod_obj is not None:
            return str((self._pod_obj.get("spec") or {}).get("nodeName") or "") or None
        return self.node_filter

    def _find_pods(self) -> list[dict[str, Any]]:
        """Running agent pods, one per node (only the one asked for with node= / for_pod=)."""
        if self.pod is not None:
            return [self._resolve_named_pod()]
        wanted = self.node_filter
        if self.for_pod is not None:
            from wpprotect.platforms._k8s_nodes import node_of_pod

            wanted = node_of_pod(self._api, self.for_pod, target=self.target)
        pods = self._agent_pods()
        if wanted is None:
            return pods
        on_node = [p for p in pods if (p.get("spec") or {}).get("nodeName") == wanted]
        if not on_node:
            via = f" (the node of pod {self.for_pod})" if self.for_pod else ""
            raise AgentNotFoundError(
                f"no Running agent pod on node {wanted}{via}; agent pods run on: "
                + ", ".join(sorted({str((p.get("spec") or {}).get("nodeName")) for p in pods})),
                target=self.target,
            )
        return on_node

    def _agent_pods(self) -> list[dict[str, Any]]:
        """Running agent pods found by label, one per node (the best-ready where several)."""
        selectors = [self.label_selector] if self.label_selector else list(AGENT_SELECTORS)
        pods: list[dict[str, Any]] = []
        for selector in selectors:
            found = self._api.list_pods(self.namespace, selector)
            if self.label_selector is None and selector != AGENT_SELECTORS[0]:
                # a generic label: keep pods that look like the agent (an `agent` container)
                found = [p for p in found if "agent" in _pod_containers(p)]
            pods = [p for p in found if (p.get("status") or {}).get("phase") == "Running"]
            if pods:
                break
        if not pods:
            raise AgentNotFoundError(
                f"no Running agent pod matches {' or '.join(selectors)} in "
                f"{self.namespace or 'any namespace'}",
                target=self.target,
            )
        by_node: dict[str, list[dict[str, Any]]] = {}
        for p in pods:
            by_node.setdefault(str((p.get("spec") or {}).get("nodeName") or ""), []).append(p)
        chosen = []
        for node, group in sorted(by_node.items()):
            group.sort(key=_ready_score, reverse=True)
            if len(group) > 1:
                log.warning(
                    "%d agent pods on node %s; using %s",
                    len(group),
                    node or "?",
                    _meta(group[0]).get("name"),
                )
            chosen.append(group[0])
        return chosen

    def _resolve_named_pod(self) -> dict[str, Any]:
        if self.pod is None:  # pragma: no cover - callers check
            raise InvalidArgumentError("no pod name given")
        if self.namespace is not None:
            pod = self._api.read_pod(self.namespace, self.pod)
        else:
            matches = self._api.list_pods(None, None, field_selector=f"metadata.name={self.pod}")
            if not matches:
                raise AgentNotFoundError(
                    f"no pod named {self.pod} in any namespace", target=self.target
                )
            if len(matches) > 1:
                spaces = ", ".join(sorted(str(_meta(m).get("namespace")) for m in matches))
                raise InvalidArgumentError(
                    f"pod {self.pod} exists in several namespaces ({spaces}); pass namespace="
                )
            pod = matches[0]
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Running":
            raise AgentNotFoundError(f"pod {self.pod} is {phase}, not Running", target=self.target)
        return pod

    def agents(self) -> list[BasePlatform]:
        """One single-pod platform per agent pod (one per node), sharing this API client.

        :raises AgentNotFoundError: no Running agent pod was found (the message names the
            selectors and the namespace searched).
        """
        return [KubernetesPlatform._for_pod(self._api, p) for p in self._find_pods()]

    def _the_pod(self) -> dict[str, Any]:
        if self._pod_obj is None:
            pods = self._find_pods()
            if len(pods) > 1:
                names = ", ".join(str(_meta(p).get("name")) for p in pods)
                raise InvalidArgumentError(
                    f"{len(pods)} agent pods found ({names}): pass pod= or use agents()"
                )
            self._pod_obj = pods[0]
        return self._pod_obj

    def _tc_fallback(self, run: Callable[[BasePlatform], T]) -> T:
        """``run`` on a short-lived privileged pod pinned to this agent's node (see
        :mod:`wpprotect.platforms._k8s_fallback`), deleted afterwards whatever happens."""
        from wpprotect.platforms._k8s_fallback import with_fallback_pod

        pod = self._the_pod()
        hint = application_pod_hint(pod)
        if hint is not None:
            raise AgentNotFoundError(hint, target=self.target)
        api = self._api
        result: T = with_fallback_pod(
            api,
            pod,
            lambda running: run(KubernetesPlatform._for_pod(api, running)),
            target=self.target,
        )
        return result

    def container_env(self, component: Component = "system-probe") -> dict[str, str | None]:
        """The env the pod spec gives one of the agent's containers.

        Literal ``value`` entries are returned as strings; entries set with ``valueFrom`` (a
        Secret, a ConfigMap, a field) are returned as None: reading them would need more access
        than the agent's settings are worth, and their values may be secrets.

        :param component: the container (``system-probe``, ``security-agent`` or ``agent``).
        :returns: name → value (or None), in the spec's order; empty when the container has no
            env.
        :raises AgentNotFoundError: the pod has no such container.
        """
        pod = self._the_pod()
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("name") == component:
                return {
                    str(e.get("name")): (None if "valueFrom" in e else str(e.get("value", "")))
                    for e in container.get("env") or []
                    if e.get("name")
                }
        raise AgentNotFoundError(f"the pod has no {component!r} container", target=self.target)

    # -- exec --------------------------------------------------------------------------------
    def _exec_bytes(
        self,
        argv: Sequence[str],
        component: Component,
        stdin: bytes | None,
        timeout: float | None,
        *,
        max_output: int | None = DEFAULT_MAX_OUTPUT,
        sink: Callable[[bytes], None] | None = None,
    ) -> tuple[int, bytes, bytes, float]:
        """Run ``argv``: (exit code, stdout, stderr, seconds). With ``sink``, stdout goes to it
        as it arrives (not counted against ``max_output``) instead of being returned."""
        args = check_argv(argv)
        if component not in _COMPONENTS:
            raise InvalidArgumentError(
                f"unknown component {component!r}; valid: {', '.join(_COMPONENTS)}"
            )
        pod = self._the_pod()
        target = self.target
        containers = _pod_containers(pod)
        if component not in containers:
            raise AgentNotFoundError(
                f"the pod has no {component} container (containers: {', '.join(containers)})",
                target=target,
            )
        meta = _meta(pod)
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        ws, private = self._api.open_exec(
            str(meta.get("namespace")),
            str(meta.get("name")),
            component,
            args,
            stdin=stdin is not None,
            target=target,
            timeout=None if deadline is None else deadline - time.monotonic(),
        )
        try:
            budget = OutputBudget(max_output, args[0], target)
            return (
                *self._pump(ws, stdin, deadline, args, target, budget=budget, sink=sink),
                time.monotonic() - start,
            )
        finally:
            with contextlib.suppress(Exception):
                ws.close()
            with contextlib.suppress(Exception):
                private.close()

    def _pump(
        self,
        ws: ExecStream,
        stdin: bytes | None,
        deadline: float | None,
        argv: list[str],
        target: str,
        *,
        budget: OutputBudget,
        sink: Callable[[bytes], None] | None,
    ) -> tuple[int, bytes, bytes]:
        """Send stdin, collect channels 1 and 2 until the server closes, read channel 3."""
        out: list[bytes] = []
        err: list[bytes] = []
        status_raw: list[bytes] = []

        def read_channels() -> None:
            for channel, kept in ((1, out), (2, err)):
                data = _to_bytes(ws.read_channel(channel))
                if channel == 1 and sink is not None:
                    if data:
                        sink(data)
                    continue
                budget.take(len(data))
                kept.append(data)
            status_raw.append(_to_bytes(ws.read_channel(3)))

        try:
            if stdin is not None:
                for i in range(0, len(stdin), 64 * 1024):
                    ws.write_stdin(stdin[i : i + 64 * 1024])
                # v5.channel.k8s.io half-closes stdin; v4 (and clients before v5 support)
                # cannot, so there the command gets no EOF.
                close_channel = getattr(ws, "close_channel", None)
                if close_channel is not None:
                    close_channel(0)
            while ws.is_open():
                wait = 1.0
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        raise ExecTimeoutError(
                            f"{argv[0]} ran past its timeout; the websocket was closed (the "
                            "process may still run in the container)",
                            target=target,
                        )
                    wait = min(wait, 1.0)
                ws.update(timeout=wait)
                read_channels()
            read_channels()
        except stream_errors() as exc:
            # Lost: fine only if the exit status had already arrived (a proxy may reset the
            # connection instead of sending a close frame).
            with contextlib.suppress(Exception):
                read_channels()
            if not b"".join(status_raw).strip():
                raise ExecError(
                    f"the exec connection for {argv[0]} was lost: {exc}", target=target
                ) from exc
        status = b"".join(status_raw)
        return self._exit_code(status, argv, target), b"".join(out), b"".join(err)

    @staticmethod
    def _exit_code(status: bytes, argv: list[str], target: str) -> int:
        """The exit code from the error channel's ``metav1.Status`` (kubelet's remotecommand)."""
        if not status.strip():
            raise ExecError(
                f"the exec connection for {argv[0]} closed before the exit status arrived",
                target=target,
            )
        try:
            parsed = json.loads(status)
        except ValueError as exc:
            raise ExecError(f"unreadable exec status {status[:200]!r}", target=target) from exc
        if parsed.get("status") == "Success":
            return 0
        for cause in (parsed.get("details") or {}).get("causes") or []:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                with contextlib.suppress(TypeError, ValueError):
                    return int(str(cause.get("message")))
        raise ExecError(
            f"could not run {argv[0]}: {str(parsed.get('message') or parsed)[:300]}", target=target
        )

    def _exec(self, call: ExecCall) -> ExecResult:
        """Run ``argv`` in the ``component`` container of the agent pod (no TTY); see
        :meth:`BasePlatform.exec`.

        stdout and stderr come on separate channels; the exit code comes from the status
        channel. ``stdin`` needs ``v5.channel.k8s.io`` to be closed after it is sent.

        :raises AgentNotFoundError: no such pod or container.
        :raises PermissionDeniedError: RBAC refused ``pods/exec``.
        """
        argv, component, stdin, timeout, max_output = call.unpack()
        code, out, err, duration = self._exec_bytes(
            argv, component, stdin, timeout, max_output=max_output
        )
        log.debug(
            "%s in %s of %s: exit %d after %.2fs", argv[0], component, self.target, code, duration
        )
        return ExecResult(
            argv=tuple(argv),
            exit_code=code,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            duration=duration,
            target=self.target,
        )

    def copy_out(
        self, path: str, dest: Path | str, *, component: Component = "security-agent"
    ) -> Path:
        """Copy a file out of the container through exec (``cat``; binary-safe), checking its
        size with ``stat``; written next to ``dest`` and renamed into place (mode 0600).

        :param path: absolute path in the container.
        :param dest: local file path, or an existing directory to copy into.
        :returns: the local path written.
        :raises PlatformError: the file cannot be read, or arrived truncated.
        """
        given: object = path
        if not isinstance(given, str) or not given.startswith("/") or "\x00" in given:
            raise InvalidArgumentError(f"need an absolute path in the container, not {given!r}")
        dest = Path(dest)
        final = dest / PurePosixPath(path).name if dest.is_dir() and not dest.is_symlink() else dest
        # The path is absolute, so it cannot be taken for an option. kubernetes < 31 decodes
        # frames as UTF-8 text (known once the first exec opened): then the bytes move as base64.
        for argv in (["cat", path], ["base64", path]):
            decode = argv[0] == "base64"
            if not decode and not self._api.binary_frames:
                continue
            try:
                size = self._stream_to(final, argv, path, component, decode=decode)
            except _TextFrames:
                continue
            break
        code, size_text, _, _ = self._exec_bytes(["stat", "-c", "%s", path], component, None, 60.0)
        if code == 0 and size_text.strip().isdigit() and int(size_text) != size:
            final.unlink(missing_ok=True)
            raise PlatformError(
                f"{path} arrived truncated: {size} of {int(size_text)} bytes",
                path=path,
                target=self.target,
            )
        return final

    def _stream_to(
        self, final: Path, argv: list[str], path: str, component: Component, *, decode: bool
    ) -> int:
        """Stream ``argv``'s stdout into ``final`` (through a private file renamed into place;
        base64-decoded when ``decode``): the number of bytes written.

        :raises _TextFrames: the frames turned out to be text, not bytes (``cat`` on an old
            client): nothing was written.
        """
        from wpprotect.platforms._localfile import private_file

        written = 0
        try:
            with private_file(final, mode=0o600) as write:
                rest = b""

                def sink(data: bytes) -> None:
                    nonlocal rest, written
                    if decode:
                        data = rest + data.translate(None, b" \t\r\n")
                        cut = len(data) // 4 * 4
                        data, rest = base64.b64decode(data[:cut]), data[cut:]
                    write(data)
                    written += len(data)

                code, _, err, _ = self._exec_bytes(argv, component, None, 600.0, sink=sink)
                if code != 0:
                    message = err.decode("utf-8", "replace").strip() or f"exit {code}"
                    raise PlatformError(
                        f"cannot read {path}: {message}", path=path, target=self.target
                    )
                if not decode and not self._api.binary_frames:
                    raise _TextFrames
                if rest:  # `base64` pads its output: a partial quantum is not its output
                    raise binascii.Error(f"{len(rest)} bytes left over")
        except OSError as exc:
            raise PlatformError(
                f"cannot write {final}: {exc.strerror or exc}", path=final, target=self.target
            ) from exc
        except binascii.Error as exc:
            raise PlatformError(
                f"{path} arrived garbled: {exc}", path=path, target=self.target
            ) from exc
        return written

    # -- plans -------------------------------------------------------------------------------
    def _daemonsets(self) -> list[tuple[str, str]]:
        """The DaemonSets owning the agent pods (namespace, name), in order."""
        seen: list[tuple[str, str]] = []
        for pod in self._find_pods() if self._pod_obj is None else [self._pod_obj]:
            meta = _meta(pod)
            owner = next(
                (
                    o
                    for o in meta.get("ownerReferences") or []
                    if isinstance(o, dict) and o.get("kind") == "DaemonSet"
                ),
                None,
            )
            if owner is None:
                raise PlatformError(
                    f"pod {meta.get('namespace')}/{meta.get('name')} is not owned by a DaemonSet; "
                    "its settings cannot be changed from the cluster",
                    target=self.target,
                )
            key = (str(meta.get("namespace")), str(owner.get("name")))
            if key not in seen:
                seen.append(key)
        return seen

    def _settings_plan(self, settings: Mapping[Setting, SettingValue], *, title: str) -> Plan:
        """Patch the agent DaemonSet, or its DatadogAgent when the Operator manages it.

        :returns: a :class:`~wpprotect.Plan`; for a Helm release its notes say the chart
            values need the same change (``wpprotect.plan_disable`` on the values file).
        """
        from wpprotect.plan import Plan
        from wpprotect.platforms._k8s_changes import DaemonSetEnvChange, DatadogAgentChange

        changes: list[Change] = []
        notes: list[str] = []
        for namespace, name in self._daemonsets():
            ds = self._api.read_daemonset(namespace, name)
            meta = _meta(ds)
            labels = meta.get("labels") or {}
            owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict)]
            operator_owner = next((o for o in owners if o.get("kind") in _OPERATOR_OWNERS), None)
            if labels.get(_MANAGED_BY) == "datadog-operator" or operator_owner is not None:
                dda = labels.get("agent.datadoghq.com/name") or (operator_owner or {}).get("name")
                if not dda:
                    raise PlatformError(
                        f"DaemonSet {namespace}/{name} is managed by the Datadog Operator but "
                        "names no DatadogAgent; patching the DaemonSet would be reverted",
                        target=self.target,
                    )
                changes.append(DatadogAgentChange(self._api, namespace, str(dda), settings))
                notes.append(
                    f"DaemonSet {namespace}/{name} is managed by the Datadog Operator: the change "
                    f"goes into DatadogAgent {namespace}/{dda}, and the Operator rolls the pods."
                )
                continue
            changes.append(DaemonSetEnvChange(self._api, namespace, name, settings))
            strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type")
            if strategy == "OnDelete":
                notes.append(
                    f"DaemonSet {namespace}/{name} uses updateStrategy OnDelete: delete the agent "
                    "pods for the new env to take effect."
                )
            else:
                notes.append(
                    f"The DaemonSet controller restarts the pods of {namespace}/{name} with the "
                    "new env (RollingUpdate); verify() checks the DaemonSet, not the rollout."
                )
            if labels.get(_MANAGED_BY) == "Helm":
                release = (meta.get("annotations") or {}).get("meta.helm.sh/release-name") or name
                notes.append(_helm_note(namespace, name, str(release), settings))
        plan_notes: Any = notes  # Plan's attrs list converters are opaque to mypy's plugin
        return Plan(title, changes, notes=plan_notes)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"KubernetesPlatform({old}=...) is deprecated: use {new}=..., the name every platform uses",
        DeprecationWarning,
        stacklevel=3,
    )


def _helm_note(
    namespace: str, name: str, release: str, settings: Mapping[Setting, SettingValue]
) -> str:
    """What to change in the Helm values so the next ``helm upgrade`` keeps the change."""
    keys = []
    for setting, value in settings.items():
        helm_path = getattr(setting, "helm_path", None)
        if helm_path:
            keys.append(f"{helm_path}: {json.dumps(value)}")
        else:
            keys.append(
                f"agents.containers.{getattr(setting, 'helm_env_container', 'systemProbe')}.env: "
                f"[{{name: {setting.write_env}, value: {json.dumps(setting.env_value(value))}}}]"
            )
    return (
        f"DaemonSet {namespace}/{name} belongs to Helm release {release!r}: the next helm upgrade "
        "reverts this patch. Make the same change in the release's values file "
        f"({'; '.join(keys)}), e.g. with wpprotect.plan_disable(values_path, scope=...) or "
        "wpprotect.plan_classifier_priority(values_path, n); wpprotect never runs helm."
    )
