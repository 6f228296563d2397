"""Edits the plans make, on the kinds of files users have (host configs, manifests)."""

from __future__ import annotations

from pathlib import Path

import yaml

from wpprotect.config._editor import ConfigEditor

HOST_SYSTEM_PROBE = """\
# Managed by hand. Ask #infra before changing.
system_probe_config:
  enabled: true
  sysprobe_socket: /opt/datadog-agent/run/sysprobe.sock

network_config:
  enabled: true

runtime_security_config:
  enabled: true  # CWS on since 2023-04
  fim_enabled: true
  socket: /opt/datadog-agent/run/runtime-security.sock

# Universal Service Monitoring
service_monitoring_config:
  enabled: false
"""

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: datadog-agent
  namespace: datadog
  annotations:
    deployment.kubernetes.io/revision: "3"
spec:
  template:
    spec:
      containers:
      - name: agent
        image: gcr.io/datadoghq/agent:7.68.0
        env:
        - name: DD_SITE
          value: datadoghq.com
      - name: system-probe
        image: gcr.io/datadoghq/agent:7.68.0
        env:
        - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
          value: "true"
        - name: DD_SYSTEM_PROBE_ENABLED
          value: "true"  # required
      - name: security-agent
        image: gcr.io/datadoghq/agent:7.68.0
"""


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_host_file_disable_and_priority() -> None:
    ed = ConfigEditor.from_text(HOST_SYSTEM_PROBE)
    ed.set("runtime_security_config.enabled", False)
    assert changed_lines(HOST_SYSTEM_PROBE, ed.text) == [
        ("  enabled: true  # CWS on since 2023-04", "  enabled: false  # CWS on since 2023-04")
    ]
    ed.set("runtime_security_config.network.classifier_priority", 4)
    out = ed.text
    assert (
        "  socket: /opt/datadog-agent/run/runtime-security.sock\n"
        "  network:\n    classifier_priority: 4\n\n# Universal Service Monitoring\n"
    ) in out
    data = yaml.safe_load(out)
    assert data["runtime_security_config"]["network"] == {"classifier_priority": 4}
    assert data["service_monitoring_config"] == {"enabled": False}


def test_daemonset_env_edit_in_place() -> None:
    ed = ConfigEditor.from_text(DAEMONSET)
    containers = ed.get("spec.template.spec.containers")
    probe = next(c for c in containers if c["name"] == "system-probe")
    env = probe["env"]
    entry = next(e for e in env if e["name"] == "DD_RUNTIME_SECURITY_CONFIG_ENABLED")
    ed.set_in(entry, "value", "false")
    sec = next(c for c in containers if c["name"] == "security-agent")
    ed.set_in(sec, "env", [{"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}])
    out = ed.text
    before_lines = DAEMONSET.splitlines()
    after_lines = out.splitlines()
    # One changed line, two added at the end: nothing else moves.
    assert after_lines[: len(before_lines)] == [
        ln.replace('value: "true"', 'value: "false"') if i == 20 else ln
        for i, ln in enumerate(before_lines)
    ]
    assert after_lines[len(before_lines) :] == [
        "        env:",
        "        - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED",
        '          value: "false"',
    ]
    parsed = yaml.safe_load(out)
    envs = {c["name"]: c.get("env") for c in parsed["spec"]["template"]["spec"]["containers"]}
    assert envs["system-probe"][0] == {
        "name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED",
        "value": "false",
    }
    assert envs["security-agent"] == [
        {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}
    ]


def test_append_env_entry_keeps_neighbour_comment() -> None:
    ed = ConfigEditor.from_text(DAEMONSET)
    probe = ed.get("spec.template.spec.containers")[1]
    probe["env"].append(
        ed.make_node(
            {"name": "DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY", "value": "4"}
        )
    )
    out = ed.text
    assert (
        '          value: "true"  # required\n'
        "        - name: DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY\n"
        '          value: "4"\n'
        "      - name: security-agent\n"
    ) in out
    assert (
        yaml.safe_load(out)["spec"]["template"]["spec"]["containers"][1]["env"][-1]["value"] == "4"
    )


def test_annotation_keys_with_dots() -> None:
    ed = ConfigEditor.from_text(DAEMONSET)
    ed.set(("metadata", "annotations", "deployment.kubernetes.io/revision"), "4")
    assert changed_lines(DAEMONSET, ed.text) == [
        ('    deployment.kubernetes.io/revision: "3"', '    deployment.kubernetes.io/revision: "4"')
    ]


def test_example_with_crlf_and_no_final_newline(upstream: Path) -> None:
    text = (upstream / "datadog-agent" / "security-agent.yaml.example").read_text()
    crlf = text.rstrip("\n").replace("\n", "\r\n")
    ed = ConfigEditor.from_text(crlf)
    ed.set("compliance_config.enabled", False)  # its commented line is the file's last line
    out = ed.text
    assert "\n" not in out.replace("\r\n", "")
    assert not out.endswith("\r\n")
    assert out.endswith("\r\n  enabled: false")
    assert yaml.safe_load(out) == {"compliance_config": {"enabled": False}}
    assert out.count("\r\n") == crlf.count("\r\n")


def test_example_untouched_is_identical(upstream: Path) -> None:
    for name in ("system-probe.yaml.example", "security-agent.yaml.example"):
        text = (upstream / "datadog-agent" / name).read_text()
        ed = ConfigEditor.from_text(text)
        assert ed.get("runtime_security_config.enabled") is None
        assert ed.text == text
        assert not ed.changed
