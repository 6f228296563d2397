"""wpprotect.testing.FakePlatform: scripted responses, calls recorded, in-memory files, plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from wpprotect.errors import ExecError, ExecTimeoutError, InvalidArgumentError
from wpprotect.platforms import ExecResult, Platform
from wpprotect.testing import FakeCall, FakePlatform


def test_it_is_a_platform() -> None:
    fake = FakePlatform()
    assert isinstance(fake, Platform)
    assert fake.kind == "fake"
    assert fake.agents() == [fake]


def test_response_forms() -> None:
    fake = FakePlatform(
        responses={
            "a b": "out\n",
            ("c",): (3, "o", "e"),
            ("d",): ExecResult(("d",), 7, "x"),
            ("boom",): ExecTimeoutError("hung"),
        }
    )
    fake.respond(["f"], stdout="kw", exit_code=2)
    fake.respond(["g"], lambda call: f"stdin was {call.stdin!r}")
    assert fake.exec(["a", "b"]).stdout == "out\n"
    r = fake.exec(["c"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "o", "e")
    assert fake.exec(["d"]).exit_code == 7
    assert (fake.exec(["f"]).exit_code, fake.exec(["f"]).stdout) == (2, "kw")
    assert fake.exec(["g"], stdin=b"n\n").stdout == "stdin was b'n\\n'"
    with pytest.raises(ExecTimeoutError):
        fake.exec(["boom"])
    missing = fake.exec(["nope"], component="system-probe", timeout=5)
    assert missing.exit_code == 127
    assert fake.calls[-1] == FakeCall(("nope",), "system-probe", None, 5)
    with pytest.raises(InvalidArgumentError):
        fake.exec("a b")  # type: ignore[arg-type]


def test_handler_fallback() -> None:
    fake = FakePlatform(handler=lambda call: "h" if call.argv[0] == "x" else None)
    assert fake.exec(["x"]).stdout == "h"
    assert fake.exec(["y"]).exit_code == 127


def test_copy_out(tmp_path: Path) -> None:
    fake = FakePlatform(files={"/tmp/f.zip": b"data"})
    assert fake.copy_out("/tmp/f.zip", tmp_path / "f.zip").read_bytes() == b"data"
    with pytest.raises(ExecError, match="no such file"):
        fake.copy_out("/tmp/other", tmp_path / "o")


def test_healthy_agent_runs_every_operation(tmp_path: Path) -> None:
    fake = FakePlatform.healthy(version="7.50.3", target="fake:n1")
    assert str(fake.version()) == "7.50.3"
    res = fake.self_test()
    assert res.ok
    assert res.component == "security-agent"
    assert res.confirmed_by_status is True
    fl = fake.flare(case_id="7", email="ops@example.com", dest=tmp_path)
    assert fl.archive == tmp_path / "datadog-agent-2025-01-01T00-00-00Z-info.zip"
    assert fl.files == ("fake-host/flare_creation.log",)
    assert fl.hostname == "fake-host"
    sent = fake.flare(case_id="7", email="ops@example.com", send=True, dest=tmp_path / "s")
    assert sent.sent
    assert sent.case_id == "7"


def test_healthy_flare_with_a_planted_secret(tmp_path: Path) -> None:
    fake = FakePlatform.healthy(flare_files={"logs/x.log": "key AKIAIOSFODNN7EXAMPLE\n"})
    findings = fake.flare(dest=tmp_path).scan_secrets()
    assert [(f.file, f.line, f.kind) for f in findings] == [
        ("fake-host/logs/x.log", 1, "aws-access-key")
    ]


def test_settings_plans_are_recorded() -> None:
    fake = FakePlatform()
    plan = fake.disable("network")
    assert "+network_enabled: False" in plan.diff()
    plan.apply()
    assert list(fake.settings.values()) == [False]
    assert fake.disable("network").is_satisfied()
    plan.undo()
    assert fake.settings == {}
    prio = fake.set_classifier_priority(4)
    prio.apply()
    assert 4 in fake.settings.values()
