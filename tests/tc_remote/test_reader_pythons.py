"""The kernel reader under every Python the tests can find (the agent's embedded Python is 3.8
on the oldest supported agent), and its wire format."""

from __future__ import annotations

import base64
import glob
import json
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from wpprotect import errors
from wpprotect._contract import ExecResult
from wpprotect.tc import TCInspector, _remote
from wpprotect.tc._lab import Lab, VendorScene


def _pythons() -> list[str]:
    found = {sys.executable}
    for path in glob.glob("/root/.pyenv/versions/3.*/bin/python3"):
        minor = path.split("/versions/3.", 1)[1].split(".", 1)[0]
        if minor.isdigit() and int(minor) >= 8:
            found.add(path)
    return sorted(found)


class LocalPython:
    """Runs the reader with one interpreter on this host, as an agent container would."""

    target = "local-python"

    def __init__(self, python: str) -> None:
        self.python = python
        self.calls: list[list[str]] = []

    def exec(
        self,
        argv: Sequence[str],
        *,
        component: str = "security-agent",
        stdin: bytes | None = None,
        timeout: float | None = 120.0,
    ) -> ExecResult:
        args = [self.python, *list(argv)[1:]]
        self.calls.append([component, *argv])
        started = time.monotonic()
        proc = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, check=False)
        return ExecResult(
            argv=args,
            exit_code=proc.returncode,
            stdout=proc.stdout.decode(),
            stderr=proc.stderr.decode(),
            duration=time.monotonic() - started,
            target=self.target,
        )


@pytest.fixture(scope="module")
def scene() -> Iterator[VendorScene]:
    with Lab("wprpy") as lab:
        yield lab.scene_mimic_vendors("p1")


def _rows(report: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (
                p.ifname,
                p.direction,
                p.attach,
                p.priority,
                p.prog_id,
                p.vendor,
                p.verdict,
                p.name,
                p.prog_tag,
                p.load_time_ns,
            )
            for p in report.programs
        ),
        key=repr,
    )


@pytest.mark.root
@pytest.mark.parametrize("python", _pythons())
def test_reader_under_each_python_equals_the_local_scan(python: str, scene: VendorScene) -> None:
    platform = LocalPython(python)
    report, where = _remote.remote_scan(platform, netns=scene.netns)  # type: ignore[arg-type]
    local = TCInspector(scene.netns).scan()
    assert _rows(report) == _rows(local)
    assert report.to_dict() == local.to_dict()
    assert len(report.programs) == 19
    found = sorted((f.code, f.ifname, f.direction) for f in report.assess().findings)
    assert found == sorted(scene.expected)
    assert where["component"] == "system-probe"
    assert platform.calls[0][:5] == ["system-probe", _remote.EMBEDDED_PYTHON, "-I", "-B", "-"]


@pytest.mark.root
def test_remote_measure_matches_the_local_shape(scene: VendorScene) -> None:
    platform = LocalPython(sys.executable)
    measurement, _ = _remote.remote_measure(platform, 0.1, netns=scene.netns)  # type: ignore[arg-type]
    local = TCInspector(scene.netns).measure(0.1)
    assert sorted((h.ifname, h.direction, h.state) for h in measurement.hooks) == sorted(
        (h.ifname, h.direction, h.state) for h in local.hooks
    )
    assert len(measurement.hooks) == 10


def _wire(body: dict[str, Any], version: int = 1) -> str:
    packed = zlib.compress(json.dumps(body).encode())
    return json.dumps({"wire": version, "zlib": base64.b64encode(packed).decode()})


def test_wire_format_versions_and_errors() -> None:
    assert _remote.decode_wire("noise\n" + _wire({"scan": {}})) == {"scan": {}}
    with pytest.raises(errors.TCError, match="wire version 2"):
        _remote.decode_wire(_wire({}, version=2))
    with pytest.raises(errors.TCError, match="not its wire format"):
        _remote.decode_wire("Traceback (most recent call last):")
    with pytest.raises(errors.TCError, match="corrupt"):
        _remote.decode_wire('{"wire": 1, "zlib": "bm90IHpsaWI="}')
    refused = json.dumps(
        {"wire": 1, "error": {"kind": "capability", "message": "setns() was refused (EPERM)"}}
    )
    with pytest.raises(errors.CapabilityError, match="setns"):
        _remote.decode_wire(refused, target="pod x")


def test_malformed_records_are_a_tc_error() -> None:
    with pytest.raises(errors.TCError, match="malformed"):
        _remote.report_from_records({"namespaces": [{"label": "x"}]})
    # A truncated netlink message in a recorded dump.
    short = base64.b64encode(b"\x40" + b"\0" * 19).decode()  # says 64 bytes, holds 20
    ns = {"label": "x", "path": "/x", "id": "4:1", "qdiscs": short, "links": "", "filters": [],
          "hooks": []}  # fmt: skip
    report = _remote.report_from_records({"namespaces": [ns], "progs": {}})
    assert report.programs == ()
    assert any("malformed netlink" in w for w in report.warnings)


def test_probe_is_refused_remotely() -> None:
    from wpprotect.testing import FakePlatform

    with pytest.raises(errors.InvalidArgumentError, match="host platform only"):
        FakePlatform().tc_scan(probe=True)


class _Refusing:
    """A platform whose runtime reports a missing executable as a failed exec, as kubelet does."""

    target = "pod x (node-9)"

    def exec(self, argv: Sequence[str], **_: Any) -> ExecResult:
        raise errors.ExecError(
            f"could not run {argv[0]}: OCI runtime exec failed: exec failed: unable to start "
            f'container process: exec: "{argv[0]}": stat {argv[0]}: no such file or directory',
            target=self.target,
        )


def test_a_missing_python_reported_as_a_failed_exec_is_named() -> None:
    with pytest.raises(errors.UnsupportedAgentError, match="no embedded Python"):
        _remote.remote_scan(_Refusing())  # type: ignore[arg-type]
