"""`wpprotect doctor`: what it finds, what it skips and why, its JSON schema and exit status."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ux.wpux_support import make_config_dir, make_install_dir, run_cli, run_json, spawn_named
from wpprotect import plan_classifier_priority, plan_disable
from wpprotect.doctor import CHECK_STATUSES, Check, DoctorReport, diagnose, running_components

OFFLINE = ["--no-docker", "--no-kubernetes", "--no-tc"]


def _checks(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


def _assert_schema(doc: dict) -> None:
    assert list(doc) == ["schema", "wpprotect_version", "exit_status", "summary", "checks"]
    assert doc["schema"] == 1
    assert set(doc["summary"]) == set(CHECK_STATUSES)
    assert sum(doc["summary"].values()) == len(doc["checks"])
    for check in doc["checks"]:
        assert list(check) == ["name", "status", "detail", "fix", "data"]
        assert check["status"] in CHECK_STATUSES
        assert isinstance(check["detail"], str)
        assert check["detail"]
        if check["status"] == "problem":
            assert check["fix"], f"{check['name']}: a problem without a fix"


@pytest.fixture
def config_dir(tmp_path: Path, upstream: Path) -> Path:
    return make_config_dir(tmp_path / "etc", upstream)


@pytest.fixture
def install_dir(tmp_path: Path) -> Path:
    return make_install_dir(tmp_path / "opt")


@pytest.fixture
def fake_agent() -> Iterator[list[int]]:
    """Real processes named like the host agent's, as systemd would run them."""
    procs = [
        spawn_named("/opt/datadog-agent/embedded/bin/system-probe"),
        spawn_named("/opt/datadog-agent/embedded/bin/security-agent"),
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_nothing_installed_skips_everything_saying_why(tmp_path: Path) -> None:
    code, doc = run_json(
        [
            "doctor",
            "--install-dir",
            str(tmp_path / "none"),
            "--config-dir",
            str(tmp_path / "none"),
            *OFFLINE,
        ]
    )
    _assert_schema(doc)
    checks = _checks(doc)
    assert code == 0 == doc["exit_status"]
    assert doc["checks"][0]["name"] == "agents"
    assert checks["agents"]["status"] == "skipped"
    assert "no Datadog Agent found here" in checks["agents"]["detail"]
    assert checks["host.install"]["status"] == "skipped"
    assert "no Datadog Agent installed" in checks["host.install"]["detail"]
    assert checks["docker"]["detail"] == "not checked (--no-docker)"
    assert checks["kubernetes"]["detail"] == "not checked (--no-kubernetes)"
    assert checks["tc"]["detail"] == "not checked (--no-tc)"
    assert "--self-test" in checks["self-test"]["detail"]


def test_installed_but_not_running_is_a_problem_with_its_fix(
    config_dir: Path, install_dir: Path
) -> None:
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(config_dir), *OFFLINE]
    )
    _assert_schema(doc)
    checks = _checks(doc)
    assert checks["agents"]["data"]["found"] == [f"host install ({install_dir})"]
    assert checks["host.install"]["status"] == "ok"
    assert checks["host.version"]["data"]["version"] == "7.68.0"
    assert "system-probe runtime self-test" in checks["host.version"]["detail"]
    # The shipped examples set nothing (every key is commented out): the agent's defaults apply.
    for name, value in (
        ("cws_enabled", False),
        ("network_enabled", True),
        ("classifier_priority", 10),
    ):
        eff = checks[f"config.{name}"]["data"]["effective"]
        assert (eff["value"], eff["source"]) == (value, "default"), name
    if any(p.container is None for p in running_components()):
        pytest.skip("an agent process runs on this machine; the not-running case cannot be shown")
    assert checks["host.components"]["status"] == "problem"
    assert "systemctl restart datadog-agent" in checks["host.components"]["fix"]
    assert code == 1 == doc["exit_status"]


def test_running_agent_and_settings_with_their_source(
    tmp_path: Path, upstream: Path, install_dir: Path, fake_agent: list[int]
) -> None:
    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe="runtime_security_config:\n  enabled: true\n",
        security_agent="runtime_security_config:\n  enabled: true\n",
    )
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    )
    _assert_schema(doc)
    checks = _checks(doc)
    pids = {p["pid"] for p in checks["host.components"]["data"]["processes"]}
    assert set(fake_agent) <= pids
    assert checks["host.components"]["status"] == "ok"
    eff = checks["config.cws_enabled"]["data"]["effective"]
    assert eff["value"] is True
    assert eff["source"] == str(cfg / "system-probe.yaml")
    assert eff["key"] == "runtime_security_config.enabled"
    assert "host.cws-running" not in checks  # system-probe runs
    assert code == 0, [c for c in doc["checks"] if c["status"] != "ok"]


def test_cws_on_but_system_probe_not_running(
    tmp_path: Path, upstream: Path, install_dir: Path
) -> None:
    if any(p.component == "system-probe" and p.container is None for p in running_components()):
        pytest.skip("a system-probe runs on this machine")
    cfg = make_config_dir(
        tmp_path / "etc", upstream, system_probe="runtime_security_config:\n  enabled: true\n"
    )
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    )
    check = _checks(doc)["host.cws-running"]
    assert check["status"] == "problem"
    assert "journalctl -u datadog-agent-sysprobe" in check["fix"]
    assert code == 1


def test_fim_on_while_cws_off_is_a_problem_the_disable_plan_fixes(
    tmp_path: Path, upstream: Path, install_dir: Path
) -> None:
    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe="runtime_security_config:\n  enabled: false\n  fim_enabled: true\n",
    )
    argv = ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    code, doc = run_json(argv)
    check = _checks(doc)["config.fim_enabled"]
    assert check["status"] == "problem"
    assert check["data"]["effective"]["value"] is True
    assert "keeps Workload Protection running" in check["detail"]
    assert "--scope workload-protection" in check["fix"]
    assert _checks(doc)["config.host_dump_enabled"]["status"] == "ok"
    assert code == 1
    plan_disable(cfg).apply()
    _, doc = run_json(argv)
    assert _checks(doc)["config.fim_enabled"]["status"] == "ok"
    assert _checks(doc)["config.fim_enabled"]["data"]["effective"]["value"] is False


def test_deprecated_priority_key_wins_and_doctor_says_so(
    tmp_path: Path, upstream: Path, install_dir: Path
) -> None:
    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe=(
            "runtime_security_config:\n  network:\n    classifier_priority: 10\n"
            "event_monitoring_config:\n  network:\n    classifier_priority: 4\n"
        ),
    )
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    )
    check = _checks(doc)["config.classifier_priority"]
    assert check["status"] == "problem"
    assert check["data"]["effective"]["value"] == 10
    assert (
        check["data"]["effective"]["key"] == "runtime_security_config.network.classifier_priority"
    )
    assert "event_monitoring_config.network.classifier_priority: 4" in check["detail"]
    assert "runtime_security_config.network.classifier_priority" in check["detail"]
    assert f'wp.plan_classifier_priority("{cfg}", N)' in check["fix"]
    assert code == 1
    # The fix it names, applied, really fixes it.
    plan_classifier_priority(cfg, 4).apply()
    _, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    )
    check = _checks(doc)["config.classifier_priority"]
    assert check["status"] == "ok", check
    assert check["data"]["effective"]["value"] == 4


def test_files_that_disagree_on_cws_enabled(
    tmp_path: Path, upstream: Path, install_dir: Path
) -> None:
    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe="runtime_security_config:\n  enabled: true\n",
        security_agent="runtime_security_config:\n  enabled: false\n",
    )
    _, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    )
    check = _checks(doc)["config.cws_enabled"]
    assert check["status"] == "problem"
    assert "security-agent.yaml" in check["detail"]


def test_unparsable_config_is_a_problem_naming_the_file(tmp_path: Path, install_dir: Path) -> None:
    cfg = tmp_path / "etc"
    cfg.mkdir()
    (cfg / "system-probe.yaml").write_text("runtime_security_config:\n\tenabled: true\n")
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(cfg), *OFFLINE]
    )
    check = _checks(doc)["config"]
    assert check["status"] == "problem"
    assert "system-probe.yaml" in check["detail"]
    assert code == 1


def test_env_of_the_running_system_probe_is_a_setting(
    tmp_path: Path, upstream: Path, install_dir: Path
) -> None:
    cfg = make_config_dir(tmp_path / "etc", upstream)
    proc = spawn_named(
        "/opt/datadog-agent/embedded/bin/system-probe",
        env={"DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY": "3", "SECRET_TOKEN": "x"},
    )
    try:
        report = diagnose(
            install_dir=install_dir, config_dir=cfg, docker=False, kubernetes=False, tc=False
        )
    finally:
        proc.kill()
        proc.wait()
    check = report.get("config.classifier_priority")
    assert check is not None
    others = [
        p for p in running_components() if p.component == "system-probe" and p.container is None
    ]
    if len(others) > 1:
        pytest.skip("another system-probe runs here; which environment is read is not defined")
    assert check.data["effective"]["value"] == 3
    assert (
        check.data["effective"]["source"]
        == "env DD_RUNTIME_SECURITY_CONFIG_NETWORK_CLASSIFIER_PRIORITY"
    )
    assert "SECRET_TOKEN" not in json.dumps(report.to_dict())


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temp dir user nobody can read (pytest's own tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="wpux-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_non_root_says_why_it_skips(public_tmp: Path, upstream: Path) -> None:
    config_dir = make_config_dir(public_tmp / "etc", upstream)
    install_dir = make_install_dir(public_tmp / "opt")
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(config_dir)],
        user="nobody",
    )
    _assert_schema(doc)
    checks = _checks(doc)
    assert checks["tc"]["status"] == "skipped"
    assert "needs root" in checks["tc"]["detail"]
    assert "sudo wpprotect doctor" in checks["tc"]["detail"]
    assert checks["kubernetes"]["status"] == "skipped"
    assert "no kubeconfig" in checks["kubernetes"]["detail"]
    docker = checks["docker"]
    assert docker["status"] == "skipped"
    assert "docker.sock" in docker["detail"]
    assert code in (0, 1)


def test_a_daemon_that_never_answers_does_not_hang_doctor(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # ... and never answer
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        code, doc = run_json(
            [
                "doctor",
                "--install-dir",
                str(tmp_path),
                "--config-dir",
                str(tmp_path),
                "--no-kubernetes",
                "--no-tc",
                "--timeout",
                "1",
            ],
            env={"DOCKER_HOST": f"unix://{path}"},
            timeout=60,
        )
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    docker = _checks(doc)["docker"]
    assert docker["status"] == "error"
    assert "did not answer within 1 s" in docker["detail"]
    assert code == 2


def test_report_is_data() -> None:
    report = DoctorReport([Check("a", "ok", "fine"), Check("b", "problem", "broken", fix="do x")])
    assert report.exit_status == 1
    assert report.problems == (report.checks[1],)
    assert (
        repr(report)
        == "<DoctorReport 2 checks: 1 ok, 1 problem, 0 error, 0 skipped: 1 problem(s) need action>"
    )
    html = report._repr_html_()
    assert "<table>" in html
    assert "do x" in html
    assert DoctorReport([Check("c", "error", "timed out")]).exit_status == 2
    with pytest.raises(AttributeError):
        report.checks = ()  # type: ignore[misc]


def test_human_output_lists_each_check_and_fix(config_dir: Path, install_dir: Path) -> None:
    proc = run_cli(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(config_dir), *OFFLINE]
    )
    assert proc.returncode in (0, 1)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("ok") and "host.install" in line for line in lines)
    assert any(line.startswith("skipped") and "not checked (--no-tc)" in line for line in lines)
    assert lines[-1].endswith(("nothing to do", "need action"))
    assert proc.stderr == ""


def test_unreadable_dirs_are_skipped_not_crashed(tmp_path: Path, upstream: Path) -> None:
    config_dir = make_config_dir(tmp_path / "etc", upstream)  # under root-only pytest dirs
    install_dir = make_install_dir(tmp_path / "opt")
    code, doc = run_json(
        ["doctor", "--install-dir", str(install_dir), "--config-dir", str(config_dir), *OFFLINE],
        user="nobody",
    )
    _assert_schema(doc)
    check = _checks(doc)["host.install"]
    assert check["status"] == "skipped"
    assert "sudo wpprotect doctor" in check["detail"]
    assert code == 0


def test_files_may_disagree_from_7_77(tmp_path: Path, upstream: Path) -> None:
    """From 7.77 the security-agent runtime is unused: only system-probe's value counts."""
    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe="runtime_security_config:\n  enabled: true\n",
        security_agent="runtime_security_config:\n  enabled: false\n",
    )
    install = make_install_dir(tmp_path / "opt", version="7.78.1")
    _, doc = run_json(["doctor", "--install-dir", str(install), "--config-dir", str(cfg), *OFFLINE])
    check = _checks(doc)["config.cws_enabled"]
    assert check["status"] == "ok"
    assert "only system-probe's value matters" in check["detail"]


@pytest.mark.root
def test_tc_findings_are_a_problem_with_a_fix(tmp_path: Path) -> None:
    from wpprotect.tc._lab import Lab

    with Lab("wpux") as lab:
        scene = lab.scene_mimic_vendors()
        report = diagnose(install_dir=tmp_path, config_dir=tmp_path, docker=False, kubernetes=False)
    check = report.get("tc")
    assert check is not None
    assert check.status == "problem"
    assert check.fix
    found = {
        (f["code"], f["ifname"], f["direction"])
        for f in check.data["assessment"]["findings"]
        if f["netns"] == scene.netns
    }
    assert set(scene.expected) <= found  # other suites' namespaces may add their own
    assert report.exit_status == 1


def test_an_env_var_the_agent_reads_as_false_is_reported_ignored(
    tmp_path: Path, upstream: Path, install_dir: Path
) -> None:
    """`yes` is not a Go boolean: the agent reads the env var as false, which the winning YAML
    `true` ignores. Doctor compares the values the agent reads, not their spellings."""
    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe="runtime_security_config:\n  network:\n    enabled: true\n",
    )
    env = {"DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED": "yes"}
    report = diagnose(
        install_dir=install_dir, config_dir=cfg, docker=False, kubernetes=False, tc=False, env=env
    )
    check = report.get("config.network_enabled")
    assert check is not None
    assert check.status == "problem"
    assert "ignored because it loses: env DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED=yes" in (
        check.detail
    )
    (shadowed,) = check.data["effective"]["shadowed"]
    assert (shadowed["raw"], shadowed["value"]) == ("yes", False)
    env["DD_RUNTIME_SECURITY_CONFIG_NETWORK_ENABLED"] = "true"
    report = diagnose(
        install_dir=install_dir, config_dir=cfg, docker=False, kubernetes=False, tc=False, env=env
    )
    check = report.get("config.network_enabled")
    assert check is not None
    assert check.status == "ok", check


def test_the_tc_fix_names_the_config_dir_given(tmp_path: Path) -> None:
    """No kernel needed: the fix is built from an assessment."""
    from wpprotect.doctor._context import Context, Options
    from wpprotect.doctor._tc import _tc_fix
    from wpprotect.tc import Assessment

    options = Options(
        install_dir=tmp_path, config_dir=tmp_path / "etc", proc=Path("/proc"), docker=False,
        kubernetes=False, tc=False, self_test=False, timeout=1.0, self_test_timeout=1.0,
        kubeconfig=None, namespace=None, containers=(), env=None,
    )  # fmt: skip
    ctx = Context(options, host_present=True)
    assessment = Assessment(
        findings=(),
        classifier_priority=10,
        classifier_priority_source="caller",
        recommended_classifier_priority=4,
        fixable_by_priority=True,
    )
    assert f'wp.plan_classifier_priority("{tmp_path / "etc"}", 4)' in _tc_fix(ctx, assessment)


@pytest.mark.root
def test_tc_leftover_when_the_config_turns_network_detection_off(
    tmp_path: Path, upstream: Path
) -> None:
    """Network detection off in system-probe.yaml, Datadog's classifiers still attached (the
    agent was not restarted): doctor reports each as a leftover, with the restart as the fix."""
    from wpprotect.tc._lab import Lab

    cfg = make_config_dir(
        tmp_path / "etc",
        upstream,
        system_probe="runtime_security_config:\n  enabled: true\n  network:\n    enabled: false\n",
    )
    install = make_install_dir(tmp_path / "opt", version="7.59.0")
    with Lab("wpux") as lab:
        scene = lab.scene_mimic_vendors()
        report = diagnose(install_dir=install, config_dir=cfg, docker=False, kubernetes=False)
    check = report.get("tc")
    assert check is not None
    assert check.status == "problem"
    mine = [f for f in check.data["assessment"]["findings"] if f["netns"] == scene.netns]
    left = {
        (f["ifname"], f["direction"]) for f in mine if f["code"] == "datadog-classifier-leftover"
    }
    assert left == {
        (d, direction) for d in scene.devices.values() for direction in ("ingress", "egress")
    }
    assert "datadog-classifier-leftover" in check.detail
    assert all(
        "runtime_security_config.network.enabled" in f["message"]
        for f in mine
        if f["code"] == "datadog-classifier-leftover"
    )
    assert check.fix
    assert "datadog-classifier-leftover: restart the agent" in check.fix
    # Nothing is "missing" while detection is off.
    assert not [f for f in mine if f["code"] == "datadog-classifier-missing"]


@pytest.mark.root
def test_tc_netns_held_only_by_an_agent_descriptor(tmp_path: Path) -> None:
    """A namespace kept alive only by a process named system-probe: doctor's TC check reports
    netns-held-by-agent, with the agent restart as its fix."""
    from tests.tc_scan._scene import Scene
    from tests.tc_scan.test_tc_scan_netns import _holder_process, _kill_creator, _orphan

    scene = Scene()
    try:
        path, ino = _orphan(scene)
        holder = _holder_process(path, "system-probe")
        scene.procs.insert(0, holder)
        _kill_creator(scene)
        report = diagnose(install_dir=tmp_path, config_dir=tmp_path, docker=False, kubernetes=False)
    finally:
        scene.close()
    check = report.get("tc")
    assert check is not None
    assert check.status == "problem"
    held = [
        f
        for f in check.data["assessment"]["findings"]
        if f["code"] == "netns-held-by-agent" and f"pid {holder.pid} (system-probe)" in f["message"]
    ]
    assert len(held) == 1
    assert f":{ino})" in held[0]["message"]
    assert check.fix
    assert "netns-held-by-agent: restart the agent process" in check.fix
