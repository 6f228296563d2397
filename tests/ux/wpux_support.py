"""Helpers for the user-journey tests: run the real CLI, build throwaway agent installs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m wpprotect ARGS`` as a real process (optionally as another user via setpriv)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    argv = [sys.executable, "-m", "wpprotect", *args]
    if user == "nobody":
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        full_env["HOME"] = "/nonexistent"
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT, check=False
    )


def run_json(args: Sequence[str], **kwargs: Any) -> tuple[int, Any]:
    proc = run_cli([*args, "--json"], **kwargs)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def make_config_dir(
    dest: Path, upstream: Path, *, system_probe: str = "", security_agent: str = ""
) -> Path:
    """A host config dir holding the agent's shipped example files, plus ``extra`` YAML appended.

    The examples are read from ../shared/upstream (never stored in the project); every key in them
    is commented out, so the appended text decides.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name, extra in (
        ("system-probe.yaml", system_probe),
        ("security-agent.yaml", security_agent),
    ):
        text = (upstream / "datadog-agent" / f"{name}.example").read_text()
        (dest / name).write_text(text + ("\n" + extra if extra else ""))
    return dest


def make_install_dir(dest: Path, version: str = "7.68.0") -> Path:
    """A fake /opt/datadog-agent: the three binaries (stubs) and the omnibus version manifest."""
    for rel in ("bin/agent/agent", "embedded/bin/system-probe", "embedded/bin/security-agent"):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    (dest / "version-manifest.json").write_text(json.dumps({"build_version": version}))
    return dest


def spawn_named(name: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real process whose argv[0] is ``name`` (what doctor looks for in /proc)."""
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.Popen(
        [bash, "-c", f'exec -a "{name}" sleep 120'],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
    )
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(500):  # until the exec has happened
        if cmdline.read_bytes().split(b"\0")[0] == name.encode():
            return proc
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"{name} did not start")
