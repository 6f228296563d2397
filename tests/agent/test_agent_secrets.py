"""The flare secret scan: each rule, scrubbed values ignored, secrets never kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent_sim import flare_zip_bytes
from wpprotect.agent._secrets import redact, scan_text, scan_zip

GCP_LINE = (
    '{"type": "service_account", '
    '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqh\\n"}'
)

CASES = [
    ("aws-access-key", "key=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws-access-key", "sts ASIAY34FZKBOKMUTVV7A used", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws-secret-key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("gcp-service-account-key", GCP_LINE, "MIIEvQIBADANBgkqh"),
    ("private-key", "-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----"),
    ("github-token", "GITHUB_TOKEN ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghij"),
    ("github-token", "pat github_pat_11ABCDEFG0123456789_abcdefghijKLMNOP", "github_pat_11"),
    ("slack-token", "slack xoxb-123456789012-1234567890123-abcdefABCDEF", "xoxb-1234567"),
    (
        "slack-webhook",
        "url https://hooks.slack.com/services/T0000/B1111/XXXXXXXXXXXXXXXXXXXXXXXX",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
    ),
    ("bearer-token", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "eyJhbGciOiJIUzI1NiJ9"),
    ("uri-password", "dsn: mysql://root:hunter2hunter2@db:3306/x", "hunter2hunter2"),
    ("password", "  password: Sup3rS3cret!", "Sup3rS3cret!"),
    ("token", "  auth_token: 0a1b2c3d4e5f6a7b8c9d", "0a1b2c3d4e5f6a7b8c9d"),
    ("api-key", "api_key: 0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    ("api-key", "- 0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    (
        "app-key",
        "app_key: 0123456789abcdef0123456789abcdef01234567",
        "0123456789abcdef0123456789abcdef01234567",
    ),
    ("remote-config-key", "DDRCM_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "DDRCM_ABCDEFGHIJKLMN"),
    ("snmp-secret", "    community_string: public-ro-2024", "public-ro-2024"),
]


@pytest.mark.parametrize(("kind", "line", "secret"), CASES)
def test_each_rule(kind: str, line: str, secret: str) -> None:
    findings = list(scan_text("f.log", ["clean line", line]))
    assert [f.kind for f in findings][:1] == [kind]
    assert findings[0].line == 2
    assert findings[0].file == "f.log"
    for f in findings:
        for text in (repr(f), str(f), str(f.to_dict()), f._repr_html_(), f.redacted):
            assert secret not in text


@pytest.mark.parametrize(
    "line",
    [
        'api_key: "********"',
        "  - DD_API_KEY=***************************abcde",
        "dsn: mysql://root:********@db:3306/x",
        "Authorization: Bearer ********",
        "password: ********",
        "container 3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f",  # 64 hex
        "self test succeeded in 42ms",
        "token expired, renewing",
    ],
)
def test_scrubbed_or_harmless_lines_are_not_reported(line: str) -> None:
    assert list(scan_text("f", [line])) == []


def test_one_value_reported_once_per_line() -> None:
    findings = list(scan_text("f", ["api_key: 0123456789abcdef0123456789abcdef"]))
    assert len(findings) == 1


def test_redaction() -> None:
    assert redact("AKIAIOSFODNN7EXAMPLE") == "********MPLE"
    assert redact("short") == "********"
    assert redact("fifteen-chars!!") == "********"


def test_clean_simulator_flare_has_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "f.zip"
    path.write_bytes(flare_zip_bytes())
    assert scan_zip(path) == []
