"""`wpprotect doctor --kubeconfig`: agent pods found through the real `kubernetes` client talking
to the in-process API server of tests/k8s_server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ux.wpux_support import run_json

pytest.importorskip("kubernetes", reason="the kubernetes extra is not installed")

VERSION_OUT = (
    b"Agent 7.68.0 - Commit: 1a2b3c4 - Serialization version: v5.0.1 - Go version: go1.22\n"
)


def _responder(req: object) -> tuple[int, bytes, bytes]:
    argv = list(req.argv)  # type: ignore[attr-defined]
    if argv[-1:] == ["version"]:
        return 0, VERSION_OUT, b""
    return 127, b"", f"{argv[0]}: not scripted in this test\n".encode()


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    from tests.k8s_server import FakeExecBackend, K8sTestServer, seed_helm

    server = K8sTestServer(FakeExecBackend(_responder)).start()
    try:
        seed_helm(server, 2)
        path = tmp_path / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f'clusters:\n- name: wpux\n  cluster: {{server: "{server.url}"}}\n'
            "users:\n- name: wpux\n  user: {token: not-a-real-token}\n"
            "contexts:\n- name: wpux\n  context: {cluster: wpux, user: wpux}\n"
            "current-context: wpux\n"
        )
        yield path, server
    finally:
        server.stop()


def test_doctor_finds_agent_pods_and_their_versions(
    kubeconfig: tuple[Path, object], tmp_path: Path
) -> None:
    path, _ = kubeconfig
    code, doc = run_json(
        ["doctor", "--kubeconfig", str(path), "--namespace", "datadog", "--no-docker", "--no-tc",
         "--install-dir", str(tmp_path / "none"), "--config-dir", str(tmp_path / "none")],
        timeout=120,
    )  # fmt: skip
    checks = {c["name"]: c for c in doc["checks"]}
    k8s = checks["kubernetes"]
    assert k8s["status"] == "ok", k8s
    targets = k8s["data"]["targets"]
    assert len(targets) == 2
    for target in targets:
        assert checks[f"version:{target}"]["detail"] == "Datadog Agent 7.68.0"
    assert code == 0


def test_kubeconfig_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    code, doc = run_json(
        ["doctor", "--kubeconfig", str(tmp_path / "missing"), "--no-docker", "--no-tc",
         "--install-dir", str(tmp_path), "--config-dir", str(tmp_path)],
    )  # fmt: skip
    check = {c["name"]: c for c in doc["checks"]}["kubernetes"]
    assert check["status"] == "error"
    assert "does not exist" in check["detail"]
    assert code == 2


def test_an_api_server_that_never_answers_does_not_hang_doctor(tmp_path: Path) -> None:
    import socket
    import threading

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # ... and never answer
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f'clusters:\n- name: s\n  cluster: {{server: "http://127.0.0.1:{port}"}}\n'
        "users:\n- name: s\n  user: {token: t}\n"
        "contexts:\n- name: s\n  context: {cluster: s, user: s}\ncurrent-context: s\n"
    )
    try:
        code, doc = run_json(
            ["doctor", "--kubeconfig", str(path), "--no-docker", "--no-tc", "--timeout", "1",
             "--install-dir", str(tmp_path), "--config-dir", str(tmp_path)],
            timeout=60,
        )  # fmt: skip
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    check = {c["name"]: c for c in doc["checks"]}["kubernetes"]
    assert check["status"] == "error"
    assert "did not answer within 1 s" in check["detail"]
    assert code == 2


def test_doctor_reads_each_pods_system_probe_env(tmp_path: Path) -> None:
    """Settings come from the system-probe container's env in the pod spec; a valueFrom entry
    (a Secret) is never resolved and never shown."""
    from tests.k8s_server import FakeExecBackend, K8sTestServer, seed_helm
    from wpprotect import KubernetesPlatform

    server = K8sTestServer(FakeExecBackend(_responder)).start()
    try:
        seed_helm(
            server,
            1,
            extra_env={
                "system-probe": [
                    {
                        "name": "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY",
                        "value": "5",
                    },
                    {
                        "name": "DD_API_KEY",
                        "valueFrom": {"secretKeyRef": {"name": "datadog", "key": "api-key"}},
                    },
                ]
            },
        )
        path = tmp_path / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f'clusters:\n- name: wpux\n  cluster: {{server: "{server.url}"}}\n'
            "users:\n- name: wpux\n  user: {token: not-a-real-token}\n"
            "contexts:\n- name: wpux\n  context: {cluster: wpux, user: wpux}\n"
            "current-context: wpux\n"
        )
        (pod,) = KubernetesPlatform(namespace="datadog", kubeconfig=str(path)).agents()
        env = pod.container_env("system-probe")  # type: ignore[attr-defined]
        assert env["DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"] == "5"
        assert env["DD_API_KEY"] is None
        code, doc = run_json(
            ["doctor", "--kubeconfig", str(path), "--namespace", "datadog", "--no-docker",
             "--no-tc", "--install-dir", str(tmp_path / "none"),
             "--config-dir", str(tmp_path / "none")],
            timeout=120,
        )  # fmt: skip
    finally:
        server.stop()
    checks = {c["name"]: c for c in doc["checks"]}
    (name,) = [n for n in checks if n.startswith("config.classifier_priority:pod datadog/")]
    assert checks[name]["detail"].startswith("5, from env DD_RUNTIME_SECURITY_CONFIG_NETWORK_")
    assert "api-key" not in str(doc)
    assert "secretKeyRef" not in str(doc)
    assert code == 0
