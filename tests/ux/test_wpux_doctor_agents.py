"""`wpprotect doctor` against agents that answer: the simulated agent CLI in a real Docker
container and in a host layout (tests/agent_sim), including `--self-test`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ux.wpux_support import make_config_dir, run_json, spawn_named


def _checks(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, str]]:
    from tests.images import build_agent_image, cleanup, remove_images

    try:
        yield {
            "ok": build_agent_image("7.68.0", tag_prefix="wpux"),
            "failed": build_agent_image(
                "7.68.0",
                tag_prefix="wpux",
                sim_env={"WPSIM_SELFTEST_FAILED": "datadog_agent_cws_self_test_rule_chmod"},
            ),
        }
    finally:
        cleanup("wpux")
        remove_images("wpux")


@pytest.mark.docker
def test_doctor_reads_a_container_agent_and_runs_its_self_test(
    images: dict[str, str], tmp_path: Path
) -> None:
    from tests.images import container

    env = {"DD_RUNTIME_SECURITY_CONFIG_ENABLED": "true", "DD_API_KEY": "0" * 32}
    with container(images["ok"], "wpux-doctor-ok", env=env) as name:
        code, doc = run_json(
            ["doctor", "--container", name, "--self-test", "--no-kubernetes", "--no-tc",
             "--install-dir", str(tmp_path), "--config-dir", str(tmp_path)],
            timeout=120,
        )  # fmt: skip
    checks = _checks(doc)
    target = f"docker:{name}"
    assert checks["docker"]["status"] == "ok"
    assert checks["docker"]["data"]["targets"] == [target]
    assert checks[f"version:{target}"]["detail"] == "Datadog Agent 7.68.0"
    cws = checks[f"config.cws_enabled:{target}"]["data"]["effective"]
    assert (cws["value"], cws["source"]) == (True, "env DD_RUNTIME_SECURITY_CONFIG_ENABLED")
    prio = checks[f"config.classifier_priority:{target}"]["data"]["effective"]
    assert (prio["value"], prio["source"]) == (10, "default")
    test = checks[f"self-test:{target}"]
    assert test["status"] == "ok", test
    assert test["data"]["result"]["component"] == "system-probe"  # 7.68: no security-agent runtime
    assert "0" * 32 not in str(doc)  # env values other than the settings are never shown
    assert code == 0, [c for c in doc["checks"] if c["status"] not in ("ok", "skipped")]


@pytest.mark.docker
def test_a_failed_self_test_is_a_problem_with_a_fix(images: dict[str, str], tmp_path: Path) -> None:
    from tests.images import container

    with container(images["failed"], "wpux-doctor-failed") as name:
        code, doc = run_json(
            ["doctor", "--container", name, "--self-test", "--no-kubernetes", "--no-tc",
             "--install-dir", str(tmp_path), "--config-dir", str(tmp_path)],
            timeout=120,
        )  # fmt: skip
    test = _checks(doc)[f"self-test:docker:{name}"]
    assert test["status"] == "problem"
    assert "datadog_agent_cws_self_test_rule_chmod" in test["detail"]
    assert "wpprotect flare --platform docker" in test["fix"]
    assert code == 1


@pytest.mark.docker
def test_a_container_that_does_not_exist_is_an_error_not_a_crash(tmp_path: Path) -> None:
    code, doc = run_json(
        ["doctor", "--container", "wpux-no-such-container", "--no-kubernetes", "--no-tc",
         "--install-dir", str(tmp_path), "--config-dir", str(tmp_path)],
    )  # fmt: skip
    checks = _checks(doc)
    version = checks["version:docker:wpux-no-such-container"]
    assert version["status"] == "error"
    assert code == 2


def test_host_install_version_and_self_test(tmp_path: Path, upstream: Path) -> None:
    """A host layout of the simulator: the version comes from `agent version` (no manifest)."""
    from tests.agent_sim import install_host

    sim = install_host(tmp_path / "opt", version="7.59.0", selftest="ok")
    on = "runtime_security_config:\n  enabled: true\n"
    cfg = make_config_dir(tmp_path / "etc", upstream, system_probe=on, security_agent=on)
    probe = spawn_named(str(sim.system_probe))
    try:
        code, doc = run_json(
            ["doctor", "--install-dir", str(tmp_path / "opt"), "--config-dir", str(cfg),
             "--self-test", "--no-docker", "--no-kubernetes", "--no-tc"],
            timeout=120,
        )  # fmt: skip
    finally:
        probe.kill()
        probe.wait()
    checks = _checks(doc)
    version = checks["host.version"]
    assert version["data"] == {"version": "7.59.0", "source": f"{sim.agent} version"}
    assert "system-probe runtime self-test" in version["detail"]  # from 7.56
    tests = [c for name, c in checks.items() if name.startswith("self-test:host:")]
    assert len(tests) == 1
    assert tests[0]["status"] == "ok", tests[0]
    assert "runtime self-test" in " ".join(sim.calls())
    assert code == 0, [c for c in doc["checks"] if c["status"] not in ("ok", "skipped")]
