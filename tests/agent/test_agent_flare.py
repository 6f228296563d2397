"""collect_flare on a host install of the simulated agent: command per version, prompts, copy-out,
review (file list, secret scan) and validation."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.agent.conftest import VERSIONS, SimFactory
from wpprotect.agent import Flare, collect_flare, parse_flare_output
from wpprotect.errors import (
    FlareError,
    FlareUploadError,
    InvalidArgumentError,
    UnsupportedAgentError,
)
from wpprotect.testing import FakeCall, FakePlatform

# Fake credentials planted in a flare, as a scrubber miss would leave them.
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GH_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
URI_PASS = "s3cr3t-Pa55word"
API_KEY_HEX = "0123456789abcdef0123456789abcdef"
PEM = "-----BEGIN RSA PRIVATE KEY-----"

EXPECTED_FILES = {
    "security-agent-status.log",
    "logs/security-agent.log",
    "etc/datadog.yaml",
    "etc/system-probe.yaml",
    "etc/security-agent.yaml",
    "runtime-security.d/default.policy",
    "envvars.log",
    "permissions.log",
    "flare_creation.log",
}


@pytest.mark.parametrize("version", VERSIONS)
def test_flare_is_collected_and_copied_out(
    sim_host: SimFactory, version: str, tmp_path: Path
) -> None:
    sim, host = sim_host(version=version)
    dest = tmp_path / "review"
    fl = host.flare(case_id="1234567", email="ops@example.com", dest=dest)
    assert isinstance(fl, Flare)
    assert fl.archive is not None
    assert fl.archive.parent == dest
    assert fl.archive.read_bytes() == Path(fl.remote_path).read_bytes()
    assert (fl.archive.stat().st_mode & 0o777) == 0o600
    assert Path(fl.remote_path).parent == sim.tmp_dir
    assert fl.case_id == "1234567"
    assert fl.email == "ops@example.com"
    assert not fl.sent
    assert fl.hostname == "sim-host"
    names = {n.split("/", 1)[1] for n in fl.files}
    if version == "7.78.0":
        # 7.77+: the core agent's flare (security-agent flare cannot run without its process).
        assert fl.component == "agent"
        assert fl.command[0].endswith("bin/agent/agent")
    else:
        assert fl.component == "security-agent"
        assert fl.command[0].endswith("embedded/bin/security-agent")
        assert names >= EXPECTED_FILES
    assert list(fl.command[1:]) == ["flare", "1234567", "-e", "ops@example.com"]
    assert "Aborting. (You can still use " in fl.output
    assert fl.scan_secrets() == []
    d = fl.to_dict()
    assert d["sent"] is False
    assert d["sha256"] == fl.sha256
    assert d["files"] == list(fl.files)


def test_without_email_the_prompt_is_answered_empty(sim_host: SimFactory, tmp_path: Path) -> None:
    sim, host = sim_host(version="7.59.0")
    fl = collect_flare(host, dest=tmp_path)
    assert fl.email is None
    assert fl.case_id is None
    assert fl.command[1:] == ("flare",)
    assert "Please enter your email: " in fl.output
    assert sim.calls()[-1].endswith("security-agent flare")


def test_send_through_the_agent(sim_host: SimFactory, tmp_path: Path) -> None:
    _, host = sim_host(version="7.59.0")
    fl = host.flare(case_id="42", email="ops@example.com", send=True, dest=tmp_path)
    assert fl.sent
    assert fl.case_id == "42"
    assert fl.command[-1] == "-s"
    assert "internal case id is 42" in fl.output
    assert fl.archive is not None


def test_send_through_the_agent_new_case(sim_host: SimFactory, tmp_path: Path) -> None:
    _, host = sim_host(version="7.59.0", new_case_id=98765)
    fl = host.flare(email="ops@example.com", send=True, dest=tmp_path)
    assert fl.sent
    assert fl.case_id == "98765"


def test_send_through_the_agent_refused(sim_host: SimFactory) -> None:
    _, host = sim_host(version="7.59.0", upload="forbidden")
    with pytest.raises(FlareUploadError, match="HTTP 403 Forbidden"):
        host.flare(email="ops@example.com", send=True)


def test_7_78_falls_back_to_security_agent_local_build(
    sim_host: SimFactory, tmp_path: Path
) -> None:
    # Core agent missing: security-agent flare, IPC failure, local build (allowed here).
    sim, host = sim_host(version="7.78.0", flare_local="ok", security_agent_running=0)
    sim.agent.unlink()
    fl = host.flare(email="ops@example.com", dest=tmp_path)
    assert fl.component == "security-agent"
    assert "Initiating flare locally, some logs will be missing." in fl.output
    assert "sim-host/local" in fl.files


def test_security_agent_refusal_falls_back_to_core_agent(
    sim_host: SimFactory, tmp_path: Path
) -> None:
    # An old agent whose security-agent is down and cannot build locally: agent flare instead.
    sim, host = sim_host(version="7.59.0", security_agent_running=0, flare_local="fail")
    fl = host.flare(email="ops@example.com", dest=tmp_path)
    assert fl.component == "agent"
    assert [c.split()[0:2] for c in sim.calls()[-2:]] == [
        ["security-agent", "flare"],
        ["agent", "flare"],
    ]


def test_no_archive_from_any_command(sim_host: SimFactory) -> None:
    # security-agent down, and its local build fails
    sim, host = sim_host(version="7.78.0", security_agent_running=0, flare_local="fail")
    sim.agent.unlink()
    with pytest.raises(FlareError, match="produced no flare archive") as info:
        host.flare(email="ops@example.com")
    assert "unable to read the security-agent runtime configuration" in str(info.value)


def test_no_flare_command_at_all(sim_host: SimFactory) -> None:
    sim, host = sim_host(version="7.59.0")
    sim.agent.unlink()
    sim.security_agent.unlink()
    with pytest.raises(UnsupportedAgentError, match="no flare command answered"):
        host.flare(email="ops@example.com")


@pytest.mark.parametrize(
    "case_id",
    ["1; rm -rf /", "-s", "12a", "", " 12", "1" * 21, "$(id)", "12\n34", 1.5, True],
)
def test_bad_case_ids_are_refused_before_anything_runs(
    sim_host: SimFactory, case_id: object
) -> None:
    sim, host = sim_host(version="7.59.0")
    with pytest.raises(InvalidArgumentError):
        collect_flare(host, case_id=case_id)  # type: ignore[arg-type]
    assert sim.calls() == []


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "-s@example.com",
        "a@b",
        "a b@example.com",
        "ops@example.com; rm -rf /",
        "ops@example.com\n-s",
        "$(id)@example.com",
        "`id`@example.com",
        "a@" + "x" * 300 + ".com",
    ],
)
def test_bad_emails_are_refused_before_anything_runs(sim_host: SimFactory, email: str) -> None:
    sim, host = sim_host(version="7.59.0")
    with pytest.raises(InvalidArgumentError):
        host.flare(email=email)
    assert sim.calls() == []


def test_numeric_case_id_is_accepted(sim_host: SimFactory, tmp_path: Path) -> None:
    _, host = sim_host(version="7.50.3")
    fl = host.flare(case_id=555, email="first.last+cws@sub.example.co.uk", dest=tmp_path)
    assert fl.case_id == "555"


def test_secret_scan_finds_misses_and_never_keeps_the_secret(
    sim_host: SimFactory, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    planted = {
        "logs/process-agent.log": (
            "2025-01-01 | INFO | started\n"
            f"2025-01-01 | DEBUG | using aws key {AWS_KEY} for s3\n"
            f"2025-01-01 | DEBUG | git token {GH_TOKEN}\n"
        ),
        "etc/conf.d/postgres.yaml": (
            f'instances:\n  - dsn: postgres://dd:{URI_PASS}@db:5432/x\n    password: "********"\n'
        ),
        "envvars.log": f"  - DD_API_KEY={API_KEY_HEX}\n  - DD_SITE=datadoghq.com\n",
        "etc/key.pem": f"{PEM}\nMIIEow\n-----END RSA PRIVATE KEY-----\n",
    }
    caplog.set_level(logging.DEBUG)
    _, host = sim_host(version="7.59.0", flare_extra_files=planted)
    fl = host.flare(email="ops@example.com", dest=tmp_path)
    findings = fl.scan_secrets()
    got = {(f.file.split("/", 1)[1], f.line, f.kind) for f in findings}
    assert ("logs/process-agent.log", 2, "aws-access-key") in got
    assert ("logs/process-agent.log", 3, "github-token") in got
    assert ("etc/conf.d/postgres.yaml", 2, "uri-password") in got
    assert ("envvars.log", 1, "api-key") in got
    assert ("etc/key.pem", 1, "private-key") in got
    # the already-scrubbed password on line 3 is not reported
    assert ("etc/conf.d/postgres.yaml", 3, "password") not in got
    aws = next(f for f in findings if f.kind == "aws-access-key")
    assert aws.redacted == "********" + AWS_KEY[-4:]
    rendered = [repr(findings), str(findings), *(str(f) for f in findings)]
    rendered += [str(f.to_dict()) for f in findings] + [f._repr_html_() for f in findings]
    rendered += [repr(fl), str(fl.to_dict()), fl._repr_html_(), caplog.text]
    for text in rendered:
        for secret in (AWS_KEY, GH_TOKEN, URI_PASS, API_KEY_HEX):
            assert secret not in text


def test_tampered_archive_cannot_be_sent(sim_host: SimFactory, tmp_path: Path) -> None:
    _, host = sim_host(version="7.59.0")
    fl = host.flare(email="ops@example.com", dest=tmp_path)
    assert fl.archive is not None
    with zipfile.ZipFile(fl.archive, "a") as zf:
        zf.writestr("sim-host/extra.log", "added after review\n")
    with pytest.raises(FlareError, match="changed since it was reviewed"):
        fl.send("0123456789abcdef0123456789abcdef", url="http://127.0.0.1:9")


def test_copy_out_failure_is_a_flare_error(tmp_path: Path) -> None:
    fake = FakePlatform.healthy(version="7.59.0")
    fake.files.clear()  # the agent printed a path that cannot be copied
    with pytest.raises(FlareError, match="could not copy the flare"):
        fake.flare(email="ops@example.com", dest=tmp_path)


def test_dest_may_name_the_zip(sim_host: SimFactory, tmp_path: Path) -> None:
    _, host = sim_host(version="7.59.0")
    fl = host.flare(email="ops@example.com", dest=tmp_path / "sub" / "mine.zip")
    assert fl.archive == tmp_path / "sub" / "mine.zip"
    assert fl.archive.is_file()


def test_parse_flare_output() -> None:
    out = (
        "Asking the Security Agent to build the flare archive.\n"
        "\x1b[33m/tmp/datadog-agent-2025-05-29T10-32-30Z-info.zip\x1b[0m is going to be uploaded"
        " to Datadog\nAre you sure you want to upload a flare? [y/N]\n"
        "Your logs were successfully uploaded. For future reference, your internal case id is 77\n"
    )
    assert parse_flare_output(out) == (
        "/tmp/datadog-agent-2025-05-29T10-32-30Z-info.zip",
        "77",
        None,
    )
    assert parse_flare_output("", "Error: EOF\n") == (None, None, "EOF")


def test_simulator_prompts_as_the_agent_does(sim_host: SimFactory) -> None:
    """The simulator itself: email prompt via Println, y/Y only, abort keeps the archive."""
    sim, _ = sim_host(version="7.59.0")
    run = [str(sim.security_agent), "flare", "123"]
    proc = subprocess.run(run, input=b"me@example.com\nyes\n", capture_output=True, check=False)
    lines = proc.stdout.decode().splitlines()
    assert lines[0] == "Please enter your email: "
    assert lines[1] == "Asking the Security Agent to build the flare archive."
    assert lines[2].endswith("-info.zip is going to be uploaded to Datadog")
    assert lines[3] == "Are you sure you want to upload a flare? [y/N]"
    assert lines[4].startswith("Aborting. (You can still use ")  # "yes" is not y/Y
    assert proc.returncode == 0
    proc = subprocess.run(run, input=b"me@example.com\nY\n", capture_output=True, check=False)
    assert proc.stdout.decode().splitlines()[-1] == (
        "Your logs were successfully uploaded. For future reference, your internal case id is 123"
    )
    # EOF at the email prompt is an empty answer; EOF at the confirmation is "no".
    proc = subprocess.run(run, input=b"", capture_output=True, check=False)
    out = proc.stdout.decode()
    assert "Error reading email" not in out
    assert out.splitlines()[-1].startswith("Aborting. (You can still use ")
    assert proc.returncode == 0
    # No argument-count check: two case ids are not refused.
    proc = subprocess.run([*run, "456"], input=b"\nn\n", capture_output=True, check=False)
    assert "accepts at most" not in proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0


_LEGACY_NAME = re.compile(r"datadog-agent-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.zip")


def test_older_agent_archive_name_is_found(sim_host: SimFactory, tmp_path: Path) -> None:
    # Older agents (pkg/flare) named the archive datadog-agent-2022-03-14-09-30-12.zip.
    sim, host = sim_host(version="7.40.0")
    fl = host.flare(email="ops@example.com", dest=tmp_path / "review")
    assert _LEGACY_NAME.fullmatch(Path(fl.remote_path).name), fl.remote_path
    assert Path(fl.remote_path).parent == sim.tmp_dir
    assert fl.archive is not None
    assert fl.archive.name == Path(fl.remote_path).name
    assert fl.archive.read_bytes() == Path(fl.remote_path).read_bytes()
    assert fl.hostname == "sim-host"


def _fake_printing(remote: str) -> FakePlatform:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("h/flare_creation.log", "x\n")

    def flare(call: FakeCall) -> tuple[int, str, str] | None:
        if call.argv[:2] != ("security-agent", "flare"):
            return None
        return (
            0,
            f"{remote} is going to be uploaded to Datadog\nAborting. (You can still use "
            f"{remote})\n",
            "",
        )

    return FakePlatform(handler=flare, files={remote: buf.getvalue()})


@pytest.mark.parametrize(
    "name",
    [
        "datadog-agent-2022-03-14-09-30-12.zip",
        "datadog-agent-2025-05-29T10-32-30Z-info.zip",
        "datadog-agent-2025-05-29T10-32-30Z.zip",
        # neither known form: the printed path is the authority
        "datadog-agent-host-1.zip",
    ],
)
def test_the_printed_path_is_the_authority(name: str, tmp_path: Path) -> None:
    fake = _fake_printing(f"/var/tmp/{name}")
    fl = collect_flare(fake, email="ops@example.com", dest=tmp_path)
    assert fl.remote_path == f"/var/tmp/{name}"
    assert fl.archive == tmp_path / name
    assert fl.files == ("h/flare_creation.log",)


@pytest.mark.parametrize("name", [".hidden.zip", "-rf.zip"])
def test_an_unsafe_archive_name_is_refused(name: str, tmp_path: Path) -> None:
    fake = _fake_printing(f"/tmp/{name}")
    with pytest.raises(FlareError, match=r"not a plain \.zip file name"):
        collect_flare(fake, email="ops@example.com", dest=tmp_path)
    assert list(tmp_path.iterdir()) == []
