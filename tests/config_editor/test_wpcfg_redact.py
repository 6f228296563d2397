"""Secrets never appear in diffs, reprs or errors; the shared redaction helpers."""

from __future__ import annotations

import difflib

import pytest

from wpprotect._redact import MASK, is_secret_key, redact_text
from wpprotect.config._editor import ConfigEditor

API = "0123456789abcdef0123456789abcdef"  # 32 hex: an API key
APP = "0123456789abcdef0123456789abcdef01234567"  # 40 hex: an APP key
API2 = "fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "app_key",
        "application_key",
        "DD_API_KEY",
        "DD_APP_KEY",
        "DD_CLUSTER_AGENT_AUTH_TOKEN",
        "auth_token",
        "token",
        "password",
        "db_pass",
        "PGPASSWORD",
        "pwd",
        "community_string",
        "authKey",
        "privKey",
        "Authorization",
        "client_secret",
        "private_key",
        "x-api-key",
        "X-Dd-Api-Key",
        "jwt",
        "cookie",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["enabled", "site", "socket", "classifier_priority", "key", "name", "value", "tokenizer_mode"],
)
def test_non_secret_keys(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "must_not_contain", "must_contain"),
    [
        (f"api_key: {API}\n", API, "bcdef"),
        (f"  app_key: '{APP}'\n", APP, "34567"),
        ("password: hunter2\n", "hunter2", MASK),
        ("cluster_agent:\n  token: s3cr3tvalue\n", "s3cr3tvalue", MASK),
        (f"- name: DD_API_KEY\n  value: {API}\n", API, "value: "),
        ('env:\n  - name: "DD_APP_KEY"\n    value: "plain-not-hex"\n', "plain-not-hex", MASK),
        ("url: https://user:pa55word@example.com/x\n", "pa55word", f"user:{MASK}@"),
        ("Authorization: Bearer abc.def.ghi\n", "abc.def.ghi", MASK),
        (f"header: Bearer {'a' * 64}\n", "a" * 64, "aaaaa"),
        ("cmd: DD_API_KEY=abcdef123 agent run\n", "abcdef123", f"DD_API_KEY={MASK}"),
        (f"note: the key is {API} ok\n", API, "bcdef"),
        ("rc: DDRCM_ABCDEF1234567890\n", "DDRCM_ABCDEF1234567890", MASK),
        (
            "tls: |\n  -----BEGIN PRIVATE KEY-----\n  MIIEvQIBADANBg\n"
            "  -----END PRIVATE KEY-----\nx: 1\n",
            "MIIEvQIBADANBg",
            "x: 1",
        ),
        ("api_key: |\n  multi\n  line\nnext: 1\n", "multi", "next: 1"),
        ("api_key:\n  nested_value_here\nnext: 1\n", "nested_value_here", "next: 1"),
        ("community_strings:\n  - public1\n  - private2\nz: 1\n", "private2", "z: 1"),
    ],
)
def test_redact_text(text: str, must_not_contain: str, must_contain: str) -> None:
    out = redact_text(text)
    assert must_not_contain not in out
    assert must_contain in out
    assert out.count("\n") == text.count("\n")


def test_redact_leaves_ordinary_config_alone() -> None:
    text = (
        "runtime_security_config:\n  enabled: true\n  socket: /opt/datadog-agent/run/x.sock\n"
        "  network:\n    classifier_priority: 10\nsite: datadoghq.com\n"
    )
    assert redact_text(text) == text


def test_redact_a_unified_diff_per_side() -> None:
    diff = (
        "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n"
        f"-api_key: {API}\n+api_key: {API2}\n"
        " token: |\n  s3cret-line\n"
    )
    out = redact_text(diff)
    assert API not in out
    assert API2 not in out
    assert "s3cret-line" not in out
    assert out.splitlines()[:3] == diff.splitlines()[:3]


def test_diff_redacts_both_sides_consistently() -> None:
    text = f"api_key: {API}\nsite: datadoghq.com\nrsc:\n  enabled: true\n"
    ed = ConfigEditor.from_text(text, path="/etc/datadog-agent/datadog.yaml")
    ed.set("api_key", API2)
    ed.set("rsc.enabled", False)
    diff = ed.diff()
    assert API not in diff
    assert API2 not in diff
    assert API[-5:] in diff  # last 5 kept on each side, as the agent's scrubber does
    assert API2[-5:] in diff
    assert "-  enabled: true" in diff
    assert "+  enabled: false" in diff
    # The real text still has the real value: redaction is for display only.
    assert f"api_key: {API2}" in ed.text


def test_diff_of_env_list_secret() -> None:
    text = 'env:\n  - name: DD_API_KEY\n    value: "old-secret"\n'
    ed = ConfigEditor.from_text(text)
    ed.set_in(ed.get("env")[0], "value", "new-secret")
    diff = ed.diff()
    assert "old-secret" not in diff
    assert "new-secret" not in diff
    assert diff.count(MASK) == 2


def test_repr_shows_no_content() -> None:
    ed = ConfigEditor.from_text(f"api_key: {API}\nx: 1\n", path="/etc/datadog-agent/datadog.yaml")
    assert repr(ed) == "<ConfigEditor path='/etc/datadog-agent/datadog.yaml' changed=False>"
    ed.set("x", 2)
    assert repr(ed) == "<ConfigEditor path='/etc/datadog-agent/datadog.yaml' changed=True>"
    assert API not in repr(ed)
    assert repr(ConfigEditor.from_text("a: 1\n")) == "<ConfigEditor path=None changed=False>"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("x: 1\ny: 2\n", "x: 1\ny: 3\n"),
        ("x: 1\ny: 2", "x: 1\ny: 3"),
        ("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "a\nB\nc\nd\ne\nf\ng\nh\nI\nj\nk\n"),
        ("", "x: 1\n"),
        ("x: 1\n", ""),
    ],
)
def test_diff_format_is_unified_diff(a: str, b: str) -> None:
    from wpprotect.config._editor import _unified_diff

    al, bl = a.splitlines(keepends=True), b.splitlines(keepends=True)
    expected = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in difflib.unified_diff(al, bl, "a/f", "b/f", n=1)
    )
    assert _unified_diff(al, bl, al, bl, names=("a/f", "b/f"), context=1) == expected
