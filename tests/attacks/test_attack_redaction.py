"""Attacks on redaction: secrets laid out so a line-by-line reading misses them, and lines built
to make the redaction patterns backtrack.

Each test performs the attack and asserts that no surface (diff, ``to_dict()``, ``_repr_html_``,
repr) shows the secret, and that the planned file and its directory are left as they were.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.attacks.conftest import run_bounded, tree_digest
from wpprotect._contract import ExecResult
from wpprotect._redact import MASK, redact_text, secret_values
from wpprotect.config import ConfigEditor, plan_disable

SECRET = "s3cr3t-t0k3n-value-xyz"
API_KEY = "0123456789abcdef0123456789abcdef"


def _daemonset(env: list[dict[str, str]]) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "datadog-agent"},
        "spec": {"template": {"spec": {"containers": [{"name": "system-probe", "env": env}]}}},
    }


#: The layouts that used to leak: ``kubectl get -o json`` (``"name"`` quoted, so not read as an
#: env name), value-first block entries, flow-style entries.
LAYOUTS = {
    "kubectl-json": json.dumps(
        _daemonset(
            [
                {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "true"},
                {"value": SECRET, "name": "DD_CLUSTER_AGENT_AUTH_TOKEN"},
            ]
        ),
        indent=2,
    )
    + "\n",
    "value-first": f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: datadog-agent
spec:
  template:
    spec:
      containers:
      - name: system-probe
        env:
        - value: {SECRET}
          name: DD_CLUSTER_AGENT_AUTH_TOKEN
        - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
          value: "true"
        - value: {SECRET}2
          name: DD_API_KEY
""",
    "flow-style": f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: datadog-agent
spec:
  template:
    spec:
      containers:
      - name: system-probe
        env:
        - {{name: DD_CLUSTER_AGENT_AUTH_TOKEN, value: {SECRET}}}
        - {{name: DD_RUNTIME_SECURITY_CONFIG_ENABLED, value: "true"}}
        - {{value: "{SECRET}2", name: DD_API_KEY}}
""",
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_env_secret_in_any_layout_is_on_no_surface(tmp_path: Path, layout: str) -> None:
    name = "ds.json" if layout == "kubectl-json" else "ds.yaml"
    target = tmp_path / name
    target.write_text(LAYOUTS[layout])
    before = tree_digest(tmp_path)
    plan = plan_disable(target)
    surfaces = {
        "diff": plan.diff(),
        "to_dict": json.dumps(plan.to_dict()),
        "html": plan._repr_html_(),
        "repr": repr(plan),
    }
    assert "false" in surfaces["diff"]  # the plan does show its change
    for surface, text in surfaces.items():
        assert SECRET not in text, f"{layout}: the secret is in {surface}"
    assert MASK in surfaces["diff"] or (layout == "kubectl-json" and SECRET not in surfaces["diff"])
    # the setting's own value is not masked as if it were the secret's neighbour
    assert '+          value: "false"' in surfaces["diff"] or layout != "value-first"
    assert tree_digest(tmp_path) == before


def test_editor_diff_masks_structural_secrets_in_flow_mappings() -> None:
    text = f"env:\n- {{value: {SECRET}, name: DD_API_KEY}}\nother: 1\n"
    editor = ConfigEditor.from_text(text)
    editor.set("other", 2)
    assert SECRET not in editor.diff()
    assert "+other: 2" in editor.diff()


def test_secret_values_reads_the_structure() -> None:
    doc = {
        "env": [
            {"value": "v1", "name": "DD_API_KEY"},
            {"name": "DD_SITE", "value": "datadoghq.com"},
            "DB_PASSWORD=v2",
        ],
        "auth_token": "v3",
    }
    doc["again"] = doc["env"]  # an aliased node is read once
    assert secret_values(doc) == {"v1", "v2", "v3"}


# --- the patterns on hostile lines ------------------------------------------------------------

#: 1 MB lines of the shapes that made the former patterns backtrack over the whole line from
#: every starting point (minutes at this size): a word holding ``password``, a dotted name, a
#: URI scheme of dotted letters, PEM headers without an end.
HOSTILE = {
    "password-word": "password" * (1 << 17),
    "dotted-name": "a." * (1 << 19),
    "dotted-scheme": "a.a+" * (1 << 18) + "://x",
    "pem-begins": "-----BEGIN A----- " * (1 << 16) + "-----END B-----",
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_hostile_1mb_line_is_redacted_in_linear_time(shape: str) -> None:
    # A fresh interpreter under a hard limit: the quadratic patterns took minutes per line.
    code = (
        "from tests.attacks.test_attack_redaction import HOSTILE\n"
        "from wpprotect._redact import redact_text\n"
        f"line = HOSTILE[{shape!r}]\n"
        "out = redact_text(line + ' password=hunter2 http://u:pw@h/ x')\n"
        "print('hunter2' in out, ':pw@' in out, len(out) > len(line))\n"
    )
    assert run_bounded(code, limit=60).split() == ["False", "False", "True"]


def test_linear_patterns_keep_what_they_mask() -> None:
    line = (
        f"--api_key={API_KEY} x.DD_AUTH_TOKEN='t0k' db_pwd : hunter2 "
        "postgres://app:s3cr3t@db/x -----BEGIN RSA KEY-----abc-----END RSA KEY-----"
    )
    out = redact_text(line)
    for leaked in (API_KEY, "t0k", "hunter2", "s3cr3t", "abc-----"):
        assert leaked not in out
    assert f"--api_key={MASK}" in out
    assert "postgres://app:********@db/x" in out
    assert "db_pwd : ********" in out


# --- 15. one redaction for every surface of ExecResult ----------------------------------------


def test_exec_result_surfaces_share_one_redaction() -> None:
    res = ExecResult(
        argv=["agent", "config", f"--api-key={API_KEY}"],
        exit_code=0,
        stdout=f"api_key: {API_KEY}\nDD_AUTH_TOKEN={SECRET}\n",
        stderr=f"Bearer {SECRET}\n",
        target="host:x",
    )
    surfaces = {"repr": repr(res), "html": res._repr_html_(), "to_dict": json.dumps(res.to_dict())}
    for surface, text in surfaces.items():
        assert API_KEY not in text, surface
        assert SECRET not in text, surface
    assert res.to_dict()["stdout"].startswith("api_key: ****")
    assert "bcdef" in surfaces["html"]  # the key's last five characters identify it
    assert res.stdout.startswith(f"api_key: {API_KEY}")  # the raw value stays for the program
