"""Several ``---``-separated documents in one file (Kubernetes manifests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wpprotect.config._editor import ConfigDocuments, ConfigEditor
from wpprotect.errors import ConfigConflictError, ConfigFileError, ConfigParseError

MANIFEST = """\
# Datadog Agent, hand-written manifests
apiVersion: v1
kind: ServiceAccount
metadata:
  name: datadog-agent
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: datadog-agent
spec:
  template:
    spec:
      containers:
        - name: system-probe
          env:
            - name: DD_RUNTIME_SECURITY_CONFIG_ENABLED
              value: "true"
---
# trailing ConfigMap
apiVersion: v1
kind: ConfigMap
data:
  system-probe.yaml: |
    runtime_security_config:
      enabled: true
"""


@pytest.mark.parametrize(
    "text",
    [
        MANIFEST,
        MANIFEST.rstrip("\n"),
        MANIFEST.replace("\n", "\r\n"),
        "---\na: 1\n---\nb: 2\n...\n",
        "%YAML 1.2\n---\na: 1\n...\n%YAML 1.2\n---\nb: 2\n",
        "# only a comment\n---\na: 1\n",
        "a: 1\n",
        "a: 1\n---\n",
        "--- # doc one\na: 1\n--- # doc two\nb: 2\n",
    ],
)
def test_split_and_join_is_identity(text: str) -> None:
    docs = ConfigDocuments.from_text(text)
    assert docs.text == text
    assert not docs.changed
    assert list(yaml.safe_load_all(docs.text)) == list(yaml.safe_load_all(text))


def test_document_count_and_access() -> None:
    docs = ConfigDocuments.from_text(MANIFEST)
    assert len(docs) == 3
    assert [d.get("kind") for d in docs] == ["ServiceAccount", "DaemonSet", "ConfigMap"]
    assert docs[0].get("metadata.name") == "datadog-agent"
    assert docs.documents[2].get(("data", "system-probe.yaml")).startswith("runtime_security")


def test_edit_one_document_changes_only_its_lines() -> None:
    docs = ConfigDocuments.from_text(MANIFEST)
    ds = docs[1]
    env = ds.get("spec.template.spec.containers")[0]["env"]
    ds.set_in(env[0], "value", "false")
    out = docs.text
    changed = [
        (a, b) for a, b in zip(MANIFEST.splitlines(), out.splitlines(), strict=True) if a != b
    ]
    assert changed == [('              value: "true"', '              value: "false"')]
    assert list(yaml.safe_load_all(out))[1]["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "DD_RUNTIME_SECURITY_CONFIG_ENABLED", "value": "false"}
    ]
    assert "@@ -18 +18 @@" in docs.diff(context=0)


def test_crlf_file_with_one_line_last_document() -> None:
    text = "a: 1\r\n---\r\nb: 2"
    docs = ConfigDocuments.from_text(text)
    docs[1].set("c.d", 3)
    assert docs.text == "a: 1\r\n---\r\nb: 2\r\nc:\r\n  d: 3"


def test_errors_name_the_file_line(tmp_path: Path) -> None:
    f = tmp_path / "manifest.yaml"
    f.write_text("a: 1\n---\nb: 1\nc: 2\nb: 3\n")
    with pytest.raises(ConfigParseError) as info:
        ConfigDocuments.load(f)
    assert info.value.line == 5  # the file's line, not the document's
    assert f"{f}:5" in str(info.value)


def test_single_editor_refuses_several_documents_and_points_to_load_all(tmp_path: Path) -> None:
    f = tmp_path / "manifest.yaml"
    f.write_text(MANIFEST)
    with pytest.raises(ConfigParseError, match="load_all"):
        ConfigEditor.load(f)
    assert len(ConfigEditor.load_all(f)) == 3


def test_save_whole_file(tmp_path: Path) -> None:
    f = tmp_path / "manifest.yaml"
    f.write_text(MANIFEST)
    f.chmod(0o600)
    docs = ConfigEditor.load_all(f)
    docs[1].set("spec.template.spec.containers", [])
    with pytest.raises(ConfigFileError, match="one of several"):
        docs[1].save()
    bak = docs.save()
    assert bak is not None
    assert bak.read_text() == MANIFEST
    assert f.read_text() == docs.text
    assert f.stat().st_mode & 0o777 == 0o600
    assert not docs.changed
    assert yaml.safe_load_all(f.read_text())
    # A second writer's change is not overwritten.
    f.write_text(MANIFEST)
    docs[0].set("metadata.name", "x")
    with pytest.raises(ConfigConflictError):
        docs.save()
    assert f.read_text() == MANIFEST


def test_repr_and_redacted_diff() -> None:
    text = "a: 1\n---\napi_key: 0123456789abcdef0123456789abcdef\n"
    docs = ConfigDocuments.from_text(text, path="/etc/x.yaml")
    docs[1].set("api_key", "fedcba9876543210fedcba9876543210")
    assert repr(docs) == "<ConfigDocuments path='/etc/x.yaml' documents=2 changed=True>"
    diff = docs.diff()
    assert "0123456789abcdef0123456789abcdef" not in diff
    assert "fedcba9876543210fedcba9876543210" not in diff
    assert "-api_key: ***************************bcdef" in diff
